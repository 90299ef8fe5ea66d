"""The play command: speak a routine live, in real time, with a view and keys."""

from __future__ import annotations

import contextlib
import sys
import time
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from voicecoach import cancel
from voicecoach.cli.app import app
from voicecoach.cli.options import (
    ChimesOpt,
    DetailOpt,
    DuckOpt,
    EngineOpt,
    ForceOpt,
    LoudnessOpt,
    MusicOpt,
    NoCacheOpt,
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
    load_routine_file,
    plan_options,
    prepare_with_progress,
    record_session,
    routine_path_arg,
    sound_options,
    speech_setup,
)
from voicecoach.cli.progress import LazyProgress
from voicecoach.cues import fill
from voicecoach.durations import format_clock
from voicecoach.errors import os_fault

if TYPE_CHECKING:
    from voicecoach.player import SessionResult


class Audio(StrEnum):
    """Kept in step with player.AUDIO_CHOICES (the player module is imported only to play)."""

    default = "default"
    none = "none"
    pulseaudio = "pulseaudio"
    alsa = "alsa"
    jack = "jack"
    oss = "oss"
    sndio = "sndio"
    coreaudio = "coreaudio"
    wasapi = "wasapi"
    dsound = "dsound"
    winmm = "winmm"


@app.command()
def play(
    routine: RoutineArg,
    from_: Annotated[str | None, typer.Option("--from", help="Start at this exercise (name or number); the start cue and the cautions are still said first.")] = None,
    only: OnlyOpt = None,
    skip: SkipOpt = None,
    pace: PaceOpt = 1.0,
    detail: DetailOpt = None,
    force: ForceOpt = False,
    i_understand: UnderstandOpt = False,
    lead_in: Annotated[float, typer.Option("--lead-in", min=0.0, max=30.0, help="Silence before the first word, in seconds. Live play starts at once (export adds 1.5 s for Bluetooth speakers to wake up); `show --for play` lists play's times.")] = 0.0,
    engine: EngineOpt = None,
    voice: VoiceOpt = None,
    rate: RateOpt = 165,
    volume: VolumeOpt = 1.0,
    chimes: ChimesOpt = None,
    ticks: TicksOpt = None,
    music: MusicOpt = None,
    duck: DuckOpt = -12.0,
    loudness: LoudnessOpt = -16.0,
    no_cache: NoCacheOpt = False,
    audio: Annotated[Audio, typer.Option("--audio", help="Sound output: the system's default, `none` (a silent device at real-time speed, for machines with no sound), or a named sound system.")] = Audio.default,
    events: Annotated[Path | None, typer.Option("--events", metavar="FILE.jsonl", help="Write every cue's planned and actual start (and pauses, skips) to this JSON-lines file.")] = None,
) -> None:
    """Speak a routine live, in real time: lie on the mat and listen.

    Keys: space pause/resume, n or → next exercise, p or ← back (twice: the exercise before),
    r repeat the last cue, + and - volume, q quit. Without a terminal on stdin, each cue is
    printed as a line instead.

    Example: [bold]voicecoach play five-minute-back --from "cat cow"[/bold]
    """
    from voicecoach.cli.live_view import watch
    from voicecoach.outputs import OutputPlan
    from voicecoach.plan import from_onwards
    from voicecoach.player import Player

    sound = sound_options(chimes, ticks, music, duck, loudness)
    speech = speech_setup(engine, voice, rate, volume, no_cache)
    source = routine_path_arg(routine, speech)
    if events is not None:  # the events file must not replace the routine or the music
        outputs = OutputPlan()
        outputs.read("routine file", source)
        outputs.read("music file", music)
        outputs.write("events file", events)
        outputs.check()
    loaded = load_routine_file(source)
    if from_:
        only, skip = list(from_onwards(loaded, from_, only or (), skip or ())), None
    options, verdict = apply_safety(loaded, plan_options(only, skip, pace, detail, lead_in),
                                    detail=detail, apply_limits=True, force=force,
                                    i_understand=i_understand)
    interactive = sys.stdin.isatty() and sys.stderr.isatty()
    try:
        log = events.open("w", encoding="utf-8") if events is not None else None
    except OSError as exc:
        raise os_fault(exc, f"opening {events}") from None
    started = time.time()
    try:
        with LazyProgress(quiet=not interactive) as progress:
            prepared = prepare_with_progress(loaded, options, speech, progress, sound)
        try:
            player = Player(prepared, audio=audio.value)
            # Cue lines go to stdout when there is no live view, or when stdout is not the screen.
            lines = sys.stdout if not interactive or not sys.stdout.isatty() else None
            try:
                result = watch(player, title=loaded.title, interactive=interactive, events=log,
                               lines=lines)
            except (KeyboardInterrupt, cancel.Interrupted) as exc:  # a normal way to stop: say where
                _finish(loaded, player.result(), started, prepared.plan.duration, verdict)
                code = exc.exit_code if isinstance(exc, cancel.Interrupted) else 130
                raise typer.Exit(code) from None
            except BaseException:
                # A fault mid-session: what was done still counts towards the limits.
                with contextlib.suppress(Exception):
                    _record(loaded, player.result(), started, verdict)
                raise
        finally:
            prepared.close()
    finally:
        if log is not None:
            log.close()
    _finish(loaded, result, started, prepared.plan.duration, verdict)


def _record(loaded, result: SessionResult, started: float, verdict) -> None:  # type: ignore[no-untyped-def]
    record_session(loaded, "live", started, result.position, completed=result.completed,
                   exercises_done=result.exercises_completed, stopped_at=result.stopped_at,
                   forced=bool(verdict.forced), detail=verdict.detail)


def _finish(loaded, result: SessionResult, started: float, total: float, verdict) -> None:  # type: ignore[no-untyped-def]
    """Record the session in history and say how it ended."""
    _record(loaded, result, started, verdict)
    done = len(result.exercises_completed)
    if result.completed:
        line = f"Done: {loaded.title}, {done} exercise{'s' * (done != 1)}"
    else:
        line = f"Stopped at {format_clock(result.position)} of {format_clock(total)}"
        line += f" in {result.stopped_at}" if result.stopped_at else ""
    if result.paused >= 1:
        line += f" (paused {format_clock(result.paused)})"
    typer.echo(fill("{line}.", line=line), err=True)
