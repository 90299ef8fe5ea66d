"""Clips spooled to an anonymous temporary file, read back by text."""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Iterator, Mapping

from voicecoach.audio.pcm import SAMPLE_WIDTH
from voicecoach.errors import os_fault


class ClipStore(Mapping[str, bytes]):
    """Clips by text, spooled to an anonymous temporary file.

    Memory then stays the same whatever the routine's length or number of distinct cues:
    a clip is read back only while its event is being streamed."""

    def __init__(self) -> None:
        # Open for the life of the spool (closed by close()), not one block.
        self._file = tempfile.TemporaryFile(prefix="voicecoach-clips-")  # noqa: SIM115
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
        return self._index[text][1] // SAMPLE_WIDTH

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
