"""Cooperative interruption: signal handlers only record the signal; long loops check the flag."""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator

#: Exit codes of an interrupted run, by signal (128 + the signal's number, as shells report it).
EXIT_CODES = {signal.SIGINT: 130, getattr(signal, "SIGTERM", 15): 143,
              getattr(signal, "SIGHUP", 1): 129}
#: Set (to anything) to have the process announce each stage of its work on stderr, so that
#: tests can interrupt it at a chosen stage.
ENV_TRACE = "VOICECOACH_TRACE_STAGES"
#: How long a blocking wait sleeps between looks at the flag: well inside the 0.5 s promise.
POLL = 0.05

_event = threading.Event()
_signum = 0
_at_once = 0  # > 0: nothing is in progress that needs cleaning up, so a signal ends at once


class Interrupted(BaseException):
    """A signal asked the run to stop. Raised by check() in ordinary code (never by a signal
    handler), so `finally` blocks clean up on the way out; a BaseException, so no `except
    Exception` swallows it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return EXIT_CODES.get(self.signum, 128 + self.signum)


def _handler(signum: int, frame: object) -> None:
    global _signum
    if not _signum:
        _signum = signum
    _event.set()
    if _at_once:
        stopped_now(signum)


def install() -> None:
    """Record SIGINT and SIGTERM from now on (from the main thread, before any work).

    SIGINT is taken even when the process started with it ignored: a non-interactive shell
    starts background jobs so, and `kill -INT` must still stop the command. SIGHUP (the
    terminal closed, an SSH session lost) stops as they do, so a session played so far is
    recorded; unless it was ignored at start (`nohup`), which asks to carry on."""
    for name in ("SIGINT", "SIGTERM"):
        with contextlib.suppress(AttributeError, ValueError, OSError):
            signal.signal(getattr(signal, name), _handler)
    with contextlib.suppress(AttributeError, ValueError, OSError):
        if signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:
            signal.signal(signal.SIGHUP, _handler)


def ignore() -> None:
    """The command has finished: a late signal must not disturb the interpreter's shutdown."""
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        with contextlib.suppress(AttributeError, ValueError, OSError):
            signal.signal(getattr(signal, name), signal.SIG_IGN)


@contextlib.contextmanager
def at_once() -> Iterator[None]:
    """While nothing is in progress that needs cleaning up (imports at start-up, a question on
    the terminal), a signal ends the process at once instead of waiting for a check()."""
    global _at_once
    _at_once += 1
    try:
        if _signum:
            stopped_now(_signum)
        yield
    finally:
        _at_once -= 1


def stopped_now(signum: int) -> None:
    """Say `stopped` and leave with the signal's exit code."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    with contextlib.suppress(OSError):
        os.write(2, b"stopped\n")
    leave(EXIT_CODES.get(signum, 128 + signum))


def leave(code: int) -> None:
    """End the process now, once every `finally` on the way here has run: the exit handlers
    (temporary folders) run, but not the interpreter's shutdown, whose wait for helper threads
    could print their tracebacks."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    with contextlib.suppress(BaseException):
        atexit._run_exitfuncs()
    os._exit(code)


def requested() -> bool:
    """Whether a signal has asked the run to stop (cheap: for callbacks and inner loops)."""
    return _event.is_set()


def signum() -> int:
    """The first signal received, or 0."""
    return _signum


def check() -> None:
    """Raise Interrupted if a signal has asked the run to stop."""
    if _event.is_set():
        raise Interrupted(_signum or signal.SIGINT)


def wait(event: threading.Event, timeout: float | None = None) -> bool:
    """event.wait(timeout) that raises Interrupted within POLL of a signal."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        check()
        left = POLL if deadline is None else min(POLL, deadline - time.monotonic())
        if left <= 0:
            return event.is_set()
        if event.wait(left):
            return True


def sleep(seconds: float) -> None:
    """time.sleep that raises Interrupted within POLL of a signal."""
    wait(threading.Event(), seconds)


def stage(name: str) -> None:
    """Mark the start of a stage of work (speaking, levelling, encoding, tagging): checks the
    flag, and announces the stage on stderr when $VOICECOACH_TRACE_STAGES is set."""
    check()
    announce(name)


def announce(name: str) -> None:
    """Say on stderr that a stage begins, when $VOICECOACH_TRACE_STAGES is set."""
    if os.environ.get(ENV_TRACE):
        with contextlib.suppress(OSError):
            os.write(2, f"voicecoach-stage: {name} {time.monotonic():.4f}\n".encode())


def reset() -> None:
    """Forget a recorded signal (for tests that run several commands in one process)."""
    global _signum
    _signum = 0
    _event.clear()
