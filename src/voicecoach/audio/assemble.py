"""Lay a plan's clips and silences out as one PCM stream, in bounded chunks, from any point."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from voicecoach.audio import pcm
from voicecoach.plan.timeline import ChimeKind, Plan

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
    limit = pcm.nbytes(chunk_frames)
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
    stop = at + pcm.frames(chunk)
    while placed and placed[0].end <= at:
        placed.pop(0)
    for chime in placed:
        if chime.start >= stop:
            break
        lo, hi = max(at, chime.start), min(stop, chime.end)
        tone = chimes[chime.kind]
        chunk[pcm.nbytes(lo - at) : pcm.nbytes(hi - at)] = tone[
            pcm.nbytes(lo - chime.start) : pcm.nbytes(hi - chime.start)]
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
        clip = clip[: pcm.nbytes(event.speech)]
        speech_frames = pcm.frames(clip)
        lo = max(start, event.start) - event.start
        hi = min(end, event.end) - event.start
        if lo < speech_frames:
            yield clip[pcm.nbytes(lo) : pcm.nbytes(min(hi, speech_frames))]
        quiet_from = max(lo, speech_frames)
        if hi > quiet_from:
            yield from _silence(hi - quiet_from)


_ZEROS = memoryview(pcm.silence(CHUNK_FRAMES))


def _silence(frames: int) -> Iterator[memoryview]:
    """Zero samples as views of one shared buffer, so a long hold costs no memory."""
    remaining = pcm.nbytes(frames)
    while remaining > 0:
        n = min(remaining, len(_ZEROS))
        yield _ZEROS[:n]
        remaining -= n
