"""Commands about safety: the screening questions and the session history."""

from __future__ import annotations

import datetime as _dt
import json
import sys
from typing import TYPE_CHECKING, Annotated, cast

import typer

from voicecoach import cancel, coach
from voicecoach.cli.app import app
from voicecoach.cli.options import JsonOpt
from voicecoach.errors import UserError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from voicecoach.safety.rules import Question


@app.command()
def safety(
    answer: Annotated[list[str] | None, typer.Option("--answer", help="Answer without prompts: KEY=yes|no (repeatable).")] = None,
    show_only: Annotated[bool, typer.Option("--show", help="Show the stored answers without asking.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Answer (or change) the safety questions that decide whether cracking moves are played.

    Any yes leaves self-manipulation exercises out of play and export unless you add
    --i-understand; the gentle stretching routines are always available.

    Example: [bold]voicecoach safety --answer chronic=no --answer diagnosis=no --answer surgery=no --answer pregnant=no --answer condition=no[/bold]
    """
    if answer:
        current = coach.screening(answer)
    elif not show_only and not as_json:
        if not sys.stdin.isatty():
            raise UserError("no terminal to ask the questions on",
                            fix="give every answer with --answer KEY=yes|no, or use --show")
        current = coach.screening(ask=_ask)
    else:
        current = coach.screening()
    if as_json:
        typer.echo(json.dumps(current.as_json(), indent=2, ensure_ascii=False))
        return
    if not current.answered:
        typer.echo("Not answered yet: run `voicecoach safety`.")
        return
    for q in coach.QUESTIONS:
        typer.echo(f"{'yes' if current.answers[q.key] else 'no ':<4} {q.key:<10} {q.text}")  # type: ignore[index]
    if current.rules_out_manipulation:
        typer.echo("Self-manipulation (cracking) moves are left out; please see a doctor or "
                   "physiotherapist first. Gentle routines: " + ", ".join(_gentle()))
    else:
        typer.echo("No answer rules out self-manipulation. Stop at once if anything hurts.")


def _gentle() -> list[str]:
    return coach.gentle_routines()


def _ask(questions: Sequence[Question]) -> dict[str, bool]:
    with cancel.at_once():  # nothing is under way yet: Ctrl-C at a question ends at once
        return {q.key: typer.confirm(q.text, default=False, err=True) for q in questions}


@app.command()
def history(
    limit: Annotated[int, typer.Option("--limit", min=1, max=100_000, help="Show at most this many sessions.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Show past sessions and exports, your streak, and when each limited exercise may be done again.

    Example: [bold]voicecoach history --json[/bold]
    """
    found = coach.report(limit)
    sessions = found.sessions
    current, longest = found.streak
    limits = [{**item, "next_allowed": _iso(item["next_allowed"]) if item["next_allowed"] else None}  # type: ignore[arg-type]
              for item in found.limits]
    if as_json:
        typer.echo(json.dumps({
            "sessions": [s.as_json() for s in sessions],
            "streak": {"current": current, "longest": longest},
            "limits": limits,
        }, indent=2, ensure_ascii=False))
        return
    if not sessions:
        typer.echo("No sessions yet.")
    for s in sessions:
        when = _dt.datetime.fromtimestamp(s.started).strftime("%Y-%m-%d %H:%M")
        if s.kind == "export":
            state = "exported"
        elif s.completed:
            state = "completed"
        else:
            state = f"stopped at {coach.format_clock(s.position)}" + (f" in {s.stopped_at}" if s.stopped_at else "")
        if not s.counts:
            state += ", no exercise done (not counted)"
        forced = "  (limits overridden)" if s.forced else ""
        typer.echo(f"{when}  {s.kind:<6}  {s.routine:<24}  {state}{forced}")
    typer.echo(f"\nStreak: {coach.counted(current, 'day')} now, longest {coach.counted(longest, 'day')}.")
    typer.echo("\nLimited exercises:")
    for item in limits:
        rule = ", ".join(filter(None, [
            f"wait {coach.format_duration(cast(float, item['wait']))}" if item["wait"] else "",
            f"at most {item['max_per_day']} a day" if item["max_per_day"] else "",
        ]))
        nxt = item["next_allowed"] or "now"
        typer.echo(f"  {item['routine']}: {item['exercise']} ({rule}): next {nxt}")


def _iso(ts: float) -> str:
    return _dt.datetime.fromtimestamp(ts).astimezone().isoformat(timespec="minutes")
