"""Audio measurements for tests: decode what was written and look at its samples."""

from __future__ import annotations

import array
import math
from pathlib import Path

from voicecoach.audio.ffmpeg import decode_pcm
from voicecoach.audio.pcm import SAMPLE_RATE


def decoded(path: Path) -> array.array[int]:
    samples = array.array("h")
    samples.frombytes(decode_pcm(path))
    return samples


def rms(samples: array.array[int], start_s: float, end_s: float) -> float:
    """RMS level in dBFS of a window (-inf for digital silence)."""
    lo, hi = int(start_s * SAMPLE_RATE), int(end_s * SAMPLE_RATE)
    window = samples[lo:hi]
    if not window:
        return -math.inf
    power = sum(s * s for s in window) / len(window)
    return 10 * math.log10(power / 32768**2) if power else -math.inf
