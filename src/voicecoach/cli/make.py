"""Commands that make a session from the library: make, and rate to steer it."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Annotated

import typer

from voicecoach import coach
from voicecoach.cli.app import app
from voicecoach.cli.options import UnderstandOpt
from voicecoach.errors import UserError


@app.command()
def make(
    minutes: Annotated[float, typer.Option("--minutes", "-m", help="How long the session lasts, 2 to 90 minutes (measured on the real speech, within 10%).")] = 10,
    focus: Annotated[list[str] | None, typer.Option("--focus", help="An area to work: neck, shoulders, upper back, mid back, lower back, hips (repeat for more; default: the whole back).")] = None,
    equipment: Annotated[list[str] | None, typer.Option("--equipment", help="What you have at hand: mat, foam roller, chair, bed, tennis ball, wall, towel, or none (repeat for more; default: mat).")] = None,
    gentle: Annotated[bool, typer.Option("--gentle", help="No self-manipulation (cracking) moves.")] = False,
    date: Annotated[str | None, typer.Option("--date", metavar="YYYY-MM-DD", help="The day to plan for (default: today); limits and variety are judged on that day.")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="The routine file to write (default: session-DATE.yaml here).")] = None,
    i_understand: UnderstandOpt = False,
    force: Annotated[bool, typer.Option("--force", help="Replace the -o file even if you edited it, or `make` did not write it.")] = False,
) -> None:
    """Make a session from the whole library: your minutes, focus and equipment, a fresh mix each day.

    It writes an ordinary routine file (edit it, `show` it, `play` it) and remembers the settings
    for `play today`, `export today` and `show today`.

    Example: [bold]voicecoach make --minutes 15 --focus "lower back" --equipment mat[/bold]
    """
    day = _parse_date(date)
    request = coach.Request(minutes, day, tuple(focus or ()), tuple(equipment or coach.DEFAULT_EQUIPMENT),
                      gentle, i_understand)
    made, dest = coach.make(request, output, force=force)
    typer.echo(f"Wrote {dest}: {made.routine.title}, {coach.format_clock(made.seconds)} "
               f"({coach.counted(len(made.routine.exercises), 'exercise')} from {made.pool} eligible)")
    for title, start, end in made.plan.chapters()[1:]:
        typer.echo(f"  {coach.format_clock(made.plan.seconds(end - start)):>6}  {title}")
    for name, reason in made.left_out:
        typer.echo(f"Left out: {name}: {reason}")
    for what, count in made.skipped:
        typer.echo(f"Set aside by {what}: {coach.counted(count, 'exercise')}")


def _parse_date(text: str | None) -> _dt.date:
    if text is None:
        return _dt.date.today()
    try:
        day = _dt.date.fromisoformat(text)
        if not 1970 <= day.year <= 9998:  # a day's neighbours (yesterday, tomorrow) must exist
            raise ValueError(text)
        return day
    except ValueError:
        raise UserError(f"--date {text!r} is not a date voicecoach can plan for",
                        fix="write it as YYYY-MM-DD, between 1970 and 9998") from None


@app.command()
def rate(
    exercise: Annotated[str, typer.Argument(help="An exercise of the bundled routines, by name.")],
    verdict: Annotated[str, typer.Argument(help="up (chosen more often), down (never chosen) or clear.")],
) -> None:
    """Thumb an exercise up or down for the sessions `make` composes.

    Example: [bold]voicecoach rate "cat cow" up[/bold]
    """
    name = coach.rate(exercise, verdict.lower())
    said = {"up": "favoured in made sessions", "down": "never chosen for made sessions",
            "clear": "no longer rated"}[verdict.lower()]
    typer.echo(f"{name}: {said}.")
