"""Console entry point: signals are handled before anything heavy is imported."""

from __future__ import annotations

from voicecoach import cancel


def main() -> None:
    # First, so that a signal during start-up ends quietly too: only imports have run, so
    # there is nothing to clean up and the process may end at once.
    cancel.install()
    cancel.announce("starting")  # from here on, a signal is voicecoach's to handle
    with cancel.at_once():
        from voicecoach.cli import main as cli_main
    cli_main()
