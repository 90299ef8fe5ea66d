"""Prepare a routine for listening: speak every cue once, level it, and time the plan from the clips."""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from voicecoach.errors import os_fault
from voicecoach.ffmpeg import SAMPLE_RATE, pydub_audio_segment
from voicecoach.model import Routine
from voicecoach.plan import Plan, PlanOptions, build_plan
from voicecoach.timeline import pcm_chunks

if TYPE_CHECKING:
    from voicecoach.cache import ClipCache
    from voicecoach.speech import Engine, VoiceSettings

#: Every cue is brought to the same loudness, so no cue sounds quieter than the others.
SPEECH_DBFS = -18.0
PEAK_DBFS = -1.0

Notify = Callable[[int], None]


class ClipStore(Mapping[str, bytes]):
    """Levelled clips by text, spooled to an anonymous temporary file.

    Memory then stays the same whatever the routine's length or number of distinct cues:
    a clip is read back only while its event is being streamed."""

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile(prefix="voicecoach-clips-")
        self._index: dict[str, tuple[int, int]] = {}
        self._lock = threading.Lock()

    def add(self, text: str, pcm: bytes) -> None:
        with self._lock:
            try:
                self._file.seek(0, 2)
                offset = self._file.tell()
                self._file.write(pcm)
                self._file.flush()
            except OSError as exc:
                raise os_fault(exc, f"spooling speech to {tempfile.gettempdir()}") from None
            self._index[text] = (offset, len(pcm))

    def frames(self, text: str) -> int:
        return self._index[text][1] // 2

    def __getitem__(self, text: str) -> bytes:
        offset, size = self._index[text]
        with self._lock:
            self._file.seek(offset)
            return self._file.read(size)

    def __contains__(self, text: object) -> bool:
        return text in self._index

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)

    def close(self) -> None:
        self._file.close()


@dataclass(frozen=True)
class Prepared:
    """A plan timed from real clips, and those clips (levelled s16le mono PCM by text)."""

    plan: Plan
    clips: ClipStore

    def stream(self, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """The audio of frames [start, end) as s16le mono PCM chunks: what export encodes and
        live play sends to the speakers, so both are always the same."""
        return pcm_chunks(self.plan, self.clips, start, end)


def prepare(
    routine: Routine,
    options: PlanOptions,
    *,
    engine: Engine,
    settings: VoiceSettings,
    cache: ClipCache,
    on_clip: Notify | None = None,
) -> Prepared:
    """Render (or fetch from the cache) each distinct cue, then build the plan from their lengths.

    The planner asks for lengths as it goes; a text it has not seen yet is rendered on the spot,
    so the plan is sample-exact and nothing is synthesised that the plan does not use."""
    from voicecoach.speech import render_clips

    clips = ClipStore()

    def measure(text: str) -> int:
        if text not in clips:
            raw = render_clips(engine, [text], settings, cache)[text]
            clips.add(text, level(raw))
            if on_clip is not None:
                on_clip(len(clips))
        return clips.frames(text)

    return Prepared(build_plan(routine, options, measure), clips)


def level(pcm: bytes) -> bytes:
    """Bring a clip to SPEECH_DBFS RMS, never letting its peak pass PEAK_DBFS."""
    if not pcm:
        return pcm
    segment_type = pydub_audio_segment()
    clip = segment_type(data=pcm, sample_width=2, frame_rate=SAMPLE_RATE, channels=1)
    if clip.rms == 0:
        return pcm
    gain = SPEECH_DBFS - clip.dBFS
    gain = min(gain, PEAK_DBFS - clip.max_dBFS)
    return clip.apply_gain(gain).raw_data
