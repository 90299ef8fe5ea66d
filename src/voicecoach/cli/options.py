"""Options shared by several commands, and the glue that turns them into core calls."""

from __future__ import annotations

import functools
import math
import typing
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from voicecoach import coach
from voicecoach.coach import Notice, Settings

if TYPE_CHECKING:
    from collections.abc import Sequence

    from voicecoach.safety.rules import Question

_D = Settings()

RoutineArg = Annotated[str, typer.Argument(help="A bundled routine id (see `list`), a path, or `today` (a session made from the library with the settings of your last `make`).")]

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


def settings(
    *,
    engine: str | None = None,
    voice: str | None = None,
    rate: int = _D.rate,
    volume: float = _D.volume,
    no_cache: bool = False,
    only: list[str] | None = None,
    skip: list[str] | None = None,
    pace: float = _D.pace,
    detail: Detail | None = None,
    lead_in: float | None = None,
    chimes: Switch | None = None,
    ticks: Switch | None = None,
    music: Path | None = None,
    duck: float = _D.duck,
    loudness: float = _D.loudness,
    bitrate: int = _D.bitrate,
    transcript: bool = False,
) -> Settings:
    """The options as the application layer's Settings."""
    return Settings(
        engine=engine, voice=voice, rate=rate, volume=volume, cache=not no_cache,
        pace=pace, only=tuple(only or ()), skip=tuple(skip or ()),
        detail=detail.value if detail else None, lead_in=lead_in,
        chimes=None if chimes is None else chimes == Switch.on,
        ticks=None if ticks is None else ticks == Switch.on,
        music=music, duck=duck, loudness=loudness, bitrate=bitrate, transcript=transcript,
    )


ForceOpt = Annotated[bool, typer.Option("--force", help="Include exercises whose frequency limit says to wait (recorded in history).")]
UnderstandOpt = Annotated[bool, typer.Option("--i-understand", help="Include self-manipulation (cracking) moves although your safety answers rule them out.")]


def tell(notice: Notice) -> None:
    """A notice from the core, on stderr."""
    typer.echo(notice.text, err=True)


def ask_screening(questions: Sequence[Question]) -> dict[str, bool] | None:
    """Before the first session: the screening questions when someone can answer them."""
    import sys

    from voicecoach import cancel

    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        return None
    typer.echo("Before your first session, a few questions from the articles' warnings.", err=True)
    with cancel.at_once():  # nothing is under way yet: Ctrl-C at a question ends at once
        return {q.key: typer.confirm(q.text, default=False, err=True) for q in questions}


def _finite_then(param: typing.Any, ctx: typing.Any, value: object) -> object:
    """A number option's own processing, after refusing nan and the infinities: they are not
    numbers a person means, and nan slips through range checks (every comparison is false)."""
    for item in value if isinstance(value, list | tuple) else (value,):
        try:
            number = float(item)
        except (TypeError, ValueError, OverflowError):
            continue  # not a number at all: the option's own type says so
        if not math.isfinite(number):
            raise typer.BadParameter(
                f"{item} is not a finite number: give a number{_range_of(param)}",
                ctx=ctx, param=param)
    return type(param).process_value(param, ctx, value)


_C = typing.TypeVar("_C")


def _range_of(param: object) -> str:
    low, high = getattr(param, "min", None), getattr(param, "max", None)
    if low is None or high is None:  # older typer: click's range type holds it
        kind = getattr(param, "type", None)
        low, high = getattr(kind, "min", None), getattr(kind, "max", None)
    if low is None or high is None:
        opts = getattr(param, "opts", ())
        found = next(filter(None, map(coach.option_range, opts)), None)
        if found is not None:
            low, high = found
    if low is None or high is None:
        return ""
    return f" from {low:g} to {high:g}"


#: click's names for its number types: typer before 0.20 hands click's own parameters over.
_CLICK_NUMBERS = {"integer", "float", "integer range", "float range"}


def is_number(param: object) -> bool:
    """Whether a command's parameter takes a number, on every typer the package allows: newer
    typer describes each parameter's annotation, older typer gives click's typed parameters.
    A parameter that is neither is an API this does not know: an error, not a silent no."""
    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is not None:
        kind = descriptor.annotation
        return kind in (int, float) or bool(set(typing.get_args(kind)) & {int, float})
    click_type = getattr(param, "type", None)
    if click_type is None:
        raise TypeError(f"cannot tell what {param!r} takes: an unknown typer")
    return getattr(click_type, "name", "") in _CLICK_NUMBERS


def finite_numbers(command: _C) -> _C:
    """Every number option and argument of every command refuses nan, inf and -inf (1e309 is
    inf) with the option's name and range: one place, so a new option is covered unlisted."""
    for sub in getattr(command, "commands", {}).values():
        finite_numbers(sub)
    for param in typing.cast(typing.Any, command).params:
        if is_number(param):
            param.process_value = functools.partial(_finite_then, param)
    return command
