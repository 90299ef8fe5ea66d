"""Console entry point: signals are handled before anything heavy is imported."""

from __future__ import annotations

import os
import signal
import sys

from voicecoach.errors import Terminated


def _terminate(signum: int, frame: object) -> None:
    raise Terminated()


def main() -> None:
    # Installed first, so that a signal during start-up (imports) ends quietly too.
    try:
        signal.signal(signal.SIGTERM, _terminate)
    except (ValueError, OSError, AttributeError):
        pass
    try:
        from voicecoach.cli import main as cli_main
    except KeyboardInterrupt:
        _stopped(130)
    except Terminated:
        _stopped(143)
    cli_main()


def _stopped(code: int) -> None:
    print("stopped", file=sys.stderr, flush=True)
    os._exit(code)  # nothing to clean up yet: only imports had run
