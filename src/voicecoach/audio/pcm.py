"""The one audio format inside voicecoach (mono s16le at 22.05 kHz) and its conversions."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

SAMPLE_RATE = 22050
#: Bytes per sample (s16le); mono, so also bytes per frame.
SAMPLE_WIDTH = 2
CHANNELS = 1


def frames(pcm: bytes | bytearray | memoryview) -> int:
    """How many frames a PCM buffer holds."""
    return len(pcm) // SAMPLE_WIDTH


def frames_in(size: int) -> int:
    """How many whole frames `size` bytes of PCM hold."""
    return size // SAMPLE_WIDTH


def nbytes(count: int) -> int:
    """How many bytes `count` frames take: every PCM byte count is reckoned here."""
    return count * SAMPLE_WIDTH


def silence(count: int) -> bytes:
    """`count` frames of digital silence."""
    return bytes(count * SAMPLE_WIDTH)


def whole(pcm: bytes) -> bytes:
    """The buffer cut to whole frames (a pipe or an engine may stop mid-sample)."""
    return pcm[: len(pcm) - len(pcm) % SAMPLE_WIDTH]


def to_s16(x: np.ndarray) -> bytes:
    """Float samples (full scale 1.0) to s16le PCM, saturating."""
    import numpy as np

    return np.clip(np.round(x * 32768), -32768, 32767).astype("<i2").tobytes()


def from_s16(pcm: bytes) -> np.ndarray:
    """s16le PCM to float samples (full scale 1.0)."""
    import numpy as np

    return np.frombuffer(pcm, "<i2") / 32768.0
