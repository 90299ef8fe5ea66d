"""Options shared by several commands, and the glue that turns them into core calls."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer

from voicecoach.plan import PlanOptions, build_plan
from voicecoach.ui import LazyProgress

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


def speech_setup(engine: str | None, voice: str | None, rate: int, volume: float, no_cache: bool):  # type: ignore[no-untyped-def]
    from voicecoach.cache import ClipCache
    from voicecoach.speech import VoiceSettings, get_engine

    return get_engine(engine), VoiceSettings(voice=voice, rate=rate, volume=volume), ClipCache(
        enabled=not no_cache
    )


def prepare_with_progress(routine, options: PlanOptions, speech, progress: LazyProgress | None = None):  # type: ignore[no-untyped-def]
    from voicecoach.session import prepare

    engine, settings, cache = speech
    estimate = len(build_plan(routine, options).spoken_texts())
    if progress is not None:
        progress.stage("Speaking cues", estimate)
    return prepare(routine, options, engine=engine, settings=settings, cache=cache,
                   on_clip=progress.set if progress is not None else None)


def plan_options(
    only: list[str] | None, skip: list[str] | None, pace: float, detail: Detail, lead_in: float
) -> PlanOptions:
    return PlanOptions(pace=pace, only=tuple(only or ()), skip=tuple(skip or ()), detail=detail.value,
                       lead_in=lead_in)
