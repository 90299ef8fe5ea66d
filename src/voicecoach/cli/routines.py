"""Commands that read routines: list, show, validate."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from voicecoach import coach
from voicecoach.cli.app import app
from voicecoach.cli.options import (
    _D,
    ChimesOpt,
    DetailOpt,
    EngineOpt,
    ForceOpt,
    JsonOpt,
    OnlyOpt,
    PaceOpt,
    RateOpt,
    RoutineArg,
    SkipOpt,
    TicksOpt,
    UnderstandOpt,
    VoiceOpt,
    VolumeOpt,
    ask_screening,
    settings,
    tell,
)
from voicecoach.cli.progress import LazyProgress
from voicecoach.errors import RoutineErrors, UserError


@app.command("list")
def list_cmd(
    as_json: JsonOpt = False,
    estimate: Annotated[bool, typer.Option("--estimate", help="Estimate speech lengths instead of rendering the cues.")] = False,
) -> None:
    """List the bundled routines with their length (as exported with default options).

    Example: [bold]voicecoach list --json[/bold]
    """
    if estimate:
        summaries = coach.catalogue(estimate=True)
    else:
        with LazyProgress() as progress:
            summaries = coach.catalogue(progress=progress)
    if as_json:
        typer.echo(json.dumps([s.as_json() for s in summaries], indent=2, ensure_ascii=False))
        return
    if not summaries:
        raise UserError("no bundled routines were found", fix="reinstall voicecoach")
    width = max(len(s.id) for s in summaries)
    for s in summaries:
        equipment = ", ".join(s.equipment) or "none"
        typer.echo(
            f"{s.id:<{width}}  {coach.format_duration(s.duration):>7}  {coach.counted(s.exercises, 'exercise'):>12}  "
            f"{s.title}  [{equipment}]"
        )


class Session(str, Enum):
    export = "export"
    play = "play"


@app.command()
def show(
    routine: RoutineArg,
    as_json: JsonOpt = False,
    only: OnlyOpt = None,
    skip: SkipOpt = None,
    pace: PaceOpt = _D.pace,
    detail: DetailOpt = None,
    force: ForceOpt = False,
    i_understand: UnderstandOpt = False,
    lead_in: Annotated[float | None, typer.Option("--lead-in", min=0.0, max=30.0, help="Silence before the first word, in seconds (default: 1.5 for export, 0 for play).")] = None,
    engine: EngineOpt = None,
    voice: VoiceOpt = None,
    rate: RateOpt = _D.rate,
    volume: VolumeOpt = _D.volume,
    chimes: ChimesOpt = None,
    ticks: TicksOpt = None,
    for_: Annotated[Session, typer.Option("--for", help="The timeline of an exported track, or of a live session now (with today's frequency limits applied).")] = Session.export,
    estimate: Annotated[bool, typer.Option("--estimate", help="Estimate speech lengths instead of rendering the cues.")] = False,
) -> None:
    """Show a routine's timeline: every cue, its time and kind, and the total.

    Times come from the rendered speech, so they are those of `export` (or, with --for play,
    of `play`) with the same options.

    Example: [bold]voicecoach show five-minute-back --for play[/bold]
    """
    chosen = settings(engine=engine, voice=voice, rate=rate, volume=volume, only=only,
                      skip=skip, pace=pace, detail=detail, lead_in=lead_in, chimes=chimes,
                      ticks=ticks)
    coach.speech(chosen)
    loaded = coach.load(routine, chosen, notify=tell, screening_prompt=ask_screening)
    purpose = coach.Purpose.PLAY if for_ is Session.play else coach.Purpose.EXPORT
    decision = coach.decide(loaded, chosen, purpose, screening_prompt=ask_screening,
                            notify=tell, force=force, i_understand=i_understand)
    plan = coach.timed_plan(decision, chosen, estimate=estimate)
    if as_json:
        typer.echo(json.dumps(coach.plan_json(plan), indent=2, ensure_ascii=False))
        return
    typer.echo(f"{loaded.title}  ({loaded.id})")
    if loaded.source:
        typer.echo(f"Source: {loaded.source}")
    if loaded.equipment:
        typer.echo(f"Equipment: {', '.join(loaded.equipment)}")
    typer.echo("")
    current = object()
    for event in plan.events:
        if event.exercise != current and event.exercise:
            typer.echo(f"\n  {event.exercise}")
        current = event.exercise
        typer.echo(f"{coach.format_clock(plan.seconds(event.start)):>8}  {event.kind.value:<12}  {event.text}")
    typer.echo(f"\nTotal {coach.format_clock(plan.duration)} ({coach.counted(len(plan.exercises), 'exercise')})")
    for name, reason in plan.left_out:
        typer.echo(f"Left out: {name}: {reason}")


#: More lines than this per file bury the first mistake, which is usually the cause of the rest.
MAX_PROBLEMS = 20


@app.command()
def validate(
    files: Annotated[list[Path], typer.Argument(help="Routine files to check.")],
    strict: Annotated[bool, typer.Option("--strict", help="Treat warnings as mistakes (exit 2).")] = False,
) -> None:
    """Check routine files; print `ok` for each good one, or every problem as PATH:LINE:COL.
    Warnings (valid YAML that is probably not what you meant, text the voice cannot read) go to
    stderr as PATH:LINE:COL: warning: and change the exit code only with --strict.

    Example: [bold]voicecoach validate my-routine.yaml[/bold]
    """
    failed = False
    for path in files:
        try:
            warnings = coach.check(path)
        except RoutineErrors as exc:
            failed = True
            for error in exc.errors[:MAX_PROBLEMS]:
                typer.echo(error.line(), err=True)
            if len(exc.errors) > MAX_PROBLEMS:
                rest = exc.errors[MAX_PROBLEMS]
                more = len(exc.errors) - MAX_PROBLEMS
                typer.echo(f"{rest.path}:{rest.lineno}:{rest.col}: and {coach.counted(more, 'more problem')} "
                           "(fix the ones above and validate again)", err=True)
            continue
        except UserError as exc:
            failed = True
            typer.echo(exc.line(), err=True)
            continue
        for warning in warnings:
            typer.echo(warning.line(), err=True)
        if strict and warnings:
            failed = True
            continue
        typer.echo(f"{path}: ok")
    if failed:
        raise typer.Exit(2)
