"""How the command line ends: an exit code, one line on a failure, quiet on a closed pipe."""

from __future__ import annotations

import contextlib
import os
import sys


def _stdout_is_devnull() -> bool:
    try:
        here, null = os.fstat(1), os.stat(os.devnull)
    except OSError:
        return False
    return (here.st_dev, here.st_ino) == (null.st_dev, null.st_ino)


def _exit(code: int) -> None:
    from voicecoach import cancel

    if code in cancel.EXIT_CODES.values():
        _exit_now(code)
    # The work is done (or has failed and said so): a signal arriving while the interpreter
    # shuts down (joining helper threads) would only print "Exception ignored" noise. One that
    # came before, after the last check, still makes this an interrupted run: never exit 0.
    cancel.ignore()
    if cancel.requested() and code == 0:
        print("stopped", file=sys.stderr)
        _exit_now(cancel.Interrupted(cancel.signum()).exit_code)
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _quiet_broken_pipe()
    except (OSError, ValueError):
        pass
    sys.exit(code)


def _exit_now(code: int) -> None:
    """Leave at once after an interruption: every cleanup (`finally`) has already run on the way
    here, and waiting for helper threads at interpreter shutdown could print their tracebacks."""
    from voicecoach import cancel

    cancel.leave(code)


def _fail(line: str, code: int, *, located: bool = False) -> None:
    # Only a line that starts with its FILE:LINE:COL goes without `error: `: the error says so,
    # as a path at the start of a message ("s.txt: ...") is no location.
    # The terminal may be gone (SIGHUP): a line that cannot be written is not a second failure.
    with contextlib.suppress(OSError, ValueError):
        print(line if located or line.startswith(("error", "internal", "stopped"))
              else f"error: {line}", file=sys.stderr)
    _exit(code)


def _quiet_broken_pipe() -> None:
    # The reader went away (e.g. `| head`): the output was wanted no further, which is
    # success for a Unix tool; no second error from flushing at shutdown either.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    sys.exit(0)
