"""The routine model: what a routine file may say, validated strictly (unknown keys are errors)."""

from __future__ import annotations

import unicodedata
from enum import Enum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from voicecoach.routine.durations import parse_duration
from voicecoach.routine.names import slug
from voicecoach.routine.wording import LANGUAGES, wording

Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    WithJsonSchema(
        {
            "anyOf": [
                {
                    "type": "string",
                    "pattern": r"^\s*(\d+(\.\d+)?\s*(h|m|s|ms)\s*)+$|^\s*\d+(\.\d+)?\s*$",
                },
                {"type": "number", "exclusiveMinimum": 0, "maximum": 14400},
            ],
            "description": "A duration: 20s, 1m30s, 1h, 500ms, or a number of seconds.",
            "examples": ["20s", "1m30s"],
        }
    ),
]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


#: Characters that show nothing by themselves: format controls (zero-width space, word joiner,
#: byte order mark, bidi marks), combining marks with nothing to sit on, spaces, controls.
_INVISIBLE = frozenset({"Cf", "Mn", "Me", "Zs", "Zl", "Zp", "Cc", "Cn", "Co", "Cs"})


def _visible(value: str) -> str:
    if value and all(unicodedata.category(c) in _INVISIBLE for c in value):
        shown = " ".join(f"U+{ord(c):04X}" for c in value[:4]) + (" ..." if len(value) > 4 else "")
        raise ValueError(f"must not be empty: it holds only invisible characters ({shown}); "
                         "give it a name a person can read")
    return value


Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300),
                 AfterValidator(_visible)]
Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Step(Strict):
    """One spoken instruction, then time to carry it out."""

    say: Text
    wait: Duration | None = Field(
        None, description="Time after the words are spoken (default: the routine's step pause)."
    )
    short: Text | None = Field(
        None, description="A shorter wording for people who know the routine well."
    )
    safety: bool = Field(
        False, strict=True,
        description="A safety step (padding, a firm surface): said in short mode too, where a "
        "summary replaces the other set-up steps.",
    )


class FollowUp(Strict):
    """A step after the main hold or reps, with a hold of its own \
("now rock side to side", 10 s)."""

    say: Text
    hold: Duration | None = Field(None, description="How long to keep doing it.")
    short: Text | None = None


class Caution(Strict):
    """A warning spoken before the first exercise, with a shorter form for familiar listeners."""

    say: Text
    short: Text | None = Field(
        None, description="Said instead once the routine is familiar (cautions never vanish)."
    )


class Breath(str, Enum):
    inhale = "in"
    exhale = "out"
    hold = "hold"


class Phase(Strict):
    """One part of a repetition: what to do and for how long, optionally on a breath."""

    say: Text
    seconds: Duration = Field(description="How long this part of the repetition lasts.")

    @field_validator("seconds")
    @classmethod
    def _long_enough(cls, value: float) -> float:
        return _at_least(value, 1.0, "a part of a repetition")
    breath: Breath | None = Field(
        None, description="Marks this part as a breath (in, out or hold): timed as a breath cue."
    )
    short: Text | None = Field(None, description="A shorter wording for later repetitions.")


class Breathing(Strict):
    """Breathing pace spoken during holds: inhale for so long, exhale for so long."""

    inhale: Duration
    exhale: Duration
    pause: Duration | None = Field(None, description="Hold the breath between inhale and exhale.")

    @field_validator("inhale", "exhale", "pause")
    @classmethod
    def _long_enough(cls, value: float | None) -> float | None:
        if value is not None and value < 1.0:
            raise ValueError(f"{value:g} s is too short to coach a breath: use at least 1s")
        return value


class Limits(Strict):
    """Frequency limits from the articles."""

    max_per_day: int | None = Field(
        None, ge=1, le=100, strict=True, description="Do it no more than this many sessions a day."
    )
    wait: Duration | None = Field(
        None, description="Wait at least this long before doing it again (e.g. 1h)."
    )
    note: Text | None = Field(None, description="The limit in words, spoken before the exercise.")


class Area(str, Enum):
    """The parts of the back (and around it) an exercise works; `make --focus` picks by these."""

    neck = "neck"
    shoulders = "shoulders"
    upper_back = "upper back"
    mid_back = "mid back"
    lower_back = "lower back"
    hips = "hips"


class Role(str, Enum):
    """Where an exercise belongs in a session: made sessions are ordered by role."""

    warm_up = "warm-up"
    stretch = "stretch"
    mobilisation = "mobilisation"
    self_manipulation = "self-manipulation"
    cool_down = "cool-down"


class Level(str, Enum):
    beginner = "beginner"
    intermediate = "intermediate"
    advanced = "advanced"


