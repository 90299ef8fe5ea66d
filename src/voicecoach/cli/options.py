"""Options shared by several commands, and the glue that turns them into core calls."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from voicecoach.cli.progress import LazyProgress
from voicecoach.plan import PlanOptions, build_plan

if TYPE_CHECKING:
    from voicecoach.sound import SoundOptions

RoutineArg = Annotated[str, typer.Argument(help="A bundled routine id (see `list`), a path, or `today` (a session made from the library with the settings of your last `make`).")]
TODAY = "today"


def routine_path_arg(spec: str, speech) -> Path:  # type: ignore[no-untyped-def]
    """A routine argument's file: `today` makes today's session (unless a file of that name is
    here), timed with the same voice the command will speak it in."""
    from voicecoach import library

    if spec == TODAY and not Path(spec).exists():
        from voicecoach import today

        _, path = today.today_session(today.speech_measure(*speech))
        return path
    return library.resolve(spec)

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
OnlyOpt = Annotated[list[str] | None, typer.Option("--only", help="Only this exercise (name or number); repeat for more.")]
SkipOpt = Annotated[list[str] | None, typer.Option("--skip", help="Leave out this exercise; repeat for more.")]
PaceOpt = Annotated[float, typer.Option("--pace", min=0.25, max=4.0, help="Scale holds and rests (2 = twice as long).")]


class Detail(str, Enum):
    full = "full"
    short = "short"


DetailOpt = Annotated[Detail | None, typer.Option("--detail", help="Full set-up instructions, or short reminders (default: full until you have done the routine a few times).")]
LeadInOpt = Annotated[float, typer.Option("--lead-in", min=0.0, max=30.0, help="Silence before the first word, in seconds.")]


EngineOpt = Annotated[str | None, typer.Option("--engine", help="Speech engine: espeak or pyttsx3 (default: espeak on Linux, the system's voices elsewhere).")]
VoiceOpt = Annotated[str | None, typer.Option("--voice", help="Voice name, id or language such as en-gb (see `voicecoach voices`).")]
RateOpt = Annotated[int, typer.Option("--rate", help="Speaking rate in words per minute.")]
VolumeOpt = Annotated[float, typer.Option("--volume", help="Speech volume, 0 to 2 (1 = normal).")]
NoCacheOpt = Annotated[bool, typer.Option("--no-cache", help="Render every cue again instead of using the clip cache.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]


class Switch(str, Enum):
    on = "on"
    off = "off"


ChimesOpt = Annotated[Switch | None, typer.Option("--chimes", help="Chimes when a hold starts and ends and when a rest is over, never over speech (default: the routine's `chimes`, on).")]
TicksOpt = Annotated[Switch | None, typer.Option("--ticks", help="A soft tick on each second of a countdown (default: the routine's `countdown_ticks`, off).")]
MusicOpt = Annotated[Path | None, typer.Option("--music", metavar="FILE", help="Music under the session: any audio file ffmpeg reads, looped or trimmed to fit, faded in and out, ducked under every cue.")]
DuckOpt = Annotated[float, typer.Option("--duck", metavar="DB", help="How far the music drops under speech, in dB, -40 to 0 (write --duck=-12).")]
LoudnessOpt = Annotated[float, typer.Option("--loudness", metavar="LUFS", help="Integrated loudness of the track, -30 to -14 LUFS; true peak stays at or under -1 dBTP.")]


def sound_options(
    chimes: Switch | None = None,
    ticks: Switch | None = None,
    music: Path | None = None,
    duck: float | None = None,
    loudness: float | None = None,
) -> SoundOptions:
    """The sound settings shared by export and play (checked here, before any speech is made)."""
    from voicecoach.errors import UserError
    from voicecoach.sound import DEFAULT_DUCK, DEFAULT_LOUDNESS, SoundOptions

    if music is not None and not music.is_file():
        raise UserError(f"music file not found: {music}", fix="give a path to an audio file")
    return SoundOptions(
        loudness=DEFAULT_LOUDNESS if loudness is None else loudness,
        chimes=None if chimes is None else chimes == Switch.on,
        countdown_ticks=None if ticks is None else ticks == Switch.on,
        music=music,
        duck=DEFAULT_DUCK if duck is None else duck,
    )


def speech_setup(engine: str | None, voice: str | None, rate: int, volume: float, no_cache: bool):  # type: ignore[no-untyped-def]
    from voicecoach.cache import ClipCache
    from voicecoach.speech import VoiceSettings, get_engine

    return get_engine(engine), VoiceSettings(voice=voice, rate=rate, volume=volume), ClipCache(
        enabled=not no_cache
    )


def prepare_with_progress(routine, options: PlanOptions, speech, progress: LazyProgress | None = None, sound: SoundOptions | None = None):  # type: ignore[no-untyped-def]
    """The prepared session (plan, levelled clips, chimes, music) for export and play."""
    from voicecoach.session import prepare

    return _with_progress(prepare, routine, options, speech, progress, sound)


def plan_with_progress(routine, options: PlanOptions, speech, progress: LazyProgress | None = None, sound: SoundOptions | None = None):  # type: ignore[no-untyped-def]
    """The plan timed from real speech, without making the audio (show, list)."""
    from voicecoach.session import timed_plan

    return _with_progress(timed_plan, routine, options, speech, progress, sound)


def _with_progress(make, routine, options, speech, progress, sound):  # type: ignore[no-untyped-def]
    engine, settings, cache = speech
    if progress is not None:
        # The estimated plan names the cues to speak: enough to size the bar.
        progress.stage("Speaking cues", len(build_plan(routine, options).spoken_texts()))
    return make(routine, options, engine=engine, settings=settings, cache=cache,
                on_clip=progress.set if progress is not None else None, sound=sound)


def plan_options(
    only: list[str] | None, skip: list[str] | None, pace: float, detail: Detail | None, lead_in: float
) -> PlanOptions:
    return PlanOptions(pace=pace, only=tuple(only or ()), skip=tuple(skip or ()),
                       detail=detail.value if detail else "full", lead_in=lead_in)


ForceOpt = Annotated[bool, typer.Option("--force", help="Include exercises whose frequency limit says to wait (recorded in history).")]
UnderstandOpt = Annotated[bool, typer.Option("--i-understand", help="Include self-manipulation (cracking) moves although your safety answers rule them out.")]


def apply_safety(
    routine,  # type: ignore[no-untyped-def]
    options: PlanOptions,
    *,
    detail: Detail | None,
    apply_limits: bool,
    force: bool,
    i_understand: bool,
):
    """Screening, frequency limits and familiarity decide what this session holds.

    Returns the plan options to use and the verdict (what was left out, forced, the detail)."""
    import dataclasses

    from voicecoach.history import History
    from voicecoach.plan import select_exercises
    from voicecoach.safety import assess, load_screening

    screening = load_screening()
    if not screening.answered:
        screening = ask_screening_if_interactive(screening, routine.manipulation)
    history = History()
    verdict = assess(
        routine, history=history, screening=screening, apply_limits=apply_limits, force=force,
        i_understand=i_understand, detail=detail.value if detail else None,
        chosen=select_exercises(routine, options.only, options.skip),
    )
    for note in verdict.notes:
        typer.echo(f"note: {note}", err=True)
    for name, reason in verdict.left_out:
        if "safety answers" not in reason:
            typer.echo(f"note: {name} is left out: {reason} (add --force to include it)", err=True)
    return dataclasses.replace(options, left_out=verdict.left_out, detail=verdict.detail), verdict


def ask_screening_if_interactive(screening, has_manipulation: bool):  # type: ignore[no-untyped-def]
    """Before the first session: the screening questions when someone can answer them."""
    import sys

    from voicecoach import cancel
    from voicecoach.safety import QUESTIONS, save_screening

    if sys.stdin.isatty() and sys.stderr.isatty():
        typer.echo("Before your first session, a few questions from the articles' warnings.",
                   err=True)
        with cancel.at_once():  # nothing is under way yet: Ctrl-C at a question ends at once
            answers = {q.key: typer.confirm(q.text, default=False, err=True) for q in QUESTIONS}
        saved = save_screening(answers)
        if saved.rules_out_manipulation:
            typer.echo("Self-manipulation (cracking) moves will be left out; see a doctor or "
                       "physiotherapist first. Change answers with `voicecoach safety`.", err=True)
        return saved
    if has_manipulation:
        typer.echo("note: this routine has self-manipulation moves and you have not answered the "
                   "safety questions yet (`voicecoach safety`)", err=True)
    return screening


def record_session(
    routine,  # type: ignore[no-untyped-def]
    kind: str,
    started: float,
    position: float,
    *,
    completed: bool,
    exercises_done: tuple[str, ...] = (),
    stopped_at: str | None = None,
    forced: bool = False,
    detail: str = "full",
) -> None:
    """Write one session to history."""
    import time

    from voicecoach.history import History, SessionRecord

    History().record(SessionRecord(
        routine=routine.id, title=routine.title, kind=kind, started=started, ended=time.time(),
        completed=completed, position=position, exercises_done=exercises_done,
        stopped_at=stopped_at, forced=forced, detail=detail,
    ))


def load_routine_arg(spec: str, speech):  # type: ignore[no-untyped-def]
    """The routine a command was given, with its file's warnings (see load_routine_file)."""
    return load_routine_file(routine_path_arg(spec, speech))


def load_routine_file(path: Path):  # type: ignore[no-untyped-def]
    """A routine file; what it probably did not mean goes to stderr as PATH:LINE:COL: warning:
    lines (`voicecoach validate --strict` makes them mistakes)."""
    from voicecoach.lint import lint
    from voicecoach.loader import load_routine

    routine = load_routine(path)
    for warning in lint(path, routine):
        typer.echo(warning.line(), err=True)
    return routine
