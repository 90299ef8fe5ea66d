"""The serve command: tracks, a podcast feed and a phone page on the home network."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from voicecoach.cli.app import app
from voicecoach.cli.options import JsonOpt


@app.command()
def serve(
    host: Annotated[str | None, typer.Option("--host", metavar="ADDR", help="The address to listen on and to print (default: every address, and this computer's home-network address is printed).")] = None,
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="The port (0: any free one).")] = 8765,
    routines: Annotated[list[Path] | None, typer.Option("--routines", metavar="DIR", help="Also serve the routine files in this folder (repeat for more).")] = None,
    new_token: Annotated[bool, typer.Option("--new-token", help="Replace the secret in the address: old links and feed subscriptions stop working.")] = False,
    library: Annotated[bool, typer.Option("--library/--no-library", help="Serve the bundled routines too.")] = True,
    as_json: JsonOpt = False,
) -> None:
    """Serve routines to a phone on the home network: a page to play them, a podcast feed.

    Open the printed address (or scan the QR code) on the phone. Tracks are made on first use,
    with today's limits applied, and kept; sessions played on the phone count in history.
    Ctrl-C stops it.

    Example: [bold]voicecoach serve --routines my-routines/[/bold]
    """
    from voicecoach.serve.server import Listening
    from voicecoach.serve.server import serve as run

    def ready(listening: Listening) -> None:
        if as_json:
            typer.echo(json.dumps({"url": listening.url, "feed": listening.feed}))
        else:
            typer.echo(f"Open on your phone: {listening.url}\n{_qr(listening.url)}"
                       f"Podcast feed (AntennaPod, Apple Podcasts): {listening.feed}\n"
                       "Ctrl-C stops the server.")
        sys.stdout.flush()

    run(host, port, list(routines or ()), new_token=new_token, with_library=library,
        on_ready=ready)


#: What the compact QR code is drawn with.
BLOCKS = "█▀▄"


def _qr(url: str) -> str:
    """The QR code in block characters; where the output cannot hold them (a Latin-1 or ASCII
    terminal would show a square of '?' that no phone can scan), in reverse-video spaces on a
    terminal, else a line saying to type the address."""
    import segno

    code, out = segno.make(url, error="m"), io.StringIO()
    try:
        BLOCKS.encode(sys.stdout.encoding or "ascii")
    except (UnicodeEncodeError, LookupError):
        if not sys.stdout.isatty():
            return "(This output cannot show the QR code: type the address on the phone.)\n"
        code.terminal(out=out)  # ANSI colours: spaces only
        return out.getvalue()
    code.terminal(out=out, compact=True)
    return out.getvalue()
