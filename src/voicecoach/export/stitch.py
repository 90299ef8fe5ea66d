"""Frame-stitched MP3: a track made by copying each cue's cached, already-encoded frames."""

from __future__ import annotations

import bisect
import hashlib
import itertools
import json
import re
import struct
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from voicecoach import cancel
from voicecoach.audio.ffmpeg import ffmpeg_identity, last_line, mp3_command
from voicecoach.audio.pcm import frames as frames_of
from voicecoach.audio.pcm import nbytes, silence
from voicecoach.errors import EncoderError, os_fault
from voicecoach.plan.timeline import GRID, ChimeKind, Plan
from voicecoach.storage.cache import ClipCache

# Why this works: with the bit reservoir off, an MPEG-2 layer III frame carries all its own
# bits, and decoding is linear in the frames' coefficients (the IMDCT overlap and the synthesis
# filterbank only add up what neighbouring frames hold). A silent frame holds no coefficients.
# So a stretch of sound encoded on its own, with silence around it, decodes to the same samples
# wherever its frames are copied into a run of silent frames: the track decodes to the sum of
# its pieces. Pieces must not share a frame: sounds closer than MERGE are encoded as one piece.

#: Bump when the layout of a cached piece (or how pieces are named) changes.
FORMAT_VERSION = 2
#: LAME's encoder delay (samples before input sample 0; the decoder adds 529 of its own).
ENCODER_DELAY = 576
DECODER_DELAY = 529
#: Silent frames kept around each piece when several are encoded in one run of the encoder: a
#: piece's coefficients reach at most 2 frames before and 3 after its sound (measured).
MARGIN = 6
#: Sounds closer than this (samples) are one piece: their frames would overlap.
MERGE = 6 * GRID
_SIDE_INFO = 9  # bytes of side information in an MPEG-2 mono frame
_MPEG2_L3_KBPS = (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)
_RATES = {0: 22050, 1: 24000, 2: 16000}
Progress = Callable[[int], None]


@dataclass(frozen=True)
class Encoded:
    """One piece as MP3 frames: `frames` start `offset` frames after the piece's first grid
    frame (negative: the encoder's coefficients start before the sound)."""

    offset: int
    frames: bytes
    count: int


def frame_length(header: bytes) -> int:
    """Bytes in the MPEG-2 layer III frame whose 4-byte header this is (0: not such a frame)."""
    h = int.from_bytes(header[:4], "big")
    if h >> 21 != 0x7FF or (h >> 19) & 3 != 2 or (h >> 17) & 3 != 1:
        return 0
    kbps, rate = _MPEG2_L3_KBPS[(h >> 12) & 15] if (h >> 12) & 15 < 15 else 0, _RATES.get(
        (h >> 10) & 3, 0)
    if not kbps or not rate:
        return 0
    return 72000 * kbps // rate + ((h >> 9) & 1)


def split_frames(data: bytes) -> list[bytes]:
    """The frames of an MP3 stream that holds nothing else."""
    frames, at = [], 0
    while at < len(data):
        n = frame_length(data[at : at + 4])
        if not n or at + n > len(data):
            raise EncoderError(f"ffmpeg wrote an MP3 frame this cannot read at byte {at}")
        frames.append(data[at : at + n])
        at += n
    return frames


def is_silent(frame: bytes) -> bool:
    """No coefficients: part2_3_length (after main_data_begin and a private bit) is 0."""
    bits = int.from_bytes(frame[4 : 4 + _SIDE_INFO], "big")
    return (bits >> (_SIDE_INFO * 8 - 21)) & 0xFFF == 0


# -- pieces -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Piece:
    """Sounds close together, from grid point `start` for `length` samples: (offset, source)
    where a source is a clip's text or a chime kind."""

    start: int
    length: int
    parts: tuple[tuple[int, str | ChimeKind], ...]