class Exercise(Strict):
    """One exercise: set-up, then a hold or counted reps, per side and set, then follow-ups."""

    name: Name
    manipulation: bool = Field(
        False, strict=True,
        description="True for self-manipulation (cracking) moves, which carry extra care.",
    )
    summary: Text | None = Field(
        None, description="A one-line reminder used instead of the set-up once it is familiar."
    )
    caution: Text | None = Field(None, description="Spoken before the set-up.")
    setup: list[Step] = Field(
        default_factory=list,
        max_length=50,
        description="Set-up steps, spoken one after another: text, or {say, wait, short}.",
    )
    hold: Duration | None = Field(None, description="Hold the position this long.")
    moving: bool = Field(
        False, strict=True,
        description="The hold is a movement (rolling, circling): say 'keep going', not 'hold'.",
    )
    reps: int | None = Field(None, ge=1, le=500, strict=True, description="Repetitions per set.")
    tempo: Duration | None = Field(
        None, description="Length of one counted repetition (when no phases are given)."
    )
    each_rep: list[Phase] = Field(
        default_factory=list, max_length=20, description="The parts of one repetition, in order."
    )
    sets: int = Field(1, ge=1, le=50, strict=True)
    rest_between_sets: Duration | None = None
    sides: list[Name] = Field(
        default_factory=list,
        max_length=4,
        description="Run the exercise once per side; `{side}` in any text is filled in.",
    )
    breathing: Breathing | None = None
    then: list[FollowUp] = Field(
        default_factory=list,
        max_length=20,
        description="Follow-up steps after the hold or reps: text, or {say, hold, short}.",
    )
    limits: Limits | None = None
    areas: list[Area] | None = Field(
        None, max_length=6,
        description="Body areas it works (default: the routine's areas that are in this list).",
    )
    role: Role | None = Field(
        None, description="Its place in a session (default: self-manipulation for manipulation "
        "moves, otherwise stretch).",
    )
    equipment: list[Tag] | None = Field(
        None, max_length=10,
        description="What it needs at hand; [] for nothing (default: the routine's equipment).",
    )
    level: Level | None = Field(
        None, description="How demanding it is (default: intermediate for manipulation moves, "
        "otherwise beginner).",
    )
    max_reps: int | None = Field(
        None, ge=1, le=500, strict=True,
        description="A cap on repetitions the source sets (\"three times at most\"): a made "
        "session never scales reps past it.",
    )

    @field_validator("setup", "then", mode="before")
    @classmethod
    def _steps_as_objects(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"say": v} if isinstance(v, str) else v for v in value]
        return value

    @field_validator("sides")
    @classmethod
    def _distinct_sides(cls, value: list[str]) -> list[str]:
        if len(value) == 1:
            raise ValueError("give at least two sides (e.g. [left, right]) or none")
        if len({v.casefold() for v in value}) != len(value):
            raise ValueError("each side must be named once")
        return value

    @model_validator(mode="after")
    def _has_a_body(self) -> Exercise:
        if self.each_rep and self.reps is None:
            raise ValueError("each_rep needs reps: say how many repetitions")
        if self.tempo is not None and self.reps is None:
            raise ValueError("tempo needs reps: say how many repetitions")
        if self.tempo is not None and self.each_rep:
            raise ValueError("give either tempo or each_rep, not both")
        if self.hold is not None and self.reps is not None and not self.each_rep:
            raise ValueError("hold with reps is ambiguous: put the hold in each_rep")
        if self.hold is None and self.reps is None and not self.setup and not self.then:
            raise ValueError("an exercise needs a hold, reps, set-up steps or follow-ups")
        if (self.role is Role.self_manipulation) != self.manipulation and self.role is not None:
            raise ValueError("role self-manipulation goes with manipulation: true, and only "
                             "with it: make the two agree")
        if self.max_reps is not None and (self.reps is None or self.reps > self.max_reps):
            raise ValueError("max_reps caps reps: give reps no larger than max_reps")
        if self.rest_between_sets is not None and self.sets == 1:
            raise ValueError("rest_between_sets needs sets of 2 or more")
        if "{side}" in _all_text(self) and not self.sides:
            raise ValueError("text uses {side} but the exercise has no sides")
        once = [self.name, self.caution or "",
                self.limits.note if self.limits and self.limits.note else ""]
        if any("{side}" in text for text in once):
            raise ValueError("{side} works in set-up, phases, summary and follow-ups, "
                             "not in the name, caution or limit note (they are said once)")
        return self

    @field_validator("hold", "tempo")
    @classmethod
    def _long_enough(cls, value: float | None) -> float | None:
        return None if value is None else _at_least(value, 1.0, "a hold or a repetition")

    @model_validator(mode="after")
    def _bounded(self) -> Exercise:
        rounds = max(1, len(self.sides)) * self.sets
        if self.reps and self.reps * rounds > 2000:
            raise ValueError(f"{self.reps * rounds} repetitions in one exercise is too many")
        if self.nominal_seconds > MAX_EXERCISE_SECONDS:
            hours = self.nominal_seconds / 3600
            raise ValueError(f"this exercise would last {hours:.1f} hours; keep it under 4 hours")
        return self

    @property
    def nominal_seconds(self) -> float:
        """Holds and repetitions alone, without speech or rests: a floor for its length."""
        per_round = self.hold or 0.0
        if self.reps:
            per_rep = (sum(p.seconds for p in self.each_rep) if self.each_rep
                       else (self.tempo or 3.0))
            per_round += self.reps * per_rep
        per_round += sum(f.hold or 0.0 for f in self.then)
        return max(1, len(self.sides)) * self.sets * per_round


