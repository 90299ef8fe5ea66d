"""The play command: speak a routine live, in real time, with a view and keys."""

from __future__ import annotations

import contextlib
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from voicecoach import cancel, coach
from voicecoach.cli.app import app
from voicecoach.cli.options import (
    _D,
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
    ask_screening,
    settings,
    tell,
)
from voicecoach.cli.progress import LazyProgress
from voicecoach.errors import os_fault

if TYPE_CHECKING:
    from voicecoach.live.player import SessionResult


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
    pace: PaceOpt = _D.pace,
    detail: DetailOpt = None,
    force: ForceOpt = False,
    i_understand: UnderstandOpt = False,
    lead_in: Annotated[float, typer.Option("--lead-in", min=0.0, max=30.0, help="Silence before the first word, in seconds. Live play starts at once (export adds 1.5 s for Bluetooth speakers to wake up); `show --for play` lists play's times.")] = coach.Purpose.PLAY.lead_in,
    engine: EngineOpt = None,
    voice: VoiceOpt = None,
    rate: RateOpt = _D.rate,
    volume: VolumeOpt = _D.volume,
    chimes: ChimesOpt = None,
    ticks: TicksOpt = None,
    music: MusicOpt = None,
    duck: DuckOpt = _D.duck,
    loudness: LoudnessOpt = _D.loudness,
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

    chosen = settings(engine=engine, voice=voice, rate=rate, volume=volume, no_cache=no_cache,
                      only=only, skip=skip, pace=pace, detail=detail, lead_in=lead_in,
                      chimes=chimes, ticks=ticks, music=music, duck=duck, loudness=loudness)
    chosen.sound()
    coach.speech(chosen)
    source = coach.resolve(routine, chosen, screening_prompt=ask_screening, notify=tell)
    if events is not None:  # the events file must not replace the routine or the music
        coach.check_outputs([("routine file", source), ("music file", music)],
                            [("events file", events, ".jsonl")])
    loaded = coach.load(source, chosen, notify=tell)
    if from_:
        chosen = coach.starting_at(loaded, chosen, from_)
    decision = coach.decide(loaded, chosen, coach.Purpose.PLAY, screening_prompt=ask_screening,
                            notify=tell, force=force, i_understand=i_understand)
    interactive = sys.stdin.isatty() and sys.stderr.isatty()
    try:
        if events is not None:
            events.parent.mkdir(parents=True, exist_ok=True)
        log = events.open("w", encoding="utf-8") if events is not None else None
    except OSError as exc:
        raise os_fault(exc, f"opening {events}") from None
    try:
        with LazyProgress(quiet=not interactive) as progress:
            session = coach.render(decision, chosen, progress=progress)
        try:
            player = coach.Player(session.audio, audio=audio.value)
            # Cue lines go to stdout when there is no live view, or when stdout is not the screen.
            lines = sys.stdout if not interactive or not sys.stdout.isatty() else None
            try:
                result = watch(player, title=loaded.title, interactive=interactive, events=log,
                               lines=lines)
            except (KeyboardInterrupt, cancel.Interrupted) as exc:  # a normal way to stop: say where
                _finish(session, player.result())
                code = exc.exit_code if isinstance(exc, cancel.Interrupted) else 130
                raise typer.Exit(code) from None
            except BaseException:
                # A fault mid-session: what was done still counts towards the limits.
                with contextlib.suppress(Exception):
                    coach.record(session, player.result())
                raise
        finally:
            session.close()
    finally:
        if log is not None:
            log.close()
    _finish(session, result)


def _finish(session: coach.Session, result: SessionResult) -> None:
    """Record the session in history and say how it ended."""
    coach.record(session, result)
    done = len(result.exercises_completed)
    if result.completed:
        line = f"Done: {session.routine.title}, {coach.counted(done, 'exercise')}"
    else:
        total = session.plan.duration
        line = f"Stopped at {coach.format_clock(result.position)} of {coach.format_clock(total)}"
        line += f" in {result.stopped_at}" if result.stopped_at else ""
    if result.paused >= 1:
        line += f" (paused {coach.format_clock(result.paused)})"
    typer.echo(coach.fill("{line}.", line=line), err=True)
