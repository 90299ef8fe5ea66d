"""Audio measurements for tests: decode what was written and look at its samples."""

from __future__ import annotations

import array
import contextlib
import io
import math
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from unittest import mock

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


# --- the command line, in this process --------------------------------------------------------
#
# `python -m voicecoach` costs 0.5-1.5 s of interpreter and import start-up on a loaded machine.
# Tests about what a command says and does (not about the process: signals, start-up, the real
# terminal's encoding, a closed pipe) run its main() here instead, as a fresh process would.


class _Left(BaseException):
    """cancel.leave() in a test process: unwind with the exit code instead of os._exit."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def _leave(code: int) -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    raise _Left(code)


def _needs_own_process(args: list[str], env: Mapping[str, str]) -> bool:
    # libespeak-ng serves one engine per process (speech.base.claim_libespeak), started once
    # with its voice data: a test process has the espeak engine already, so pyttsx3, or other
    # voice data, gets a process of its own.
    return "pyttsx3" in args or "VOICECOACH_ESPEAK_DATA" in env


def run_cli(*args: str | Path, cwd: Path | None = None, env: Mapping[str, str] | None = None,
            input: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`voicecoach ARGS` as a user would run it, with its exit code, stdout and stderr, but
    without a new interpreter: the environment, working folder, standard streams and signal
    handlers are the command's for the call, then restored. `timeout` only applies when the
    command needs a process of its own."""
    argv = [str(a) for a in args]
    env = dict(env or {})
    if _needs_own_process(argv, env):
        return subprocess.run([sys.executable, "-m", "voicecoach", *argv], capture_output=True,
                              text=True, input=input, cwd=cwd, env={**os.environ, **env},
                              timeout=timeout)
    from voicecoach import cancel
    from voicecoach.cli import main
    from voicecoach.storage import cache

    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    saved_streams = sys.stdin, sys.stdout, sys.stderr
    # Every signal voicecoach.cancel handles: a command ends by ignoring them (cancel.ignore), and
    # a SIGHUP left ignored here would be inherited by every later subprocess (as under nohup).
    saved_handlers = {s: signal.getsignal(s) for s in cancel.EXIT_CODES}
    out, err = io.BytesIO(), io.BytesIO()
    stdout = io.TextIOWrapper(out, encoding="utf-8", write_through=True)
    stderr = io.TextIOWrapper(err, encoding="utf-8", write_through=True)
    code: int | str | None = 0
    try:
        os.environ.update(env)
        if cwd is not None:
            os.chdir(cwd)
        sys.stdin = io.TextIOWrapper(io.BytesIO((input or "").encode()), encoding="utf-8")
        sys.stdout, sys.stderr = stdout, stderr
        cancel.reset()
        cancel.install()
        cache._swept.clear()  # a new process sweeps the cache's stale temporaries again
        with mock.patch.object(cancel, "leave", _leave):
            try:
                main(argv)
            except SystemExit as exc:
                code = exc.code
            except _Left as exc:
                code = exc.code
    finally:
        for stream in (stdout, stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        sys.stdin, sys.stdout, sys.stderr = saved_streams
        for signum, handler in saved_handlers.items():
            signal.signal(signum, handler)
        cancel.reset()
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
    if code is None:
        code = 0
    elif isinstance(code, str):  # sys.exit("message"): printed on stderr, exit 1
        err.write(f"{code}\n".encode())
        code = 1
    return subprocess.CompletedProcess(
        ["voicecoach", *argv], code,
        out.getvalue().decode("utf-8", "replace").replace("\r\n", "\n"),
        err.getvalue().decode("utf-8", "replace").replace("\r\n", "\n"))