MAX_EXERCISE_SECONDS = 4 * 3600.0
MAX_ROUTINE_SECONDS = 8 * 3600.0


def _at_least(value: float, floor: float, what: str) -> float:
    if value < floor:
        raise ValueError(f"{value:g} s is too short for {what}: use at least {floor:g}s")
    return value


def _all_text(ex: Exercise) -> str:
    parts = [ex.name, ex.caution or "", ex.summary or ""]
    parts += [s.say for s in ex.setup]
    parts += [s.short or "" for s in ex.setup]
    parts += [p.say for p in ex.each_rep] + [p.short or "" for p in ex.each_rep]
    parts += [f.say for f in ex.then] + [f.short or "" for f in ex.then]
    return "\n".join(parts)


class CueSwitches(Strict):
    """Which optional cues are spoken."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    countdown: bool = True
    halfway: bool = True
    next_up: bool = True
    sets: bool = True
    rep_counts: bool = True
    breathing: bool = True


class Defaults(Strict):
    """Routine-wide timing."""

    rest: Duration = Field(15.0, description="Rest between exercises, with a preview of the next.")
    step_pause: Duration = Field(2.0, description="Time after each set-up step to carry it out.")
    rest_between_sets: Duration = 15.0
    countdown: int = Field(
        3, ge=0, le=10, strict=True, description="Count down the last N seconds of holds."
    )
    familiar_after: int = Field(
        3, ge=1, le=1000, strict=True,
        description="After this many sessions, short cues and short cautions are used.",
    )
    halfway_after: Duration = Field(20.0, description="Holds at least this long get a halfway cue.")
    transition: Duration = Field(5.0, description="Time to switch sides.")
    tempo: Duration = Field(3.0, description="Default length of one counted repetition.")
    cues: CueSwitches = Field(default_factory=CueSwitches)
    chimes: bool = Field(
        True, strict=True,
        description="Short chimes when a hold starts and ends and when a rest is over.",
    )
    countdown_ticks: bool = Field(
        False, strict=True, description="A soft tick on each second of the countdown.",
    )


class Routine(Strict):
    """A whole routine file."""

    id: str = Field("", description="Taken from the file name; not written in the file.")
    title: Name
    description: Text | None = None
    source: Text | None = Field(None, description="The article or book the routine comes from.")
    language: str = Field("en", pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
    equipment: list[Tag] = Field(default_factory=list, max_length=20)
    areas: list[Tag] = Field(default_factory=list, max_length=20, description="Body areas.")
    cautions: list[Caution] = Field(
        default_factory=list,
        max_length=20,
        description="Warnings spoken before the first exercise: text, or {say, short}.",
    )
    defaults: Defaults = Field(default_factory=Defaults)
    exercises: list[Exercise] = Field(min_length=1, max_length=200)

    @field_validator("exercises")
    @classmethod
    def _routine_bounded(cls, value: list[Exercise]) -> list[Exercise]:
        total = sum(ex.nominal_seconds for ex in value)
        if total > MAX_ROUTINE_SECONDS:
            raise ValueError(f"the exercises would last {total / 3600:.1f} hours; a routine may "
                             "last at most 8 hours: split it into several routines")
        return value

    @field_validator("cautions", mode="before")
    @classmethod
    def _cautions_as_objects(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"say": v} if isinstance(v, str) else v for v in value]
        return value

    @field_validator("language")
    @classmethod
    def _known_language(cls, value: str) -> str:
        try:
            wording(value)
        except KeyError:
            known = ", ".join(sorted(LANGUAGES))
            raise ValueError(
                f"no cue wording for language {value!r} yet (available: {known})"
            ) from None
        return value

    @model_validator(mode="after")
    def _unique_names(self) -> Routine:
        seen: set[str] = set()
        for ex in self.exercises:
            key = slug(ex.name)
            if key in seen:
                raise ValueError(f"two exercises are named {ex.name!r}: give each a distinct name")
            seen.add(key)
        return self

    @property
    def manipulation(self) -> bool:
        return any(ex.manipulation for ex in self.exercises)


def json_schema() -> dict[str, Any]:
    """The JSON Schema editors use to validate and complete routine files."""
    schema = Routine.model_json_schema(mode="validation")
    schema["properties"].pop("id", None)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://voicecoach.invalid/routine.schema.json"
    schema["title"] = "voicecoach routine"
    # A set-up step may be plain text; the model turns it into a Step before validation.
    text_or = [("Exercise", "setup", "Step"), ("Exercise", "then", "FollowUp")]
    for model, key, ref in text_or:
        schema["$defs"][model]["properties"][key]["items"] = {
            "anyOf": [{"type": "string", "minLength": 1}, {"$ref": f"#/$defs/{ref}"}]
        }
    schema["properties"]["cautions"]["items"] = {
        "anyOf": [{"type": "string", "minLength": 1}, {"$ref": "#/$defs/Caution"}]
    }
    return schema
