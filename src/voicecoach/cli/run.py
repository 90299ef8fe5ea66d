"""The command line proper: every command registered, parsed by Typer, failures made one line."""

from __future__ import annotations

import contextlib
import os
import sys
import traceback

import typer

# isort: off
# Registration order is the order `voicecoach --help` lists the commands in.
from voicecoach.cli import routines as _routines  # noqa: F401
from voicecoach.cli import export as _export  # noqa: F401
from voicecoach.cli import play as _play  # noqa: F401
from voicecoach.cli import make as _make  # noqa: F401
from voicecoach.cli import safety as _safety  # noqa: F401
from voicecoach.cli import serve as _serve  # noqa: F401
# isort: on
from voicecoach import cancel
from voicecoach.cli.app import ARGV, CLOSED_STREAMS, app
from voicecoach.cli.exits import _exit, _fail, _quiet_broken_pipe, _stdout_is_devnull
from voicecoach.cli.options import finite_numbers
from voicecoach.errors import VoicecoachError, os_fault

__all__ = ["app", "main"]

# `from voicecoach.cli import app` is the Typer app, as it was before this module split off
# (importing the submodule cli/app.py made the package's `app` that module).
sys.modules["voicecoach.cli"].app = app  # type: ignore[attr-defined]


def main(argv: list[str] | None = None) -> None:
    """Run the CLI: every known failure becomes one line on stderr and an exit code."""
    ARGV[:] = argv if argv is not None else sys.argv[1:]
    debug = "--debug" in ARGV or bool(
        os.environ.get("VOICECOACH_DEBUG")
    )
    _open_closed_streams()
    _tolerant_streams()
    devnull_before = _stdout_is_devnull()
    try:
        command = finite_numbers(typer.main.get_command(app))
        try:
            code = command.main(args=argv, prog_name="voicecoach", standalone_mode=False)
        finally:
            ARGV.clear()  # a later call of the app (a test's runner) is another command
    except cancel.Interrupted as stop:
        _fail("stopped", stop.exit_code)
    except VoicecoachError as exc:
        if debug:
            traceback.print_exc()
        if cancel.requested():  # a fault that a signal caused (a cut utterance): it was a stop
            _fail("stopped", cancel.Interrupted(cancel.signum()).exit_code)
        _fail(exc.line(), exc.exit_code, located=exc.located)
    except (typer.Abort, KeyboardInterrupt):
        _fail("stopped", 130)
    except BrokenPipeError:
        _quiet_broken_pipe()
    except SystemExit as exc:
        # click and rich meet a closed pipe themselves and exit 1 (click wraps the streams,
        # rich points stdout at /dev/null). A Unix tool whose reader has gone exits 0.
        if exc.code == 1 and (type(sys.stdout).__name__ == "PacifyFlushWrapper"
                              or (_stdout_is_devnull() and not devnull_before)):
            _quiet_broken_pipe()
        raise
    except OSError as exc:  # a file or folder the user can meet: say which, and what to do
        if debug:
            traceback.print_exc()
        if cancel.requested():  # e.g. the terminal a hangup closed, written to on the way out
            _fail("stopped", cancel.Interrupted(cancel.signum()).exit_code)
        fault = os_fault(exc, f"using {exc.filename}" if exc.filename else "writing the output")
        _fail(fault.line(), fault.exit_code)
    except Exception as exc:  # the last rung: a fault we did not foresee still gets one line
        if _is_usage_error(exc):
            ctx = getattr(exc, "ctx", None)
            hint = f" (see `{ctx.command_path} --help`)" if ctx else " (see `voicecoach --help`)"
            if not exc.format_message():  # type: ignore[attr-defined]
                sys.exit(2)  # no command given: the help was already printed
            _fail(f"error: {exc.format_message()}{hint}", 2)  # type: ignore[attr-defined]
        if debug:
            traceback.print_exc()
        _fail(f"internal error: {type(exc).__name__}: {exc} (run with --debug for details)", 1)
    _exit(code if isinstance(code, int) else 0)


def _open_closed_streams() -> None:
    # Started with a standard stream closed (`voicecoach list >&-`): Python leaves it None, and
    # the first print or flush would be a traceback. What has nowhere to go goes to /dev/null.
    for fd, name in ((1, "stdout"), (2, "stderr")):
        if getattr(sys, name) is None:
            CLOSED_STREAMS.add(name)
            with contextlib.suppress(OSError):
                os.fstat(fd)
                continue  # the descriptor is open after all (taken by something else)
            null = os.open(os.devnull, os.O_WRONLY)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
            setattr(sys, name, open(fd, "w", encoding="utf-8", errors="replace", closefd=False))  # noqa: SIM115


def _tolerant_streams() -> None:
    # A terminal or pipe whose encoding cannot show a character gets "?" for it, not a crash.
    for stream in (sys.stdout, sys.stderr):
        if getattr(stream, "errors", None) == "strict" and hasattr(stream, "reconfigure"):
            with contextlib.suppress(Exception):
                stream.reconfigure(errors="replace")


def _is_usage_error(exc: Exception) -> bool:
    # Typer's usage errors come from click (vendored in newer typer): recognise them by shape.
    return hasattr(exc, "format_message") and getattr(exc, "exit_code", None) == 2
