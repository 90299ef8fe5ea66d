"""Prepare a routine for listening: speak every cue once, level it, and time the plan from the
clips."""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, NamedTuple

from voicecoach import cancel
from voicecoach.audio.options import CEILING_DB, PROCESS_VERSION, SoundOptions, levelled_key
from voicecoach.audio.pcm import frames, frames_in, nbytes
from voicecoach.plan.timeline import ChimeKind, Plan, PlanOptions, build_plan
from voicecoach.routine.model import Routine
from voicecoach.storage.spool import ClipStore

if TYPE_CHECKING:
    from voicecoach.audio.mix import ClipInfo, Mixer
    from voicecoach.speech import Engine, VoiceSettings
    from voicecoach.storage.cache import ClipCache

Notify = Callable[[int], None]


@dataclass(frozen=True)
class Prepared:
    """A plan timed from real clips, the clips as heard (levelled s16le mono PCM by text), and
    the mixer that adds chimes and music to them."""

    plan: Plan
    clips: Mapping[str, bytes]
    mixer: Mixer
    #: Where an export keeps each cue's encoded MP3 frames (voicecoach.export.stitch).
    cache: ClipCache | None = None

    def stream(self, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """The audio of frames [start, end) as s16le mono PCM chunks: what export encodes and
        live play sends to the speakers, so both are always the same."""
        return self.mixer.stream(start, end)

    @property
    def chimes(self) -> Mapping[ChimeKind, bytes]:
        return self.mixer.chimes

    @property
    def stitchable(self) -> bool:
        """No music bed: the track can be made of each cue's own MP3 frames."""
        return self.mixer.bed is None

    def close(self) -> None:
        """Let go of the temporary files (clips, music) now rather than at exit."""
        self.mixer.close()


class Known(NamedTuple):
    """A clip as the cache's entry header tells it: its key, content digest and length."""

    key: str
    digest: str
    frames: int


class StaleHeaders(Exception):
    """A clip read back is not the one its cache header described: a lazily prepared session
    was timed from headers that do not hold, and must be prepared again from the clips."""


class LazyPrepared:
    """A session without music, prepared from what the clip cache's headers say (each clip's
    length and digest): nothing is read, analysed or levelled until it is asked for. Its clips
    and chimes are named by their inputs (`identity`), so a stitched export whose pieces are
    all cached reads no PCM and loads no numpy; the level is kept in the cache by the plan."""

    stitchable = True

    def __init__(self, plan: Plan, known: dict[str, Known], fresh: ClipStore,
                 sound: SoundOptions, cache: ClipCache, render: Callable[[str], bytes]) -> None:
        self.plan, self.cache = plan, cache
        self._known, self._fresh, self._sound, self._render = known, fresh, sound, render
        self._level: float | None = None
        self._mixer: Mixer | None = None
        self.ceiling = 10 ** (CEILING_DB / 20)  # as voicecoach.audio.loudness.db_to_gain
        self.clips = _LazyClips(self)
        self.chimes = _LazyChimes(self)

    @property
    def level(self) -> float:
        if self._level is None:
            key = self._level_key()
            stored = self.cache.get(key)
            if stored is not None and len(stored) == 8:
                self._level = struct.unpack("<d", stored)[0]
            else:
                from voicecoach.audio.mix import speech_level

                infos = {text: self.info(text) for text in self._known}
                self._level = speech_level(self.plan, infos, self._sound, self.cache)
                self.cache.put(key, struct.pack("<d", self._level))
        return self._level

    def _level_key(self) -> str:
        cues = [[e.start, e.speech, self._known[e.text].digest] for e in self.plan.events
                if e.text]
        chimes = [[c.start, c.kind.value] for c in self.plan.chimes]
        fields = ["session level", PROCESS_VERSION, CEILING_DB, self._sound.loudness,
                  self.plan.total, cues, chimes]
        return hashlib.sha256(json.dumps(fields).encode()).hexdigest()

    def raw(self, text: str) -> bytes:
        if text in self._fresh:
            return self._fresh[text]
        known = self._known[text]
        pcm = self.cache.get(known.key)
        if pcm is None:  # damaged since its header was read: made again, as a miss is
            pcm = self._render(text)
        if hashlib.blake2b(pcm, digest_size=16).hexdigest() != known.digest:
            # The header promised other audio: a damaged entry (its payload, or its digest),
            # or another writer. The plan was timed from the header, so it cannot stand.
            raise StaleHeaders(text)
        return pcm

    def info(self, text: str) -> ClipInfo:
        from voicecoach.audio.mix import analyse, analysis

        found = analysis(self._known[text].digest, self.cache)
        return found if found is not None else analyse(self.raw(text), self.cache)

    def identity(self, text: str) -> str:
        return levelled_key(self._known[text].digest, self.level, self.ceiling)

    def levelled(self, text: str) -> bytes:
        pcm = self.cache.get(self.identity(text))
        if pcm is not None and len(pcm) == nbytes(self._known[text].frames):
            return pcm
        from voicecoach.audio.mix import levelled

        return levelled(self.raw(text), self.info(text), self.level, self.ceiling, self.cache)

    @property
    def mixer(self) -> Mixer:
        """The whole mix, made on first use (a split export or a stream reads it)."""
        if self._mixer is None:
            from voicecoach.audio.mix import make_sound

            raw = ClipStore()
            try:
                for text in self._known:
                    raw.add(text, self.raw(text))
                infos = {text: self.info(text) for text in self._known}
                self._mixer = make_sound(self.plan, raw, infos, self._sound, self.cache)
            except BaseException:
                raw.close()
                raise
        return self._mixer

    def stream(self, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        return self.mixer.stream(start, end)

    def close(self) -> None:
        if self._mixer is not None:
            self._mixer.close()
        self._fresh.close()


class _LazyClips(Mapping[str, bytes]):
    def __init__(self, owner: LazyPrepared) -> None:
        self._owner = owner

    def __getitem__(self, text: str) -> bytes:
        return self._owner.levelled(text)

    def identity(self, text: str) -> str:
        return self._owner.identity(text)

    def __iter__(self) -> Iterator[str]:
        return iter(self._owner._known)

    def __len__(self) -> int:
        return len(self._owner._known)


class _LazyChimes(Mapping[ChimeKind, bytes]):
    def __init__(self, owner: LazyPrepared) -> None:
        self._owner = owner
        self._kinds = sorted({c.kind for c in owner.plan.chimes}, key=lambda k: k.value)

    def __getitem__(self, kind: ChimeKind) -> bytes:
        from voicecoach.audio.mix import chime

        owner = self._owner
        return chime(kind, owner.level, owner.ceiling, owner.cache)

    def identity(self, kind: ChimeKind) -> str:
        from voicecoach.audio.tones import identity

        return identity(kind, self._owner.level, self._owner.ceiling)

    def __iter__(self) -> Iterator[ChimeKind]:
        return iter(self._kinds)

    def __len__(self) -> int:
        return len(self._kinds)


def check_speech(engine: Engine, settings: VoiceSettings) -> None:
    """Refuse what a render would refuse (rate, volume, an unknown voice), without rendering:
    an estimate must not accept options the real thing rejects."""
    from voicecoach.speech.base import validate_settings

    validate_settings(settings)
    engine.resolve_voice(settings.voice)


def timed_plan(
    routine: Routine,
    options: PlanOptions,
    *,
    engine: Engine,
    settings: VoiceSettings,
    cache: ClipCache,
    on_clip: Notify | None = None,
    sound: SoundOptions | None = None,
) -> Plan:
    """The plan timed from real speech, without preparing the audio (for `show` and `list`):
    only the clips' lengths are kept."""
    return _render_and_plan(routine, options, engine, settings, cache, on_clip, sound,
                            _Lengths(), None)


class _Lengths:
    """Stands in for a ClipStore when only each clip's length matters."""

    def __init__(self) -> None:
        self._frames: dict[str, int] = {}

    def add(self, text: str, pcm: bytes) -> None:
        self._frames[text] = frames(pcm)

    def frames(self, text: str) -> int:
        return self._frames[text]

    def __contains__(self, text: object) -> bool:
        return text in self._frames

    def __len__(self) -> int:
        return len(self._frames)


def prepare(
    routine: Routine,
    options: PlanOptions,
    *,
    engine: Engine,
    settings: VoiceSettings,
    cache: ClipCache,
    on_clip: Notify | None = None,
    sound: SoundOptions | None = None,
    lazy: bool | Literal["checked"] = False,
) -> Prepared | LazyPrepared:
    """Render (or fetch from the cache) each distinct cue, build the plan from their lengths,
    then make the session's sound: every cue at one loudness, chimes, the music bed, and one
    level for all of it that brings the track to the loudness target (see voicecoach.audio.mix).

    The planner asks for lengths as it goes; a text it has not seen yet is rendered on the spot,
    so the plan is sample-exact and nothing is synthesised that the plan does not use.

    `lazy`: see LazyPrepared; "checked" reads every cached clip (a damaged one is spoken again)
    instead of trusting the entries' headers, after a lazy session found one that did not hold."""
    sound = sound or SoundOptions()
    if lazy and sound.music is None:
        return _prepare_lazy(routine, options, engine, settings, cache, on_clip, sound,
                             checked=lazy == "checked")
    from voicecoach.audio.mix import make_sound

    raw = ClipStore()
    infos: dict[str, ClipInfo] = {}
    try:
        plan = _render_and_plan(routine, options, engine, settings, cache, on_clip, sound, raw,
                                infos)
        mixer = make_sound(plan, raw, infos, sound, cache)  # owns `raw` from here on
    except BaseException:
        raw.close()
        raise
    return Prepared(plan, mixer.clips, mixer, cache)


def _prepare_lazy(routine: Routine, options: PlanOptions, engine: Engine,
                  settings: VoiceSettings, cache: ClipCache, on_clip: Notify | None,
                  sound: SoundOptions, *, checked: bool = False) -> LazyPrepared:
    """The plan timed from each clip's length as the cache's entry header tells it; only a clip
    the cache lacks is rendered (and kept in a spool)."""
    from voicecoach.speech import render_clips
    from voicecoach.speech.base import validate_settings
    from voicecoach.speech.render import clip_key

    validate_settings(settings)
    voice = engine.resolve_voice(settings.voice).id
    options = sound.plan_options(options)
    cancel.stage("speaking")
    fresh = ClipStore()
    known: dict[str, Known] = {}

    def render(text: str) -> bytes:
        return render_clips(engine, [text], settings, cache)[text]

    def measure(text: str) -> int:
        if text not in known:
            key = clip_key(engine, voice, text, settings)
            if checked:  # read and verified: a bad entry is deleted here, and is a miss
                pcm = cache.get(key)
                head = None if pcm is None else (
                    len(pcm), hashlib.blake2b(pcm, digest_size=16).hexdigest())
                if pcm is not None:
                    # Kept as read: the retry must not go back to an entry that another
                    # process may prune or replace before the track is made.
                    fresh.add(text, pcm)
            else:
                head = cache.peek(key)
            if head is None:
                raw = render(text)
                fresh.add(text, raw)
                head = (len(raw), hashlib.blake2b(raw, digest_size=16).hexdigest())
            known[text] = Known(key, head[1], frames_in(head[0]))
            if on_clip is not None:
                on_clip(len(known))
        return known[text].frames

    try:
        plan = build_plan(routine, options, measure)
    except BaseException:
        fresh.close()
        raise
    return LazyPrepared(plan, known, fresh, sound, cache, render)


def _render_and_plan(
    routine: Routine,
    options: PlanOptions,
    engine: Engine,
    settings: VoiceSettings,
    cache: ClipCache,
    on_clip: Notify | None,
    sound: SoundOptions | None,
    clips: ClipStore | _Lengths,
    infos: dict[str, ClipInfo] | None,
) -> Plan:
    from voicecoach.audio.mix import analyse
    from voicecoach.speech import render_clips

    if sound is not None:
        options = sound.plan_options(options)
    cancel.stage("speaking")

    def measure(text: str) -> int:
        if text not in clips:
            raw = render_clips(engine, [text], settings, cache)[text]
            clips.add(text, raw)
            if infos is not None:
                infos[text] = analyse(raw, cache)
            if on_clip is not None:
                on_clip(len(clips))
        return clips.frames(text)

    return build_plan(routine, options, measure)
