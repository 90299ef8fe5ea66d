"""Lay a plan's clips and silences out as one PCM stream, in bounded chunks, from any point."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from voicecoach.plan.timeline import ChimeKind, Plan

SAMPLE_BYTES = 2
#: About 1.5 s of audio per chunk at 22.05 kHz: big enough to keep pipe writes cheap.
CHUNK_FRAMES = 32768


def pcm_chunks(
    plan: Plan,
    clips: Mapping[str, bytes],
    start: int = 0,
    end: int | None = None,
    chunk_frames: int = CHUNK_FRAMES,
    chimes: Mapping[ChimeKind, bytes] | None = None,
) -> Iterator[bytes]:
    """s16le mono PCM for frames [start, end) of the plan; memory stays bounded by the chunk size.

    Every event contributes its clip then silence up to its length, so frame N of this stream is
    exactly frame N of the plan (sample-exact chapters, captions and live cues). With `chimes`
    (PCM by kind, each exactly its plan length), the plan's chimes are written into the silences
    the planner chose for them: no cue is under them, so writing is mixing."""
    end = plan.total if end is None else min(end, plan.total)
    buf = bytearray()
    limit = chunk_frames * SAMPLE_BYTES
    at = start
    placed = [c for c in plan.chimes if c.end > start and c.start < end] if chimes else []
    for piece in _pieces(plan, clips, start, end):
        buf += piece
        while len(buf) >= limit:
            chunk = buf[:limit]
            del buf[:limit]
            yield _with_chimes(chunk, at, placed, chimes) if placed else bytes(chunk)
            at += chunk_frames
    if buf:
        yield _with_chimes(buf, at, placed, chimes) if placed else bytes(buf)


def _with_chimes(
    chunk: bytearray, at: int, placed: list[Any], chimes: Mapping[ChimeKind, bytes] | None
) -> bytes:
    """The chunk (frames from `at`) with the chimes that fall in it written in."""
    assert chimes is not None
    stop = at + len(chunk) // SAMPLE_BYTES
    while placed and placed[0].end <= at:
        placed.pop(0)
    for chime in placed:
        if chime.start >= stop:
            break
        lo, hi = max(at, chime.start), min(stop, chime.end)
        pcm = chimes[chime.kind]
        chunk[(lo - at) * SAMPLE_BYTES : (hi - at) * SAMPLE_BYTES] = pcm[
            (lo - chime.start) * SAMPLE_BYTES : (hi - chime.start) * SAMPLE_BYTES]
    return bytes(chunk)


def _pieces(plan: Plan, clips: Mapping[str, bytes], start: int, end: int) -> Iterator[memoryview]:
    if start < plan.lead_in:
        yield from _silence(min(plan.lead_in, end) - start)
    for event in plan.events:
        if event.end <= start:
            continue
        if event.start >= end:
            break
        clip = memoryview(clips[event.text]) if event.text else memoryview(b"")
        clip = clip[: event.speech * SAMPLE_BYTES]
        speech_frames = len(clip) // SAMPLE_BYTES
        lo = max(start, event.start) - event.start
        hi = min(end, event.end) - event.start
        if lo < speech_frames:
            yield clip[lo * SAMPLE_BYTES : min(hi, speech_frames) * SAMPLE_BYTES]
        quiet_from = max(lo, speech_frames)
        if hi > quiet_from:
            yield from _silence(hi - quiet_from)


_ZEROS = memoryview(bytes(CHUNK_FRAMES * SAMPLE_BYTES))


def _silence(frames: int) -> Iterator[memoryview]:
    """Zero samples as views of one shared buffer, so a long hold costs no memory."""
    remaining = frames * SAMPLE_BYTES
    while remaining > 0:
        n = min(remaining, len(_ZEROS))
        yield _ZEROS[:n]
        remaining -= n
