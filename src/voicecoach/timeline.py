"""Lay a plan's clips and silences out as one PCM stream, in bounded chunks, from any point."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from voicecoach.plan import Plan

SAMPLE_BYTES = 2
#: About 1.5 s of audio per chunk at 22.05 kHz: big enough to keep pipe writes cheap.
CHUNK_FRAMES = 32768


def pcm_chunks(
    plan: Plan,
    clips: Mapping[str, bytes],
    start: int = 0,
    end: int | None = None,
    chunk_frames: int = CHUNK_FRAMES,
) -> Iterator[bytes]:
    """s16le mono PCM for frames [start, end) of the plan; memory stays bounded by the chunk size.

    Every event contributes its clip then silence up to its length, so frame N of this stream is
    exactly frame N of the plan (sample-exact chapters, captions and live cues)."""
    end = plan.total if end is None else min(end, plan.total)
    buf = bytearray()
    limit = chunk_frames * SAMPLE_BYTES
    for piece in _pieces(plan, clips, start, end):
        buf += piece
        while len(buf) >= limit:
            yield bytes(buf[:limit])
            del buf[:limit]
    if buf:
        yield bytes(buf)


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
