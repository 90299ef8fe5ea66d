"""The `voicecoach` command line: parse options, call the core, print. Nothing else lives here."""

from __future__ import annotations

import json
import os
import sys
import traceback
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from voicecoach import __version__, library
from voicecoach.durations import format_clock, format_duration
from voicecoach.errors import RoutineErrors, UserError, VoicecoachError
from voicecoach.loader import load_routine
from voicecoach.plan import Plan, PlanOptions, build_plan
from voicecoach.ui import LazyProgress

app = typer.Typer(
    name="voicecoach",
    help="A spoken coach for back and stretching routines: play them live or export MP3 tracks.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)

_state = {"debug": False}


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
    _state["debug"] = debug


RoutineArg = Annotated[str, typer.Argument(help="A bundled routine id (see `list`) or a path.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
OnlyOpt = Annotated[list[str] | None, typer.Option("--only", help="Only this exercise (name or number); repeat for more.")]
SkipOpt = Annotated[list[str] | None, typer.Option("--skip", help="Leave out this exercise; repeat for more.")]
PaceOpt = Annotated[float, typer.Option("--pace", min=0.25, max=4.0, help="Scale holds and rests (2 = twice as long).")]


class Detail(str, Enum):
    full = "full"
    short = "short"


DetailOpt = Annotated[Detail, typer.Option("--detail", help="Full set-up instructions or short reminders.")]
LeadInOpt = Annotated[float, typer.Option("--lead-in", min=0.0, max=30.0, help="Silence before the first word, in seconds.")]


EngineOpt = Annotated[str | None, typer.Option("--engine", help="Speech engine: espeak or pyttsx3 (default: espeak on Linux, the system's voices elsewhere).")]
VoiceOpt = Annotated[str | None, typer.Option("--voice", help="Voice name, id or language such as en-gb (see `voicecoach voices`).")]
RateOpt = Annotated[int, typer.Option("--rate", help="Speaking rate in words per minute.")]
VolumeOpt = Annotated[float, typer.Option("--volume", help="Speech volume, 0 to 2 (1 = normal).")]
NoCacheOpt = Annotated[bool, typer.Option("--no-cache", help="Render every cue again instead of using the clip cache.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]


def _speech(engine: str | None, voice: str | None, rate: int, volume: float, no_cache: bool):  # type: ignore[no-untyped-def]
    from voicecoach.cache import ClipCache
    from voicecoach.speech import VoiceSettings, get_engine

    return get_engine(engine), VoiceSettings(voice=voice, rate=rate, volume=volume), ClipCache(
        enabled=not no_cache
    )


def _prepare(routine, options: PlanOptions, speech, progress: LazyProgress | None = None):  # type: ignore[no-untyped-def]
    from voicecoach.session import prepare

    engine, settings, cache = speech
    estimate = len(build_plan(routine, options).spoken_texts())
    if progress is not None:
        progress.stage("Speaking cues", estimate)
    return prepare(routine, options, engine=engine, settings=settings, cache=cache,
                   on_clip=progress.set if progress is not None else None)


def _plan_options(
    only: list[str] | None, skip: list[str] | None, pace: float, detail: Detail, lead_in: float
) -> PlanOptions:
    return PlanOptions(pace=pace, only=tuple(only or ()), skip=tuple(skip or ()), detail=detail.value,
                       lead_in=lead_in)


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
        speech = _speech(None, None, 165, 1.0, False)
        with LazyProgress() as progress:
            summaries = library.catalogue(lambda r: _prepare(r, PlanOptions(), speech, progress).plan)
    if as_json:
        typer.echo(json.dumps([s.as_json() for s in summaries], indent=2, ensure_ascii=False))
        return
    width = max(len(s.id) for s in summaries)
    for s in summaries:
        equipment = ", ".join(s.equipment) or "none"
        typer.echo(
            f"{s.id:<{width}}  {format_duration(s.duration):>7}  {s.exercises:>2} exercises  "
            f"{s.title}  [{equipment}]"
        )


@app.command()
def show(
    routine: RoutineArg,
    as_json: JsonOpt = False,
    only: OnlyOpt = None,
    skip: SkipOpt = None,
    pace: PaceOpt = 1.0,
    detail: DetailOpt = Detail.full,
    lead_in: LeadInOpt = 1.5,
    engine: EngineOpt = None,
    voice: VoiceOpt = None,
    rate: RateOpt = 165,
    volume: VolumeOpt = 1.0,
    estimate: Annotated[bool, typer.Option("--estimate", help="Estimate speech lengths instead of rendering the cues.")] = False,
) -> None:
    """Show a routine's timeline: every cue, its time and kind, and the total.

    Times come from the rendered speech, so they match `export` and `play` with the same options.

    Example: [bold]voicecoach show five-minute-back[/bold]
    """
    loaded = library.load(routine)
    options = _plan_options(only, skip, pace, detail, lead_in)
    if estimate:
        plan = build_plan(loaded, options)
    else:
        plan = _prepare(loaded, options, _speech(engine, voice, rate, volume, False)).plan
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


def plan_json(plan: Plan) -> dict[str, object]:
    """The stable `--json` shape of a plan."""
    return {
        "routine": plan.routine_id,
        "title": plan.title,
        "duration": round(plan.duration, 3),
        "events": [
            {
                "start": round(plan.seconds(e.start), 3),
                "duration": round(plan.seconds(e.length), 3),
                "kind": e.kind.value,
                "text": e.text,
                "exercise": e.exercise,
            }
            for e in plan.events
        ],
    }


@app.command()
def export(
    routine: Annotated[str | None, typer.Argument(help="A bundled routine id (see `list`) or a path.")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="The MP3 to write (with --split: a folder). Default: ID.mp3 here.")] = None,
    all_dir: Annotated[Path | None, typer.Option("--all", help="Export every bundled routine into this folder.")] = None,
    split: Annotated[bool, typer.Option("--split", help="One MP3 per exercise, plus an .m3u playlist.")] = False,
    transcript: Annotated[bool, typer.Option("--transcript", help="Also write an .lrc file with every cue at its time.")] = False,
    bitrate: Annotated[int, typer.Option("--bitrate", min=32, max=320, help="MP3 bit rate in kbit/s (constant).")] = 64,
    only: OnlyOpt = None,
    skip: SkipOpt = None,
    pace: PaceOpt = 1.0,
    detail: DetailOpt = Detail.full,
    lead_in: LeadInOpt = 1.5,
    engine: EngineOpt = None,
    voice: VoiceOpt = None,
    rate: RateOpt = 165,
    volume: VolumeOpt = 1.0,
    no_cache: NoCacheOpt = False,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Export a routine as an MP3 track with a chapter per exercise, ready for a phone.

    Example: [bold]voicecoach export five-minute-back -o back.mp3 --transcript[/bold]
    """
    from voicecoach.export import ExportOptions, export_split, export_track

    if (routine is None) == (all_dir is None):
        raise UserError("give a routine, or --all FOLDER", fix="e.g. `voicecoach export five-minute-back`")
    speech = _speech(engine, voice, rate, volume, no_cache)
    options = _plan_options(only, skip, pace, detail, lead_in)
    export_options = ExportOptions(bitrate=bitrate, transcript=transcript)
    jobs = (
        [(library.load(routine), output)]
        if routine is not None
        else [(load_routine(path), None) for path in library.bundled().values()]
    )
    written = []
    for loaded, dest in jobs:
        with LazyProgress(quiet or as_json) as progress:
            prepared = _prepare(loaded, options, speech, progress)
            progress.stage(f"Encoding {loaded.id}", prepared.plan.total)
            if split:
                folder = dest or (all_dir / loaded.id if all_dir else Path(loaded.id))
                tracks = export_split(loaded, prepared, folder, export_options, progress.advance)
            else:
                target = dest or (all_dir or Path(".")) / f"{loaded.id}.mp3"
                tracks = [export_track(loaded, prepared, target, export_options, progress.advance)]
        written.extend(tracks)
        if not as_json:
            for track in tracks:
                typer.echo(_describe(track))
    if as_json:
        typer.echo(json.dumps([t.as_json() for t in written], indent=2, ensure_ascii=False))


def _describe(track) -> str:  # type: ignore[no-untyped-def]
    size = track.size / 1e6
    line = f"Wrote {track.path} ({format_clock(track.duration)}, {size:.1f} MB"
    if track.chapters:
        line += f", {len(track.chapters)} chapters"
    line += ")"
    for extra in track.extras:
        line += f"\nWrote {extra}"
    return line


@app.command()
def voices(
    language: Annotated[str | None, typer.Option("--language", "-l", help="Only voices for this language, e.g. en or en-gb.")] = None,
    engine: EngineOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List the voices the speech engine offers.

    Example: [bold]voicecoach voices --language en[/bold]
    """
    from voicecoach.speech import get_engine

    found = get_engine(engine).voices()
    if language:
        want = language.lower().replace("_", "-")
        found = [v for v in found if any(lang.lower().startswith(want) for lang in v.languages)]
    if as_json:
        typer.echo(json.dumps([{"id": v.id, "name": v.name, "languages": list(v.languages),
                                "gender": v.gender} for v in found], indent=2, ensure_ascii=False))
        return
    if not found:
        raise UserError(f"no voices for language {language!r}", fix="run `voicecoach voices` to see all")
    for v in found:
        typer.echo(f"{v.id:<28} {', '.join(v.languages):<16} {v.name}")


@app.command()
def validate(
    files: Annotated[list[Path], typer.Argument(help="Routine files to check.")],
) -> None:
    """Check routine files; print `ok` for each good one, or every problem as PATH:LINE:COL.

    Example: [bold]voicecoach validate my-routine.yaml[/bold]
    """
    failed = False
    for path in files:
        try:
            build_plan(load_routine(path))
        except RoutineErrors as exc:
            failed = True
            for error in exc.errors:
                typer.echo(error.line(), err=True)
            continue
        except UserError as exc:
            failed = True
            typer.echo(exc.line(), err=True)
            continue
        typer.echo(f"{path}: ok")
    if failed:
        raise typer.Exit(2)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI: every known failure becomes one line on stderr and an exit code."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:]) or bool(
        os.environ.get("VOICECOACH_DEBUG")
    )
    command = typer.main.get_command(app)
    try:
        code = command.main(args=argv, prog_name="voicecoach", standalone_mode=False)
    except VoicecoachError as exc:
        if debug:
            traceback.print_exc()
        _fail(exc.line(), exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        _fail("stopped", 130)
    except BrokenPipeError:
        _quiet_broken_pipe()
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
    sys.exit(code if isinstance(code, int) else 0)


def _is_usage_error(exc: Exception) -> bool:
    # Typer's usage errors come from click (vendored in newer typer): recognise them by shape.
    return hasattr(exc, "format_message") and getattr(exc, "exit_code", None) == 2


def _fail(line: str, code: int) -> None:
    print(line if line.startswith(("error", "internal", "stopped")) or ":" in line.split(" ")[0]
          else f"error: {line}", file=sys.stderr)
    sys.exit(code)


def _quiet_broken_pipe() -> None:
    # The reader went away (e.g. `| head`): exit quietly without a second error at shutdown.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    sys.exit(1)
