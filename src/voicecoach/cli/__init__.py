"""The `voicecoach` command line: parse options, call the core, print. Nothing else lives here."""

from __future__ import annotations

import sys

__all__ = ["app", "main"]


def main(argv: list[str] | None = None) -> None:
    """Run the CLI: every known failure becomes one line on stderr and an exit code.

    An export that a remembered check finds up to date is answered before Typer, rich and the
    routine model are imported (voicecoach.coach.memo); everything else runs the commands."""
    args = list(argv if argv is not None else sys.argv[1:])
    if sys.stdout is not None and sys.stderr is not None:
        from voicecoach import coach

        answer = coach.replay_up_to_date(args)
        if answer is not None:
            from voicecoach.cli.exits import _exit, _fail, _quiet_broken_pipe

            said, told = answer
            try:
                sys.stderr.write(told)
                sys.stderr.flush()
                sys.stdout.write(said)
                sys.stdout.flush()
            except BrokenPipeError:
                _quiet_broken_pipe()
            except OSError as exc:  # a full disk, a lost terminal: one line, as on the long path
                from voicecoach import cancel
                from voicecoach.errors import os_fault

                if cancel.requested():  # the terminal a hangup closed: that was a stop
                    _fail("stopped", cancel.Interrupted(cancel.signum()).exit_code)
                fault = os_fault(exc, "writing the output")
                _fail(fault.line(), fault.exit_code)
            _exit(0)
            return
    from voicecoach.cli.run import main as run

    run(argv)


def __getattr__(name: str) -> object:
    if name == "app":
        from voicecoach.cli import run

        return run.app
    raise AttributeError(f"module 'voicecoach.cli' has no attribute {name!r}")
