"""Stream PCM into one ffmpeg process that writes a CBR MP3, atomically, with a progress
callback."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from voicecoach import cancel
from voicecoach.audio.ffmpeg import last_line, mp3_command
from voicecoach.audio.pcm import SAMPLE_RATE, frames
from voicecoach.errors import EncoderError, Fault
from voicecoach.storage.atomic import atomic_target

Progress = Callable[[int], None]
# ffmpeg in a process group of its own: Ctrl-C reaches us alone, and we stop ffmpeg in order.
_OWN_GROUP: dict[str, Any] = (
    {"creationflags": getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)} if os.name == "nt"
    else {"start_new_session": True}
)
#: kbit/s: speech at 22.05 kHz mono needs no more (higher rates are offered for music beds).
DEFAULT_BITRATE = 64
_DISK_FULL = ("No space left", "File too large", "Disk quota")
_NOT_WRITABLE = ("Permission denied", "Operation not permitted", "Read-only file system")


def encode_mp3(
    chunks: Iterable[bytes],
    dest: Path,
    *,
    bitrate: int = DEFAULT_BITRATE,
    rate: int = SAMPLE_RATE,
    finish: Callable[[Path], None] | None = None,
    on_progress: Progress | None = None,
) -> None:
    """Encode s16le mono PCM chunks to `dest` as CBR MP3.

    ffmpeg writes a temporary file beside `dest` (seekable, so it adds the Xing/LAME header and
    the file decodes to its exact length); `finish` may add tags to it; then it is renamed over
    `dest`. On any failure or interruption nothing is left at `dest` and the temporary goes."""
    with atomic_target(dest) as tmp:
        _run_ffmpeg(chunks, tmp, bitrate, rate, on_progress)
        if finish is not None:
            cancel.stage("tagging")
            finish(tmp)
        cancel.check()  # the last moment at which the old file can still be kept


def _command(tmp: Path, bitrate: int, rate: int) -> list[str]:
    return mp3_command(f"file:{tmp}", bitrate, rate)


def _run_ffmpeg(
    chunks: Iterable[bytes], tmp: Path, bitrate: int, rate: int, on_progress: Progress | None
) -> None:
    cancel.stage("encoding")
    with tempfile.TemporaryFile() as errors:
        try:
            # A session of its own: Ctrl-C reaches us, and we stop ffmpeg in order.
            proc = subprocess.Popen(
                _command(tmp, bitrate, rate), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                stderr=errors, **_OWN_GROUP,
            )
        except OSError as exc:
            raise EncoderError(f"could not start ffmpeg: {exc}") from None
        assert proc.stdin is not None
        try:
            for chunk in chunks:
                cancel.check()
                proc.stdin.write(chunk)
                if on_progress is not None:
                    on_progress(frames(chunk))
            proc.stdin.close()
            code = _wait(proc)
        except BrokenPipeError:
            code = proc.wait()
            if code == 0:
                code = -1
        except BaseException:
            _stop(proc)
            raise
        if code != 0:
            errors.seek(0)
            raise _failure(tmp, errors.read(), code)


def _wait(proc: subprocess.Popen[bytes]) -> int:
    """proc.wait() that raises Interrupted within cancel.POLL of a signal."""
    while True:
        cancel.check()
        try:
            return proc.wait(timeout=cancel.POLL)
        except subprocess.TimeoutExpired:
            pass


def _stop(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(OSError):
        proc.kill()
    with contextlib.suppress(Exception):
        proc.wait(timeout=5)
    if proc.stdin is not None:
        with contextlib.suppress(OSError):
            proc.stdin.close()


def _failure(tmp: Path, stderr: bytes, code: int) -> Fault:
    last = last_line(stderr) if stderr.strip() else (
        f"killed by signal {-code}" if code < 0 else f"exit status {code}")
    final = tmp.name.split(".voicecoach-part")[0].lstrip(".")
    # SIGXFSZ: the file-size limit, which is a full disk as far as this file is concerned.
    if any(marker in last for marker in _DISK_FULL) or code == -getattr(signal, "SIGXFSZ", -999):
        return Fault(f"disk full while writing {tmp.parent / final}",
                     fix="free some space and retry")
    refused = next((marker for marker in _NOT_WRITABLE if marker in last), None)
    if refused:
        return Fault(f"cannot write {tmp.parent / final}: {refused.lower()}",
                     fix="choose a folder you can write to")
    return EncoderError(f"ffmpeg failed while encoding {final}: {last}")
