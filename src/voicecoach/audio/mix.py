"""How a session sounds: cues levelled to one loudness, chimes, a music bed ducked under speech, and
the whole track brought to a loudness target without a second pass.

The loudness model (see also voicecoach.audio.loudness):

1. Every distinct clip is measured once (K-weighted, gated as if looped) and given the gain that
   brings it to a common loudness L; a true-peak limiter then keeps it under CEILING, and the
   gain is nudged until the limited clip measures L again. So every cue is equally loud.
2. The plan says exactly where every clip, chime and stretch of music lies, so the track's
   K-weighted energy per 100 ms cell is the sum of theirs (music and speech are unrelated
   signals, so their energies add). The integrated loudness of those cells, gated as BS.1770
   gates, predicts the track's. Everything is placed relative to L, so the prediction at any L
   is the prediction at L = 0 shifted by L: one global correction lands the track on the target.
   The level is set from the raw clips before any clip is levelled, so levelling runs in the
   background while the start of the track is already being encoded or played.
3. Music plays at the speech's loudness between cues and MUSIC_DUCK dB lower under them.
   Export and live play read the same stream; a final limiter (only where music is mixed in)
   keeps the sum under CEILING. It works on fixed blocks with look-around, so a stream started
   anywhere is sample-identical to the whole stream.

The ceiling and the encoder allowance are measured (tests/test_sound.py checks the exported MP3):
LAME encodes 0.95 of the signal (-0.45 dB, put back here, so live play is 0.45 dB louder than
the file), and its error follows the signal's high band, so the limiter also counts that band
(voicecoach.audio.loudness.detector). With a -2.5 dBTP ceiling in the PCM, exported tracks measured
-1.4 to -2.2 dBTP at 64 kbit/s and -1.3 to -1.8 at 32 kbit/s.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable, Iterator, Mapping
from concurrent import futures
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from voicecoach import cancel
from voicecoach.audio import loudness as lu
from voicecoach.audio import pcm
from voicecoach.audio import tones as chime_sounds
from voicecoach.audio.assemble import CHUNK_FRAMES, pcm_chunks
from voicecoach.audio.options import CEILING_DB as CEILING_DB  # where it was first defined
from voicecoach.audio.options import PROCESS_VERSION, SoundOptions, levelled_key
from voicecoach.plan.timeline import ChimeKind, Plan

if TYPE_CHECKING:
    from voicecoach.audio.music import MusicBed
    from voicecoach.storage.cache import ClipCache
    from voicecoach.storage.spool import ClipStore

#: LAME's fixed 0.95 scale, put back so the MP3 (not the PCM) meets the target.
ENCODER_GAIN_DB = 20 * math.log10(0.95)
#: The duck's ramps: down over the 150 ms before a cue's first word, up over 150 ms after its last.
DUCK_RAMP = 0.15
#: Music between cues sits this many LU from the speech.
MUSIC_LEVEL = 0.0
MUSIC_FADE_IN = 3.0
MUSIC_FADE_OUT = 5.0
#: A levelled clip measures its target within this many LU, found in at most this many tries.
PROCESS_TOLERANCE = 0.1
PROCESS_STEPS = 8
#: How much louder a limited clip gets per dB of gain, as a first guess (measured: 0.4-0.7).
FIRST_SLOPE = 0.6
PROCESS_THREADS = min(2, os.cpu_count() or 1)
#: The track model's prediction on the heard clips must be this close to the target.


# -- clips ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClipInfo:
    """A raw clip's loudness and K-weighted energy per SUB frames, for the track model."""

    loudness: float
    subs: np.ndarray
    digest: str


