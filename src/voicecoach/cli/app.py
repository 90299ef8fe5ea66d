"""The Typer application and its global options; commands register themselves in sibling modules."""

from __future__ import annotations

from typing import Annotated

import typer

from voicecoach import __version__

#: Standard streams that were closed when voicecoach started (`>&-`): they write to /dev/null,
#: and a command whose product is its output (`export -o -`) refuses to run.
CLOSED_STREAMS: set[str] = set()
#: The arguments the command line was run with (an export remembers its answer under them).
ARGV: list[str] = []

app = typer.Typer(
    name="voicecoach",
    help="A spoken coach for back and stretching routines: play them live or export MP3 tracks.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)



def _version(value: bool) -> None:
    if value:
        typer.echo(f"voicecoach {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for faults.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """voicecoach speaks routines so you never read a screen mid-stretch.

    Example: [bold]voicecoach export five-minute-back -o back.mp3[/bold]
    """
    del debug  # read by voicecoach.cli.main before parsing, to show tracebacks of faults
