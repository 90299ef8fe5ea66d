"""Commands that read routines: list, show, validate."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from voicecoach import library
from voicecoach.cli.app import app
from voicecoach.cli.options import (
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
    apply_safety,
    load_routine_arg,
    plan_options,
    plan_with_progress,
    sound_options,
    speech_setup,
)
from voicecoach.cli.progress import LazyProgress
from voicecoach.durations import format_clock, format_duration
from voicecoach.errors import RoutineErrors, UserError
from voicecoach.loader import load_routine
from voicecoach.plan import Plan, PlanOptions, build_plan


@app.command("list")
def list_cmd(
    as_json: JsonOpt = False,
    estimate: Annotated[bool, typer.Option("--estimate", help="Estimate speech lengths instead of rendering the cues.")] = False,
) -> None:
    """List the bundled routines with their length (as exported with default options).

    Example: [bold]voicecoach list --json[/bold]
    """
    if estimate:
        summaries = library.catalogue()
    else:
        speech = speech_setup(None, None, 165, 1.0, False)
        with LazyProgress() as progress:
            summaries = library.catalogue(lambda r: plan_with_progress(r, PlanOptions(), speech, progress))
    if as_json:
        typer.echo(json.dumps([s.as_json() for s in summaries], indent=2, ensure_ascii=False))
        return
    if not summaries:
        raise UserError("no bundled routines were found", fix="reinstall voicecoach")
    width = max(len(s.id) for s in summaries)
    for s in summaries:
        equipment = ", ".join(s.equipment) or "none"
        typer.echo(
            f"{s.id:<{width}}  {format_duration(s.duration):>7}  {s.exercises:>2} exercises  "
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
    pace: PaceOpt = 1.0,
    detail: DetailOpt = None,
    force: ForceOpt = False,
    i_understand: UnderstandOpt = False,
    lead_in: Annotated[float | None, typer.Option("--lead-in", min=0.0, max=30.0, help="Silence before the first word, in seconds (default: 1.5 for export, 0 for play).")] = None,
    engine: EngineOpt = None,
    voice: VoiceOpt = None,
    rate: RateOpt = 165,
    volume: VolumeOpt = 1.0,
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
    speech = speech_setup(engine, voice, rate, volume, False)
    loaded = load_routine_arg(routine, speech)
    live = for_ is Session.play
    if lead_in is None:
        lead_in = 0.0 if live else 1.5
    options, _ = apply_safety(loaded, plan_options(only, skip, pace, detail, lead_in),
                              detail=detail, apply_limits=live, force=force,
                              i_understand=i_understand)
    sound = sound_options(chimes, ticks)
    if estimate:
        from voicecoach.session import check_speech

        check_speech(*speech[:2])
        plan = build_plan(loaded, sound.plan_options(options))
    else:
        plan = plan_with_progress(loaded, options, speech, sound=sound)
    if as_json:
        typer.echo(json.dumps(plan_json(plan), indent=2, ensure_ascii=False))
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
        typer.echo(f"{format_clock(plan.seconds(event.start)):>8}  {event.kind.value:<12}  {event.text}")
    typer.echo(f"\nTotal {format_clock(plan.duration)} ({len(plan.exercises)} exercises)")
    for name, reason in plan.left_out:
        typer.echo(f"Left out: {name}: {reason}")


def plan_json(plan: Plan) -> dict[str, object]:
    """The stable `--json` shape of a plan."""
    return {
        "routine": plan.routine_id,
        "title": plan.title,
        "duration": round(plan.duration, 3),
        "left_out": [{"exercise": name, "reason": reason} for name, reason in plan.left_out],
        "events": [
            {
                "start": round(plan.seconds(e.start), 3),
                "duration": round(plan.seconds(e.length), 3),
                "speech": round(plan.seconds(e.speech), 3),
                "kind": e.kind.value,
                "text": e.text,
                "exercise": e.exercise,
            }
            for e in plan.events
        ],
        "chimes": [
            {"start": round(plan.seconds(c.start), 3), "duration": round(plan.seconds(c.length), 3),
             "kind": c.kind.value}
            for c in plan.chimes
        ],
    }


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
    from voicecoach.lint import lint

    failed = False
    for path in files:
        try:
            routine = load_routine(path)
            build_plan(routine)
            warnings = lint(path, routine)
        except RoutineErrors as exc:
            failed = True
            for error in exc.errors[:MAX_PROBLEMS]:
                typer.echo(error.line(), err=True)
            if len(exc.errors) > MAX_PROBLEMS:
                rest = exc.errors[MAX_PROBLEMS]
                more = len(exc.errors) - MAX_PROBLEMS
                typer.echo(f"{rest.path}:{rest.lineno}:{rest.col}: and {more} more problems "
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
