"""The chimes: short tones made with pydub's generators, each exactly as long as the plan says."""

from __future__ import annotations

import hashlib
import json
import warnings
from functools import cache
from typing import TYPE_CHECKING

from voicecoach.audio.ffmpeg import pydub_audio_segment
from voicecoach.audio.options import PROCESS_VERSION
from voicecoach.audio.pcm import SAMPLE_RATE, to_s16
from voicecoach.plan.timeline import CHIME_SECONDS, TICK_SECONDS, ChimeKind

# numpy loads where a chime is made: naming one (identity) needs only the tables below.
if TYPE_CHECKING:
    import numpy as np

#: (frequency Hz, onset ms, length ms, level dB) of each note: a rising pair for "go", the same
#: pair falling for "stop", a bell with its octave for "rest is over", a high blip for a tick.
TONES: dict[ChimeKind, tuple[tuple[float, int, int, float], ...]] = {
    ChimeKind.HOLD_START: ((784.0, 0, 300, -3.0), (1174.7, 90, 210, 0.0)),
    ChimeKind.HOLD_END: ((1174.7, 0, 300, -3.0), (784.0, 90, 210, 0.0)),
    ChimeKind.REST_END: ((1046.5, 0, 300, 0.0), (2093.0, 0, 150, -9.0)),
    ChimeKind.TICK: ((1568.0, 0, 50, 0.0),),
}
#: Loudness of a chime (and of a tick) against the speech: clear, but not louder than a cue.
LEVEL = {ChimeKind.HOLD_START: -6.0, ChimeKind.HOLD_END: -6.0, ChimeKind.REST_END: -6.0,
         ChimeKind.TICK: -14.0}


def identity(kind: ChimeKind, speech_lufs: float, ceiling: float) -> str:
    """A name for render(kind, speech_lufs, ceiling) made from its inputs, without making it."""
    fields = ["chime", PROCESS_VERSION, kind.value, TONES[kind], LEVEL[kind],
              round(speech_lufs, 3), round(ceiling, 6)]
    return hashlib.sha256(json.dumps(fields).encode()).hexdigest()


def chime_frames(kind: ChimeKind, rate: int = SAMPLE_RATE) -> int:
    return round((TICK_SECONDS if kind == ChimeKind.TICK else CHIME_SECONDS) * rate)


@cache
def tone(kind: ChimeKind) -> np.ndarray:
    """The chime as float samples (full scale 1.0), before levelling: notes with a 4 ms attack
    and a decay to silence over the rest of their length, laid over silence of the plan's length.
    """
    import numpy as np

    segment_type = pydub_audio_segment()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Couldn't find ffmpeg", RuntimeWarning)
        from pydub.generators import Sine

    frames = chime_frames(kind)
    base = segment_type.silent(duration=frames * 1000 / SAMPLE_RATE + 1, frame_rate=SAMPLE_RATE)
    for freq, onset, length, level in TONES[kind]:
        note = Sine(freq, sample_rate=SAMPLE_RATE).to_audio_segment(duration=length, volume=level)
        note = note.set_frame_rate(SAMPLE_RATE).fade_in(4).fade_out(length - 4)
        base = base.overlay(note, position=onset)
    pcm = np.frombuffer(base.raw_data, dtype=np.int16)[:frames]
    out = np.zeros(frames)
    out[: len(pcm)] = pcm / 32768.0
    return out


def render(
    kind: ChimeKind, speech_lufs: float, ceiling: float, made: np.ndarray | None = None
) -> bytes:
    """The chime as s16le PCM at LEVEL[kind] LU from the speech loudness, peaks under ceiling.
    `made` may pass tone(kind) when it is already at hand."""
    from voicecoach.audio.loudness import clip_loudness, db_to_gain, limit

    x = tone(kind) if made is None else made
    x = x * db_to_gain(speech_lufs + LEVEL[kind] - clip_loudness(x))
    x = limit(x, ceiling)
    return to_s16(x)