def pieces(plan: Plan, merge: int = MERGE) -> list[Piece]:
    """Every stretch of sound in the plan (cues and chimes), close ones together, each from the
    grid point at or before its first sound."""
    spans: list[tuple[int, int, str | ChimeKind]] = [
        (e.start, e.start + e.speech, e.text) for e in plan.events if e.text and e.speech > 0]
    spans += [(c.start, c.end, c.kind) for c in plan.chimes]
    spans.sort(key=lambda s: s[0])
    out: list[Piece] = []
    group: list[tuple[int, int, str | ChimeKind]] = []
    end = 0
    for span in spans:
        if group and span[0] - end >= merge:
            out.append(_piece(group))
            group = []
        group.append(span)
        end = max(end, span[1]) if len(group) > 1 else span[1]
    if group:
        out.append(_piece(group))
    return out


def _piece(group: list[tuple[int, int, str | ChimeKind]]) -> Piece:
    start = group[0][0] // GRID * GRID
    end = max(b for _, b, _ in group)
    return Piece(start, end - start, tuple((a - start, src) for a, _, src in group))


def piece_name(
    piece: Piece, speech: Mapping[str, int], clips: Mapping[str, bytes],
    chimes: Mapping[ChimeKind, bytes],
) -> list[object]:
    """What makes the piece's samples, without them: each part's offset and the name of its
    sound by its inputs (`identity` of the clips and chimes mappings: the raw clip's digest and
    the level, or the chime's tones and level), and how much of a clip the plan plays
    (`speech`, by text)."""
    named = []
    for offset, source in piece.parts:
        if isinstance(source, ChimeKind):
            named.append([offset, chimes.identity(source), None])  # type: ignore[attr-defined]
        else:
            named.append([offset, clips.identity(source), speech[source]])  # type: ignore[attr-defined]
    return [piece.length, named]


def _named(clips: Mapping[str, bytes], chimes: Mapping[ChimeKind, bytes]) -> bool:
    return callable(getattr(clips, "identity", None)) and callable(
        getattr(chimes, "identity", None))


def piece_pcm(
    piece: Piece, plan: Plan, clips: Mapping[str, bytes], chimes: Mapping[ChimeKind, bytes]
) -> bytes:
    """The piece's samples: what the stream holds over [start, start + length)."""
    speech = {e.text: e.speech for e in plan.events if e.text}
    buf = bytearray(silence(piece.length))
    for offset, source in piece.parts:
        if isinstance(source, ChimeKind):
            sound = chimes[source]
        else:
            sound = clips[source][: nbytes(speech[source])]
        at = nbytes(offset)
        buf[at : at + len(sound)] = sound
    return bytes(buf)


# -- encoding, once per piece ------------------------------------------------------------------


