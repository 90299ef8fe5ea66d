"""How a session sounds (loudness, chimes, music, duck): the options and their defaults."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from voicecoach.errors import UserError

if TYPE_CHECKING:  # the planner (and pydantic) load only where a plan is made, not at start-up
    from voicecoach.plan.timeline import PlanOptions

#: Bump when levelling (voicecoach.audio.mix: clips, chimes, the session's level) changes, so
#: cached levelled clips, levels and the MP3 frames made from them are made anew.
PROCESS_VERSION = 1
#: The PCM ceiling (dBTP, of the limiter's detector) that keeps an exported track's true peak
#: under -1 dBTP once the encoder's error is added (see voicecoach.audio.mix).
CEILING_DB = -2.5

DEFAULT_LOUDNESS = -16.0
LOUDNESS_RANGE = (-30.0, -14.0)
DEFAULT_DUCK = -12.0
DUCK_RANGE = (-40.0, 0.0)


@dataclass(frozen=True)
class SoundOptions:
    """Everything about how a session sounds, shared by export and live play.

    chimes / countdown_ticks: None keeps the routine's setting. They change the plan (chime
    places), the rest only the audio."""

    loudness: float = DEFAULT_LOUDNESS
    chimes: bool | None = None
    countdown_ticks: bool | None = None
    music: Path | None = None
    duck: float = DEFAULT_DUCK

    def __post_init__(self) -> None:
        lo, hi = LOUDNESS_RANGE
        if not lo <= self.loudness <= hi:
            raise UserError(f"loudness {self.loudness:g} LUFS is out of range",
                            fix=f"use {lo:g} to {hi:g} (default {DEFAULT_LOUDNESS:g})")
        lo, hi = DUCK_RANGE
        if not lo <= self.duck <= hi:
            raise UserError(f"duck {self.duck:g} dB is out of range",
                            fix=f"use {lo:g} to {hi:g} dB (default {DEFAULT_DUCK:g})")

    def plan_options(self, options: PlanOptions) -> PlanOptions:
        """The plan options with these chime settings applied (None leaves the routine's)."""
        return replace(
            options,
            chimes=options.chimes if self.chimes is None else self.chimes,
            countdown_ticks=(options.countdown_ticks if self.countdown_ticks is None
                             else self.countdown_ticks),
        )


def levelled_key(digest: str, level: float, ceiling: float) -> str:
    """The cache key of a clip levelled to `level` under `ceiling` (linear), from the digest of
    the raw clip: it names the levelled PCM by its inputs, so it is known without the PCM."""
    import hashlib
    import json

    fields = ["processed", PROCESS_VERSION, digest, round(level, 3), round(ceiling, 6)]
    return hashlib.sha256(json.dumps(fields).encode()).hexdigest()