def analyse(pcm: bytes, cache: ClipCache | None = None) -> ClipInfo:
    """A clip's loudness and energy profile (kept in the clip cache, by the clip's content)."""
    digest = hashlib.blake2b(pcm, digest_size=16).hexdigest()
    known = analysis(digest, cache)
    if known is not None:
        return known
    key = _analysis_key(digest)
    x = _floats(pcm)
    if not len(x):
        return ClipInfo(lu.SILENT, np.zeros(0), digest)
    info = ClipInfo(lu.clip_loudness(x), lu.sub_energies(x)[: -(-len(x) // lu.SUB)], digest)
    if cache is not None:
        cache.put(key, np.concatenate([[info.loudness], info.subs]).astype("<f8").tobytes())
    return info


def analysis(digest: str, cache: ClipCache | None) -> ClipInfo | None:
    """The stored analysis of the clip whose content has this digest (cache.peek gives it)."""
    stored = cache.get(_analysis_key(digest)) if cache is not None else None
    if stored is not None and len(stored) % 8 == 0 and stored:
        values = np.frombuffer(stored, "<f8")
        return ClipInfo(float(values[0]), values[1:], digest)
    return None


def _analysis_key(digest: str) -> str:
    return hashlib.sha256(json.dumps(["analysis", PROCESS_VERSION, digest]).encode()).hexdigest()


def levelled(raw: bytes, info: ClipInfo, level: float, ceiling: float,
             cache: ClipCache | None) -> bytes:
    """The clip at the session's level: from the cache when it has it, else made and kept."""
    key = processed_key(info, level, ceiling)
    pcm = cache.get(key) if cache is not None else None
    if pcm is None or len(pcm) != len(raw):
        pcm = process(raw, info, level, ceiling)
        cancel.check()  # a clip levelled to its end is kept, and only then
        if cache is not None:
            cache.put(key, pcm)
    return pcm


def process(pcm: bytes, info: ClipInfo, target: float, ceiling: float) -> bytes:
    """The clip at `target` loudness with its true peak under `ceiling` (linear)."""
    if info.loudness <= lu.ABSOLUTE_GATE:
        return pcm
    x = _floats(pcm)
    level = lu.detector(x)  # scales with the gain: measured once
    # Limiting takes some loudness away: raise the gain until the limited clip measures
    # `target` (secant steps on the measured loudness, which rises with the gain). It takes
    # about as much extra gain as the peaks stand over the ceiling: the first guess.
    gain = target - info.loudness
    over = 20 * math.log10(max(float(level.max()), 1e-9) / ceiling) + gain
    gain += max(0.0, over)
    tried: list[tuple[float, float]] = []
    best = x
    for _ in range(PROCESS_STEPS):
        cancel.check()  # levelling runs on background threads: they stop too
        g = lu.db_to_gain(gain)
        limited = x * g * lu.limiter_gain(x, ceiling, level * g)
        got = lu.clip_loudness(limited)
        best = limited
        if abs(target - got) < PROCESS_TOLERANCE:
            break
        tried.append((gain, got))
        if len(tried) >= 2:
            (g0, l0), (g1, l1) = tried[-2], tried[-1]
            slope = (l1 - l0) / (g1 - g0) if g1 != g0 else 1.0
        else:
            slope = FIRST_SLOPE if got < target - 0.5 else 1.0
        gain += min(12.0, (target - got) / min(1.0, max(0.1, slope)))
    return _pcm(best)


def processed_key(info: ClipInfo, target: float, ceiling: float) -> str:
    return levelled_key(info.digest, target, ceiling)


# -- the track model ------------------------------------------------------------------------


@dataclass(frozen=True)
class Ducking:
    """Where the music ducks: every spoken stretch, with DUCK_RAMP ramps outside it."""

    starts: np.ndarray
    ends: np.ndarray
    ramp: int

    @classmethod
    def of(cls, plan: Plan) -> Ducking:
        spoken = [(e.start, e.start + e.speech) for e in plan.events if e.speech > 0]
        starts = np.array([a for a, _ in spoken], dtype=np.int64)
        ends = np.array([b for _, b in spoken], dtype=np.int64)
        return cls(starts, ends, max(1, round(DUCK_RAMP * plan.rate)))

    def depth(self, frames: np.ndarray) -> np.ndarray:
        """0 (no duck) to 1 (fully ducked) at each frame: up over the ramp before a cue, 1 while
        it speaks, down over the ramp after. Cues are further apart than a ramp, so only the
        nearest cue on each side matters."""
        out = np.zeros(len(frames))
        if not len(self.starts) or not len(frames):
            return out
        frames = np.asarray(frames, dtype=np.float64)
        i = np.searchsorted(self.starts, frames, side="right")  # cues starting after
        after = np.minimum(i, len(self.starts) - 1)
        before = np.maximum(i - 1, 0)
        lead = np.clip(1 - (self.starts[after] - frames) / self.ramp, 0, 1)
        lead[i >= len(self.starts)] = 0
        inside = frames < self.ends[before]
        trail = np.where(inside, 1.0, np.clip(1 - (frames - self.ends[before]) / self.ramp, 0, 1))
        trail[i == 0] = 0
        return np.maximum(lead, trail)

    def depth_at(self, start: int, n: int) -> np.ndarray | None:
        """depth() of frames [start, start + n), worked out only around the cues near them
        (None where no duck reaches)."""
        lo = int(np.searchsorted(self.starts, start - self.ramp, side="left"))
        lo = max(0, lo - 1)
        hi = int(np.searchsorted(self.starts, start + n + self.ramp, side="left"))
        out: np.ndarray | None = None
        for i in range(lo, hi):
            a, b = int(self.starts[i]), int(self.ends[i])
            f_lo, f_hi = max(start, a - self.ramp), min(start + n, b + self.ramp)
            if f_lo >= f_hi:
                continue
            if out is None:
                out = np.zeros(n)
            frames = np.arange(f_lo, f_hi, dtype=np.float64)
            d = np.minimum(1 - (a - frames) / self.ramp, 1 - (frames - b) / self.ramp)
            d = np.where((frames >= a) & (frames < b), 1.0, np.clip(d, 0, 1))
            piece = out[f_lo - start : f_hi - start]
            np.maximum(piece, d, out=piece)
        return out


@dataclass
class Bed:
    """The music as mixed: level, fades and ducking, as a gain per session frame."""

    music: MusicBed
    gain: float  # linear
    duck_db: float
    ducking: Ducking
    total: int
    rate: int

    def envelope(self, start: int, n: int) -> np.ndarray | None:
        """The music's gain at session frames [start, start + n); None for exactly 1."""
        fade_in, fade_out = MUSIC_FADE_IN * self.rate, MUSIC_FADE_OUT * self.rate
        env = None
        if start < fade_in or start + n > self.total - fade_out:
            frames = np.arange(start, start + n, dtype=np.float64)
            env = self._fade(frames)
        if self.duck_db:
            depth = self.ducking.depth_at(start, n)
            if depth is not None:
                duck = 10 ** (self.duck_db * depth / 20)
                env = duck if env is None else env * duck
        if self.gain != 1.0:
            env = np.full(n, self.gain) if env is None else env * self.gain
        return env

    def _fade(self, frames: np.ndarray) -> np.ndarray:
        fade_in, fade_out = MUSIC_FADE_IN * self.rate, MUSIC_FADE_OUT * self.rate
        return np.clip(np.minimum((frames + 0.5) / fade_in, (self.total - frames) / fade_out), 0, 1)

    def _at(self, frames: np.ndarray) -> np.ndarray:
        env = self._fade(frames) * self.gain
        if self.duck_db:
            env *= 10 ** (self.duck_db * self.ducking.depth(frames) / 20)
        return env

    def mean_square_envelope(self, cells: int) -> np.ndarray:
        """The mean of envelope^2 over each 100 ms cell, from sub-cell points, a few minutes at a
        time (memory stays bounded whatever the length)."""
        out = np.empty(cells)
        step = 3000
        for c in range(0, cells, step):
            k = min(step, cells - c)
            frames = c * lu.CELL + (np.arange(k * lu.SUBS_PER_CELL) + 0.5) * lu.SUB
            env = self._at(frames)
            out[c : c + k] = (env * env).reshape(k, lu.SUBS_PER_CELL).mean(axis=1)
        return out


def track_cells(
    plan: Plan,
    infos: Mapping[str, ClipInfo],
    level: float | None,
    chime_infos: Mapping[ChimeKind, ClipInfo],
    chime_level: float,
    bed: Bed | None,
) -> np.ndarray:
    """K-weighted energy per 100 ms cell of the whole track: each clip scaled to `level` LUFS
    (None: clips as they are), each chime at chime_level + its LEVEL, and the music bed."""
    cells = np.zeros(-(-plan.total // lu.CELL) + 2)

    def lay(subs: np.ndarray, start: int, scale: float) -> None:
        if not len(subs):
            return
        at = start + np.arange(len(subs)) * lu.SUB
        first, offset = np.divmod(at, lu.CELL)
        share = np.minimum(lu.SUB, lu.CELL - offset) / lu.SUB
        np.add.at(cells, first, subs * (scale * share))
        np.add.at(cells, first + 1, subs * (scale * (1 - share)))

    for event in plan.events:
        if event.text and event.speech:
            info = infos[event.text]
            if info.loudness > lu.ABSOLUTE_GATE:
                scale = 1.0 if level is None else lu.energy_of(level) / lu.energy_of(info.loudness)
                lay(info.subs[: -(-event.speech // lu.SUB)], event.start, scale)
    for chime in plan.chimes:
        info = chime_infos[chime.kind]
        wanted = lu.energy_of(chime_level + chime_sounds.LEVEL[chime.kind])
        lay(info.subs, chime.start, wanted / lu.energy_of(info.loudness))
    count = -(-plan.total // lu.CELL)
    if bed is not None:
        starts = np.arange(count) * lu.CELL
        lengths = np.minimum(lu.CELL, plan.total - starts)
        cells[:count] += bed.music.energy(starts, lengths) * bed.mean_square_envelope(count)
    return cells[:count]


# -- making the sound ----------------------------------------------------------------------


#: The furthest the track model may move the clips' level from the target, in LU.
MAX_CORRECTION = 6.0
#: Limiting reshapes a clip (its quiet parts come up), which lowers the track's gated loudness by
#: about this much against a model of the unlimited clips (measured 0.15-0.3 LU at -16 LUFS); the
#: check on the limited clips below corrects whatever remains.
LIMITING_ALLOWANCE = 0.2
#: Without music the clips' level is a multiple of this (LU) from the target: off by at most
#: half of it, which the +-1 LU promise has room for.
LEVEL_STEP = 0.5
#: Rounds of level, limit, check: one usually; a second when the check is off by more than 0.1.


def make_sound(
    plan: Plan,
    raw: ClipStore,
    infos: Mapping[str, ClipInfo],
    options: SoundOptions,
    cache: ClipCache | None,
) -> Mixer:
    """Set the session's level, make the chimes, open the music, and return the mixer.

    The clips' common level is set so that the track model predicts the target from the raw
    clips (the model is linear in level; limiting takes about LIMITING_ALLOWANCE away, measured).
    The clips themselves are levelled in the background, in the order the plan first uses them,
    while the encoder (or the sound card) is already taking the start of the track: the mixer
    owns `raw` from here on and closes it."""
    from voicecoach.audio.music import MusicBed

    cancel.stage("levelling")
    ceiling = lu.db_to_gain(CEILING_DB)
    kinds = sorted({c.kind for c in plan.chimes}, key=lambda k: k.value)
    tones = {kind: _tone(kind, cache) for kind in kinds}
    chime_infos = {kind: analyse(_pcm(x), cache) for kind, x in tones.items()}
    music = MusicBed(options.music, plan.total) if options.music is not None else None
    clips: LevelledClips | None = None
    try:
        ducking = Ducking.of(plan)
        bed_at_zero = None
        if music is not None:
            gain = lu.db_to_gain(MUSIC_LEVEL - music.loudness)
            bed_at_zero = Bed(music, gain, options.duck, ducking, plan.total, plan.rate)
        level = _level(plan, infos, chime_infos, options, bed_at_zero)
        order = list(dict.fromkeys(e.text for e in plan.events if e.text))
        clips = LevelledClips(order, raw, infos, level, ceiling, cache)
        rendered = Chimes(level, ceiling)
        rendered.update({kind: chime_sounds.render(kind, level, ceiling, tones[kind])
                         for kind in kinds})
        bed = None
        if music is not None:
            # The music's level goes into the spooled music itself, limited once.
            music.set_level(lu.db_to_gain(level + MUSIC_LEVEL - music.loudness), ceiling)
            bed = Bed(music, 1.0, options.duck, ducking, plan.total, plan.rate)
    except BaseException:
        if music is not None:
            music.close()
        if clips is not None:
            clips.close()
        raise
    closers = [clips.close] + ([music.close] if music is not None else [])

    def on_close() -> None:
        for close in closers:
            close()

    return Mixer(plan, clips, rendered, bed, ceiling, on_close=on_close)


def _level(plan: Plan, infos: Mapping[str, ClipInfo], chime_infos: Mapping[ChimeKind, ClipInfo],
           options: SoundOptions, bed_at_zero: Bed | None) -> float:
    """The clips' common level: what the track model puts on the target."""
    # What the PCM must measure for the MP3 to measure the target.
    wanted = options.loudness - ENCODER_GAIN_DB
    at_zero = lu.gated(track_cells(plan, infos, 0.0, chime_infos, 0.0, bed_at_zero))
    correction = max(-MAX_CORRECTION, min(MAX_CORRECTION, -at_zero))
    if bed_at_zero is None:
        # On a fixed ladder of levels, so that the levelled clips (and the MP3 frames cached
        # from them, voicecoach.export.stitch) stay the same when a cue changes elsewhere.
        step = LEVEL_STEP
        return wanted + step * round((correction + LIMITING_ALLOWANCE) / step)
    return wanted + correction


def speech_level(plan: Plan, infos: Mapping[str, ClipInfo], options: SoundOptions,
                 cache: ClipCache | None) -> float:
    """The level make_sound sets for a session without music (voicecoach.audio.prepare keeps it
    by the plan, so that an unchanged export needs neither numpy nor any clip)."""
    kinds = {c.kind for c in plan.chimes}
    chime_infos = {kind: analyse(_pcm(_tone(kind, cache)), cache) for kind in kinds}
    return _level(plan, infos, chime_infos, options, None)


def chime(kind: ChimeKind, level: float, ceiling: float, cache: ClipCache | None) -> bytes:
    return chime_sounds.render(kind, level, ceiling, _tone(kind, cache))


class Chimes(dict[ChimeKind, bytes]):
    """The session's chimes, each named by what makes it (voicecoach.export.stitch keys the
    MP3 frames made from a chime by that name)."""

    def __init__(self, level: float, ceiling: float) -> None:
        super().__init__()
        self.level, self.ceiling = level, ceiling

    def identity(self, kind: ChimeKind) -> str:
        return chime_sounds.identity(kind, self.level, self.ceiling)


def _tone(kind: ChimeKind, cache: ClipCache | None) -> np.ndarray:
    """A chime's tone, from the clip cache when it has it (pydub makes it sample by sample)."""
    fields = ["chime", PROCESS_VERSION, kind.value, chime_sounds.TONES[kind]]
    key = hashlib.sha256(json.dumps(fields).encode()).hexdigest()
    stored = cache.get(key) if cache is not None else None
    if stored is not None and len(stored) == pcm.nbytes(chime_sounds.chime_frames(kind)):
        return _floats(stored)
    made = chime_sounds.tone(kind)
    if cache is not None:
        cache.put(key, _pcm(made))
    return made


class LevelledClips(Mapping[str, bytes]):
    """Clips at the session's level: from the cache where it has them, else levelled on
    background threads, in the order given; reading a clip waits only for that clip. Levelled
    clips go to a spool file, so memory does not grow with the number of cues."""

    def __init__(
        self,
        order: list[str],
        raw: ClipStore,
        infos: Mapping[str, ClipInfo],
        level: float,
        ceiling: float,
        cache: ClipCache | None,
    ) -> None:
        from voicecoach.storage.spool import ClipStore

        self._raw, self._infos, self._cache = raw, infos, cache
        self._level, self._ceiling = level, ceiling
        self._out = ClipStore()
        self._pool = ThreadPoolExecutor(max_workers=PROCESS_THREADS,
                                        thread_name_prefix="voicecoach-level")
        self._jobs = {text: self._pool.submit(self._make, text) for text in order}

    def _make(self, text: str) -> None:
        cancel.check()
        pcm = levelled(self._raw[text], self._infos[text], self._level, self._ceiling,
                       self._cache)
        self._out.add(text, pcm)

    def identity(self, text: str) -> str:
        """The clip's name by its inputs (the raw clip, the level): voicecoach.export.stitch
        keys the MP3 frames made from it by that."""
        return processed_key(self._infos[text], self._level, self._ceiling)

    def __getitem__(self, text: str) -> bytes:
        job = self._jobs[text]
        while not job.done():
            cancel.check()
            futures.wait([job], timeout=cancel.POLL)
        job.result()  # re-raises a levelling failure where the clip is needed
        return self._out[text]

    def __contains__(self, text: object) -> bool:
        return text in self._jobs

    def __iter__(self) -> Iterator[str]:
        return iter(self._jobs)

    def __len__(self) -> int:
        return len(self._jobs)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._raw.close()
        self._out.close()


# -- the stream -----------------------------------------------------------------------------


class Mixer:
    """Produces the session's PCM: speech and chimes laid out by the plan, plus the music bed."""

    def __init__(
        self,
        plan: Plan,
        clips: Mapping[str, bytes],
        chimes: Mapping[ChimeKind, bytes],
        bed: Bed | None,
        ceiling: float,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self.plan = plan
        self.clips = clips
        self.chimes = chimes
        self.bed = bed
        self.ceiling = ceiling
        self._on_close = on_close
        # Where something sounds over the (already limited) music: cues and chimes.
        spans = sorted([(e.start, e.start + e.speech) for e in plan.events if e.speech > 0]
                       + [(c.start, c.end) for c in plan.chimes])
        self._over_starts = np.array([a for a, _ in spans], dtype=np.int64)
        self._over_ends = np.maximum.accumulate(np.array([b for _, b in spans], dtype=np.int64)) \
            if spans else np.zeros(0, dtype=np.int64)

    def stream(self, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        end = self.plan.total if end is None else min(end, self.plan.total)
        if self.bed is None:
            return pcm_chunks(self.plan, self.clips, start, end, chimes=self.chimes)
        return self._mixed(start, end)

    def _mixed(self, start: int, end: int) -> Iterator[bytes]:
        """Music added to the speech stream, one fixed block at a time: block k is frames
        [k*B, (k+1)*B), limited from the signal around it, whatever the stream's start, so a
        stream started anywhere is sample-identical to the whole one."""
        if start >= end:
            return
        block = CHUNK_FRAMES
        total = self.plan.total
        assert self.bed is not None
        first = start // block
        lo = max(0, first * block - lu.REACH_BEFORE)
        hi = min(total, -(-end // block) * block + lu.REACH_AFTER)
        source = pcm_chunks(self.plan, self.clips, lo, hi, chimes=self.chimes)
        over = np.zeros(0)  # cues and chimes
        bed = np.zeros(0)  # the music, faded and ducked
        buf_at = lo
        k = first
        for chunk in source:
            x = pcm.from_s16(chunk)
            n = len(x)
            at = buf_at + len(over)
            music = self.bed.music.read(at, n)
            env = self.bed.envelope(at, n)
            over = np.concatenate([over, x])
            bed = np.concatenate([bed, music if env is None else music * env])
            while True:
                b_lo, b_hi = k * block, min((k + 1) * block, total)
                if b_lo >= end or buf_at + len(over) < min(total, b_hi + lu.REACH_AFTER):
                    break
                yield self._block(over, bed, buf_at, b_lo, b_hi, start, end)
                k += 1
                drop = max(0, (k * block - lu.REACH_BEFORE) - buf_at)
                over, bed, buf_at = over[drop:], bed[drop:], buf_at + drop
        while k * block < end:
            b_lo, b_hi = k * block, min((k + 1) * block, total)
            yield self._block(over, bed, buf_at, b_lo, b_hi, start, end)
            k += 1

    def _block(
        self, over: np.ndarray, bed: np.ndarray, buf_at: int, b_lo: int, b_hi: int, start: int,
        end: int,
    ) -> bytes:
        w_lo = max(buf_at, b_lo - lu.REACH_BEFORE)
        w_hi = min(buf_at + len(over), b_hi + lu.REACH_AFTER)
        voice = over[w_lo - buf_at : w_hi - buf_at]
        music = bed[w_lo - buf_at : w_hi - buf_at]
        stretch = self._overlay(w_lo, w_hi)
        if stretch is not None:
            # The music alone is limited already; where a cue or chime sounds over it, the cue
            # gives way (never the music, so the duck stays exact): its gain is what keeps the
            # sum under the ceiling, since detector(a + b) <= detector(a) + detector(b).
            r_lo = max(w_lo, stretch[0] - lu.REACH_BEFORE) - w_lo
            r_hi = min(w_hi, stretch[1] + lu.REACH_AFTER) - w_lo
            part = voice[r_lo:r_hi]
            if np.abs(part).max(initial=0.0) * lu.DETECTOR_BOUND + np.abs(
                    music[r_lo:r_hi]).max(initial=0.0) * lu.DETECTOR_BOUND > self.ceiling:
                room = np.maximum(self.ceiling - lu.detector(music[r_lo:r_hi]), 0.0)
                need = np.minimum(1.0, room / np.maximum(lu.detector(part), 1e-12))
                voice = voice.copy()
                voice[r_lo:r_hi] = part * lu.smooth_gain(need)
        out = (voice + music)[b_lo - w_lo : b_hi - w_lo]
        cut_lo, cut_hi = max(start, b_lo) - b_lo, min(end, b_hi) - b_lo
        return _pcm(out[cut_lo:cut_hi])

    def _overlay(self, lo: int, hi: int) -> tuple[int, int] | None:
        """The stretch of frames [lo, hi) from the first to the last frame where a cue or chime
        sounds, or None."""
        first = int(np.searchsorted(self._over_ends, lo, side="right"))
        last = int(np.searchsorted(self._over_starts, hi, side="left"))
        if first >= last:
            return None
        return max(lo, int(self._over_starts[first])), min(hi, int(self._over_ends[last - 1]))

    def close(self) -> None:
        if self._on_close is not None:
            self._on_close()
            self._on_close = None


_floats = pcm.from_s16
_pcm = pcm.to_s16