class FrameCache:
    """Encoded pieces in the clip cache, keyed by the inputs of their samples (piece_name; or
    by the samples themselves where the sounds have no names), the bit rate and the encoder's
    build; a batch of missing pieces costs one run of the encoder. `encodes` counts the pieces
    encoded (what a changed cue costs)."""

    def __init__(self, cache: ClipCache | None, bitrate: int, rate: int) -> None:
        self.cache, self.bitrate, self.rate = cache, bitrate, rate
        self._settings = [FORMAT_VERSION, bitrate, rate, ffmpeg_identity()]
        self.encodes = 0
        self.runs = 0

    def key(self, pcm: bytes) -> str:
        digest = hashlib.blake2b(pcm, digest_size=16).hexdigest()
        return hashlib.sha256(json.dumps(["mp3 piece", *self._settings, digest]).encode()
                              ).hexdigest()

    def named_key(self, name: list[object]) -> str:
        return hashlib.sha256(json.dumps(["mp3 named piece", *self._settings, name]).encode()
                              ).hexdigest()

    def get_many(self, keys: list[str], pcm_of: Callable[[int], bytes]) -> list[Encoded]:
        """The pieces under `keys`; the missing ones are made from pcm_of(their index)."""
        found: list[Encoded | None] = [self._get(k) for k in keys]
        missing = [i for i, e in enumerate(found) if e is None]
        if missing:
            made = self.encode([pcm_of(i) for i in missing])
            for i, enc in zip(missing, made, strict=True):
                found[i] = enc
                if self.cache is not None:
                    self.cache.put(keys[i], struct.pack("<i", enc.offset) + enc.frames)
        return [e for e in found if e is not None]

    def _get(self, key: str) -> Encoded | None:
        data = self.cache.get(key) if self.cache is not None else None
        if data is None or len(data) < 4:
            return None
        try:
            count = len(split_frames(data[4:]))
        except EncoderError:
            return None
        return Encoded(struct.unpack("<i", data[:4])[0], data[4:], count)

    def encode(self, pcms: list[bytes]) -> list[Encoded]:
        """Encode pieces in one run: each at a grid point with MARGIN silent frames around it.
        A piece's frames are the ones from its first to its last that hold coefficients."""
        cancel.check()
        gap = silence(MARGIN * GRID)
        layout, starts, at = [gap], [], MARGIN * GRID
        for piece in pcms:
            frames = -(-frames_of(piece) // GRID)
            starts.append((at // GRID, frames))
            layout += [piece, silence(frames * GRID - frames_of(piece)), gap, gap]
            at += (frames + 2 * MARGIN) * GRID
        frames_out = split_frames(self._run(b"".join(layout)))
        self.runs += 1
        out = []
        for first, n in starts:
            lo, hi = first - MARGIN, first + n + MARGIN
            region = frames_out[lo:hi]
            if len(region) != hi - lo or not (is_silent(region[0]) and is_silent(region[-1])):
                raise EncoderError("the MP3 encoder spread a piece further than expected")
            sound = [i for i, f in enumerate(region) if not is_silent(f)]
            if not sound:
                out.append(Encoded(0, b"", 0))
            else:
                kept = region[sound[0] : sound[-1] + 1]
                out.append(Encoded(lo + sound[0] - first, b"".join(kept), len(kept)))
            self.encodes += 1
        return out

    def _run(self, pcm: bytes) -> bytes:
        cmd = mp3_command("pipe:1", self.bitrate, self.rate, reservoir=False, header=False)
        try:
            done = subprocess.run(cmd, input=pcm, capture_output=True)
        except OSError as exc:
            raise EncoderError(f"could not run ffmpeg: {exc}") from None
        if done.returncode != 0:
            raise EncoderError(f"ffmpeg could not encode a cue: {last_line(done.stderr)}")
        return done.stdout

    def silence(self) -> tuple[bytes, bytes]:
        """A silent frame as the encoder makes it, unpadded and padded (a padding byte is one
        more byte of ancillary data: a silent frame reads none)."""
        key = hashlib.sha256(json.dumps(["mp3 silence", *self._settings]).encode()).hexdigest()
        data = self.cache.get(key) if self.cache is not None else None
        if data is None:
            frames = split_frames(self._run(silence(4 * MARGIN * GRID)))
            data = frames[len(frames) >> 1]  # one from the middle, away from both edges
            if self.cache is not None:
                self.cache.put(key, data)
        if not is_silent(data):
            raise EncoderError("the MP3 encoder made no silent frame of silence")
        h = int.from_bytes(data[:4], "big")
        if h >> 9 & 1:
            data = (h & ~(1 << 9)).to_bytes(4, "big") + data[4:-1]
        padded = (h | (1 << 9)).to_bytes(4, "big") + data[4:] + b"\x00"
        return data, padded

    def header_template(self) -> bytes:
        """The Xing/LAME frame ffmpeg writes for these settings (filled in per track)."""
        key = hashlib.sha256(json.dumps(["mp3 header", *self._settings]).encode()).hexdigest()
        data = self.cache.get(key) if self.cache is not None else None
        if data is None:
            with tempfile.TemporaryDirectory(prefix="voicecoach-") as folder:
                path = Path(folder) / "header.mp3"
                cmd = mp3_command(f"file:{path}", self.bitrate, self.rate, reservoir=False)
                done = subprocess.run(cmd, input=bytes(GRID * 8), capture_output=True)
                if done.returncode != 0:
                    raise EncoderError(f"ffmpeg could not encode: {last_line(done.stderr)}")
                written = path.read_bytes()
            first = split_frames(written)[0]
            version = re.search(rb"LAME(\d+\.\d+)", written)
            data = first + b"|" + (version.group(1) if version else b"3.100")
            if self.cache is not None:
                self.cache.put(key, data)
        return data


# -- the track ---------------------------------------------------------------------------------


_XING = b"Info"


def _crc16(data: bytes) -> int:
    """CRC-16/ARC (the LAME tag's checksum)."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def header_frame(template: bytes, frames: int, size: int, toc: bytes, padding: int) -> bytes:
    """The Info (Xing) frame with the track's frame count, byte count (this frame included),
    seek table, and the LAME tag's encoder delay and end padding, so that decoders trim the
    track to its exact length."""
    frame, _, version = template.rpartition(b"|")
    head = bytearray(frame)
    at = head.find(_XING)
    if at < 0:
        raise EncoderError("ffmpeg wrote no Xing/Info header")
    head[at + 4 : at + 8] = (0x0F).to_bytes(4, "big")
    head[at + 8 : at + 12] = frames.to_bytes(4, "big")
    head[at + 12 : at + 16] = size.to_bytes(4, "big")
    head[at + 16 : at + 116] = toc
    lame = at + 120
    # Named LAME (it is LAME's output), so that mutagen reads the delay and padding too.
    head[lame : lame + 9] = (b"LAME" + version)[:9].ljust(9, b"\x00")
    head[lame + 21 : lame + 24] = ((ENCODER_DELAY << 12) | padding).to_bytes(3, "big")
    head[lame + 28 : lame + 32] = size.to_bytes(4, "big")
    head[lame + 32 : lame + 34] = b"\x00\x00"  # the music's CRC: left out (no reader checks it)
    head[lame + 34 : lame + 36] = _crc16(bytes(head[:190])).to_bytes(2, "big")
    return bytes(head)


@dataclass(frozen=True)
class Stitched:
    """What a stitch did: frames written, pieces encoded now (the rest came from the cache),
    pieces placed, and the frame numbers where each piece begins and ends (the joins)."""

    frames: int
    encodes: int
    pieces: int
    joins: tuple[int, ...]


def write_stitched(
    plan: Plan,
    clips: Mapping[str, bytes],
    chimes: Mapping[ChimeKind, bytes],
    dest: Path,
    *,
    bitrate: int,
    cache: ClipCache | None,
    on_progress: Progress | None = None,
) -> Stitched:
    """Write the plan's track to `dest` (a temporary: the caller renames it) by copying frames."""
    cancel.stage("encoding")
    coder = FrameCache(cache, bitrate, plan.rate)
    placed, count = place(plan, clips, chimes, coder)
    total = plan.total
    frames = -(-(total + ENCODER_DELAY + DECODER_DELAY) // GRID)
    if placed:
        frames = max(frames, placed[-1][0] + placed[-1][1].count)
    padding = frames * GRID - ENCODER_DELAY - total
    quiet, quiet_padded = coder.silence()
    template = coder.header_template()
    head_len = len(template.rpartition(b"|")[0])
    body = list(_body(placed, frames, quiet, quiet_padded, head_len, plan.rate, bitrate))
    size = head_len + sum(len(b) for _, b in body)
    toc = _toc(body, frames, size, head_len)
    try:
        with dest.open("wb") as out:
            out.write(header_frame(template, frames, size, toc, padding))
            done = 0
            for at, chunk in body:
                cancel.check()
                out.write(chunk)
                if on_progress is not None and min(total, at * GRID) > done:
                    on_progress(min(total, at * GRID) - done)
                    done = min(total, at * GRID)
            if on_progress is not None and total > done:
                on_progress(total - done)
    except OSError as exc:
        raise os_fault(exc, f"writing {dest}") from None
    joins = tuple(j for at, enc in placed for j in (at, at + enc.count))
    return Stitched(frames, coder.encodes, count, joins)


def place(
    plan: Plan, clips: Mapping[str, bytes], chimes: Mapping[ChimeKind, bytes], coder: FrameCache
) -> tuple[list[tuple[int, Encoded]], int]:
    """Every piece's frames at their frame number, in order, none sharing a frame. Pieces the
    encoder spread into each other (not seen yet: MERGE keeps them apart) are merged and
    encoded again."""
    merge = MERGE
    named = _named(clips, chimes)
    speech = {e.text: e.speech for e in plan.events if e.text}
    while True:
        found = pieces(plan, merge)
        memo: dict[Piece, int] = {}
        shapes: list[Piece] = []
        for piece in found:
            shape = Piece(0, piece.length, piece.parts)
            if shape not in memo:
                memo[shape] = len(shapes)
                shapes.append(shape)

        def pcm_of(i: int, shapes: list[Piece] = shapes) -> bytes:
            return piece_pcm(shapes[i], plan, clips, chimes)

        # Named by their inputs, pieces found in the cache need no samples at all: a warm
        # export reads and levels no clip.
        keys = ([coder.named_key(piece_name(s, speech, clips, chimes)) for s in shapes] if named
                else [coder.key(pcm_of(i)) for i in range(len(shapes))])
        encoded = coder.get_many(keys, pcm_of)
        placed = []
        for piece in found:
            enc = encoded[memo[Piece(0, piece.length, piece.parts)]]
            if enc.count:
                placed.append((piece.start // GRID + enc.offset, enc))
        if all(a[0] + a[1].count <= b[0] for a, b in itertools.pairwise(placed)) and (
                not placed or placed[0][0] >= 0):
            return placed, len(found)
        merge += 4 * GRID


def _body(
    placed: list[tuple[int, Encoded]], frames: int, quiet: bytes, padded: bytes, head: int,
    rate: int, bitrate: int,
) -> Iterator[tuple[int, bytes]]:
    """(first frame, bytes) of each run of silent frames and each piece. Silent frames are
    padded so the file keeps the constant bit rate's byte count at every frame (seeking by
    byte offset lands where it should), whatever the pieces' own padding."""
    per_frame = 72000 * bitrate / rate  # bytes a frame, on average
    written = head
    at = 0
    for start, enc in [*placed, (frames, Encoded(0, b"", 0))]:
        n = start - at
        if n > 0:
            ideal = round(head + (start) * per_frame)
            extra = max(0, min(n, ideal - written - n * len(quiet)))
            run = padded * extra + quiet * (n - extra)
            yield at, run
            written += len(run)
        if enc.count:
            yield start, enc.frames
            written += len(enc.frames)
        at = start + enc.count


def _toc(body: list[tuple[int, bytes]], frames: int, size: int, head: int) -> bytes:
    """The Xing seek table: for each percent of the track, where it starts in the file, as a
    fraction of the file in 256ths."""
    starts = [at for at, _ in body]
    offsets, pos = [], head
    for _, chunk in body:
        offsets.append(pos)
        pos += len(chunk)
    toc = bytearray()
    for i in range(100):
        frame = i * frames // 100
        k = max(0, bisect.bisect_right(starts, frame) - 1)
        within = (frame - starts[k]) * len(body[k][1]) // _frames_in(body, k, frames)
        toc.append(min(255, (offsets[k] + within) * 256 // size))
    return bytes(toc)


def _frames_in(body: list[tuple[int, bytes]], k: int, frames: int) -> int:
    end = body[k + 1][0] if k + 1 < len(body) else frames
    return max(1, end - body[k][0])
