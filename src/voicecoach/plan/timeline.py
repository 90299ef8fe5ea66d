"""Turn a routine into a plan: the timed list of everything the listener hears or waits through."""

from __future__ import annotations

import bisect
import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import NamedTuple

from voicecoach.audio.pcm import SAMPLE_RATE
from voicecoach.errors import UserError
from voicecoach.plan.lead_in import EXPORT_LEAD_IN
from voicecoach.routine.model import (
    MAX_EXERCISE_SECONDS,
    MAX_ROUTINE_SECONDS,
    Exercise,
    FollowUp,
    Phase,
    Routine,
    Step,
)
from voicecoach.routine.names import slug
from voicecoach.routine.wording import Wording, fill, wording

#: The plan counts in frames of the one audio format used everywhere.
PLAN_RATE = SAMPLE_RATE
#: Silence kept between the end of one spoken cue and the start of the next.
MIN_GAP = 0.25
#: Pause after the cautions and after the start cue before anything else is said.
SETTLE = 1.0
#: Chimes are timing too: their lengths, and the silence kept between a chime and any speech.
CHIME_SECONDS = 0.3
TICK_SECONDS = 0.05
CHIME_GUARD = 0.1
#: Cues start on a grid of MP3 frames (576 samples at 16-24 kHz, MPEG-2 layer III): an export
#: then copies each cue's already-encoded frames instead of encoding the track
#: (voicecoach.export.stitch), and live play follows the same plan.
GRID = 576


class Kind(str, Enum):
    CAUTION = "caution"
    INSTRUCTION = "instruction"
    HOLD = "hold"
    COUNTDOWN = "countdown"
    HALFWAY = "halfway"
    SWITCH_SIDES = "switch-sides"
    SET = "set"
    REP = "rep"
    BREATH = "breath"
    REST = "rest"
    NEXT_UP = "next-up"
    START = "start"
    FINISH = "finish"


@dataclass(frozen=True)
class Event:
    """One cue: speech (if any) at `start`, then silence until the next event. Times in frames."""

    kind: Kind
    text: str
    exercise: str | None
    start: int
    length: int
    speech: int

    @property
    def end(self) -> int:
        return self.start + self.length


class Cue(NamedTuple):
    """An event as first timed, before `on_grid` moves it onto the frame grid. A tuple, as it is
    cheaper to make: a planner times thousands for every candidate session `make` weighs."""

    kind: Kind
    text: str
    exercise: str | None
    start: int
    length: int
    speech: int


class ChimeKind(str, Enum):
    HOLD_START = "hold-start"
    HOLD_END = "hold-end"
    REST_END = "rest-end"
    TICK = "tick"


@dataclass(frozen=True)
class Chime:
    """A short tone at `start` (frames) for `length` frames, always in silence between cues."""

    kind: ChimeKind
    start: int
    length: int

    @property
    def end(self) -> int:
        return self.start + self.length


@dataclass(frozen=True)
class PlanOptions:
    pace: float = 1.0
    only: tuple[str, ...] = ()
    skip: tuple[str, ...] = ()
    detail: str = "full"
    lead_in: float = EXPORT_LEAD_IN
    rate: int = PLAN_RATE
    #: Exercises the safety rules leave out today, with the reason spoken to the listener.
    left_out: tuple[tuple[str, str], ...] = ()
    #: Chimes at hold start/end and rest end, and ticks in countdowns; None: the routine's choice.
    chimes: bool | None = None
    countdown_ticks: bool | None = None


@dataclass(frozen=True)
class Plan:
    routine_id: str
    title: str
    rate: int
    lead_in: int
    events: tuple[Event, ...]
    exercises: tuple[str, ...]
    left_out: tuple[tuple[str, str], ...] = ()
    #: Chimes in the silences between cues, in time order (they never move a cue).
    chimes: tuple[Chime, ...] = ()

    @property
    def total(self) -> int:
        return self.events[-1].end if self.events else self.lead_in

    @property
    def duration(self) -> float:
        return self.total / self.rate

    def seconds(self, frames: int) -> float:
        return frames / self.rate

    def spoken_texts(self) -> list[str]:
        """Every distinct text the plan speaks, in first-use order."""
        return list(dict.fromkeys(e.text for e in self.events if e.text))

    def chapters(self) -> list[tuple[str, int, int]]:
        """(title, start, end) frames: an intro chapter, then one per exercise."""
        marks: list[tuple[str, int]] = []
        for event in self.events:
            title = event.exercise or ("Introduction" if not marks else None)
            if title and (not marks or marks[-1][0] != title):
                marks.append((title, event.start if marks else 0))
        out = []
        for i, (title, start) in enumerate(marks):
            end = marks[i + 1][1] if i + 1 < len(marks) else self.total
            out.append((title, start, end))
        return out


Measure = Callable[[str], int]


def estimate_speech(rate: int = PLAN_RATE) -> Measure:
    """A stand-in for measured clips: about 15 characters a second at 165 words a minute."""

    def measure(text: str) -> int:
        return round(rate * (0.2 + len(text) / 15.0))

    return measure


def build_plan(
    routine: Routine, options: PlanOptions | None = None, measure: Measure | None = None
) -> Plan:
    """The plan for a routine. Pure: the same routine, options and clip lengths give the same
    plan."""
    options = options or PlanOptions()
    measure = measure or estimate_speech(options.rate)
    left = {slug(name) for name, _ in options.left_out}
    exercises = [ex for ex in select_exercises(routine, options.only, options.skip)
                 if slug(ex.name) not in left]
    if not exercises:
        raise UserError("every chosen exercise is left out today",
                        fix="see `voicecoach history`, or add --force to do them anyway")
    check_bounds(exercises, options.pace)
    words = wording(routine.language)
    builder = _Builder(routine, options, measure, words)
    builder.lay_out(exercises)
    # The start cue says the minutes, so the session is first placed after a draft of it (the
    # minutes left out, its speech estimated) to learn how many; nothing after the start cue
    # depends on where it begins, so it is laid out once and placed after either.
    draft = builder.opening("", estimate_speech(options.rate))
    total = builder.total(draft)
    minutes = words.duration(60 * max(1, round(total / options.rate / 60)))
    return builder.plan(builder.opening(minutes, measure), exercises)


def check_bounds(exercises: Sequence[Exercise], pace: float) -> None:
    """The model's bounds hold for what will play: the chosen exercises, with every side and
    set, at this pace (a valid routine may not be stretched past them by --pace)."""
    for ex in exercises:
        if ex.nominal_seconds * pace > MAX_EXERCISE_SECONDS:
            hours = ex.nominal_seconds * pace / 3600
            raise UserError(f"at --pace {pace:g}, {ex.name} would last {hours:.1f} hours; an "
                            "exercise may last at most 4 hours", fix="use a smaller --pace")
    total = sum(ex.nominal_seconds for ex in exercises) * pace
    if total > MAX_ROUTINE_SECONDS:
        raise UserError(f"at --pace {pace:g} the exercises would last {total / 3600:.1f} hours; a "
                        "session may last at most 8 hours",
                        fix="use a smaller --pace, or fewer exercises with --only")


def select_exercises(
    routine: Routine, only: Sequence[str] = (), skip: Sequence[str] = ()
) -> list[Exercise]:
    """Exercises picked by name (case-insensitive) or 1-based number; unknown names are errors."""
    chosen = [_find(routine, n) for n in only] if only else list(routine.exercises)
    if only:
        chosen = [ex for ex in routine.exercises if ex in chosen]
    dropped = {id(_find(routine, n)) for n in skip}
    chosen = [ex for ex in chosen if id(ex) not in dropped]
    if not chosen:
        raise UserError("no exercises left to play", fix="loosen --only / --skip")
    return chosen


def from_onwards(
    routine: Routine, name: str, only: Sequence[str] = (), skip: Sequence[str] = ()
) -> tuple[str, ...]:
    """`--from NAME` as a selection (1-based numbers): the chosen exercises from NAME on. A
    session that starts further in still opens with its start cue and its cautions."""
    chosen = select_exercises(routine, only, skip)
    first = _find(routine, name)
    at = next((i for i, ex in enumerate(chosen) if ex is first), None)
    if at is None:
        raise UserError(f"{first.name!r} is not in this session",
                        fix="it was left out by --only or --skip")
    number = {id(ex): str(i + 1) for i, ex in enumerate(routine.exercises)}
    return tuple(number[id(ex)] for ex in chosen[at:])


def _find(routine: Routine, name: str) -> Exercise:
    if name.strip().isdigit():
        index = int(name) - 1
        if 0 <= index < len(routine.exercises):
            return routine.exercises[index]
    for ex in routine.exercises:
        if slug(ex.name) == slug(name):
            return ex
    names = [ex.name for ex in routine.exercises]
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.4)
    hint = f"did you mean {', '.join(repr(c) for c in close)}?" if close else (
        "it has: " + ", ".join(names)
    )
    raise UserError(f"no exercise named {name!r} in {routine.id or routine.title}", fix=hint)


@dataclass
class _Inner:
    """A cue placed inside a timed block, at an offset from the block's start."""

    at: int
    kind: Kind
    text: str
    #: Said as soon as the block's first cue is over, rather than at an exact moment.
    asap: bool = False


@dataclass(frozen=True)
class Block:
    """Where a timed block (hold, rest) lies, for the chimes placed once every cue is timed."""

    kind: str
    start: int
    speech_end: int
    end: int


@dataclass
class _Builder:
    routine: Routine
    options: PlanOptions
    measure: Measure
    words: Wording
    #: Everything after the start cue, timed from its end.
    cues: list[Cue] = field(default_factory=list)
    cursor: int = 0
    current: str | None = None
    blocks: list[Block] = field(default_factory=list)
    # Fixed for the whole plan, so worked out once (a planner builds many plans for `make`).
    gap: int = field(init=False)
    #: Time after a hold's first words for its start chime, with silence on both sides.
    chime_room: int = field(init=False)
    chimes: bool = field(init=False)
    ticks: bool = field(init=False)
    #: How many numbers a countdown says (0: none).
    countdown: int = field(init=False)

    def __post_init__(self) -> None:
        d, o = self.routine.defaults, self.options
        self.gap = self.f(MIN_GAP)
        self.chime_room = self.f(2 * CHIME_GUARD + CHIME_SECONDS)
        self.chimes = d.chimes if o.chimes is None else o.chimes
        self.ticks = d.countdown_ticks if o.countdown_ticks is None else o.countdown_ticks
        self.countdown = d.countdown if d.cues.countdown else 0

    def f(self, seconds: float) -> int:
        return round(seconds * self.options.rate)

    def paced(self, seconds: float) -> int:
        return self.f(seconds * self.options.pace)

    # -- primitives -------------------------------------------------------------------------

    def say(self, kind: Kind, text: str, after: float = MIN_GAP) -> None:
        """Speak, then wait `after` seconds."""
        speech = self.measure(text)
        self._append(kind, text, speech, speech + max(self.gap, self.f(after)))

    def _append(self, kind: Kind, text: str, speech: int, length: int) -> None:
        self.cues.append(Cue(kind, text, self.current, self.cursor, length, speech))
        self.cursor += length

    def timed(
        self, kind: Kind, text: str, length: int, inner: list[_Inner], countdown: bool = True,
        chimes: str = "",
    ) -> None:
        """A block of `length` frames: `text` at its start, optional cues inside where they fit,
        and a countdown over its last seconds. Inner cues never overlap and never stretch it.
        `chimes` ("hold" or "rest") marks the block for chimes, placed when the plan is done."""
        start_speech = self.measure(text)
        length = max(length, start_speech + self.gap)
        if chimes:
            self.blocks.append(Block(chimes, self.cursor, self.cursor + start_speech,
                                      self.cursor + length))
        placed = [(0, kind, text, start_speech)]
        free = start_speech + self.gap
        if inner:
            free = self._place(sorted(inner, key=lambda c: c.at), placed, free, length)
        if countdown and self.countdown:
            counts = self._countdown(length)
            trial: list[tuple[int, Kind, str, int]] = []
            # A countdown is said whole or not at all: "two, one" alone would confuse.
            self._place(counts, trial, free, length)
            if len(trial) == len(counts):
                placed += trial
        for i, (at, k, t, speech) in enumerate(placed):
            nxt = placed[i + 1][0] if i + 1 < len(placed) else length
            self._append(k, t, speech, nxt - at)

    def _place(
        self, cues: list[_Inner], placed: list[tuple[int, Kind, str, int]], free: int, length: int
    ) -> int:
        """Add each cue that fits after `free` and ends inside the block; return the new `free`."""
        for cue in cues:
            speech = self.measure(cue.text)
            at = max(cue.at, free) if cue.asap else cue.at
            if at >= free and at + speech + self.gap <= length:
                placed.append((at, cue.kind, cue.text, speech))
                free = at + speech + self.gap
        return free

    def _countdown(self, length: int) -> list[_Inner]:
        second = self.f(1.0)
        return [
            _Inner(length - k * second, Kind.COUNTDOWN, self.words.number(k))
            for k in range(self.countdown, 0, -1)
            if length - k * second > 0
        ]

    # -- routine structure ------------------------------------------------------------------

    def opening(self, minutes: str, measure: Measure) -> Cue:
        """The start cue, after the lead-in, its speech timed by `measure`."""
        w = self.words
        template = w.start_short if self.options.detail == "short" else w.start
        text = fill(template, title=self.routine.title, minutes=minutes)
        speech = measure(text)
        return Cue(Kind.START, text, None, self.f(self.options.lead_in),
                   speech + max(self.gap, self.f(MIN_GAP)), speech)

    def placed(self, opening: Cue) -> tuple[list[Cue], int]:
        """The start cue and every cue laid out, timed from the end of the start cue (as the
        blocks are); and where that end is."""
        at = opening.start + opening.length
        return [opening._replace(start=opening.start - at), *self.cues], at

    def total(self, opening: Cue) -> int:
        """The frames the plan would last after this start cue."""
        cues, at = self.placed(opening)
        return grid_starts(cues, self.blocks, self.gap, self.chime_room, at=at)[1]

    def plan(self, opening: Cue, exercises: list[Exercise]) -> Plan:
        cues, at = self.placed(opening)
        events, blocks = on_grid(cues, self.blocks, self.gap, self.chime_room, at=at)
        r = self.routine
        return Plan(
            routine_id=r.id,
            title=r.title,
            rate=self.options.rate,
            lead_in=events[0].start,
            events=tuple(events),
            exercises=tuple(ex.name for ex in exercises),
            left_out=self.options.left_out,
            chimes=place_chimes(events, blocks, self.options.rate, chimes=self.chimes,
                                ticks=self.ticks, countdown=r.defaults.countdown),
        )

    def lay_out(self, exercises: list[Exercise]) -> None:
        """Every cue after the start cue, timed from its end, before it is put on the grid."""
        self.cursor = 0
        r, w = self.routine, self.words
        short = self.options.detail == "short"
        cautions = self.cautions(short)
        for i, caution in enumerate(cautions):
            self.say(Kind.CAUTION, caution, after=SETTLE if i == len(cautions) - 1 else 0.5)
        for i, ex in enumerate(exercises):
            if i:
                self.rest_between(ex)
            self.exercise(ex)
        self.current = None
        self.say(Kind.FINISH, fill(w.finish, title=r.title), after=SETTLE)

    def cautions(self, short: bool) -> list[str]:
        """The routine's cautions, then why any exercise is left out today. Short once familiar,
        never absent: a caution without a short form is said in full, and a routine without
        cautions gets one general reminder."""
        w, listed = self.words, self.routine.cautions
        if not short:
            said = [w.cautions_intro, *(c.say for c in listed)] if listed else []
        else:
            shorts = [c.short or c.say for c in listed]
            said = [w.cautions_short_intro, *(shorts or [w.cautions_generic])]
        said += [
            fill(w.left_out, name=name, reason=reason) for name, reason in self.options.left_out
        ]
        return said

    def rest_between(self, ex: Exercise) -> None:
        self.current = None
        seconds = self.routine.defaults.rest
        inner = []
        if self.routine.defaults.cues.next_up:
            inner.append(_Inner(0, Kind.NEXT_UP, fill(self.words.next_up, name=ex.name), asap=True))
        text = fill(self.words.rest, duration=self.words.duration(seconds * self.options.pace))
        self.timed(Kind.REST, text, self.paced(seconds), inner, chimes="rest")

    def exercise(self, ex: Exercise) -> None:
        self.current = ex.name
        short = self.options.detail == "short"
        self.say(Kind.INSTRUCTION, fill(self.words.exercise, name=ex.name), after=0.5)
        if ex.caution:
            self.say(Kind.CAUTION, ex.caution)
        if ex.manipulation:
            self.say(Kind.CAUTION,
                     self.words.manipulation_short if short else self.words.manipulation)
        if ex.limits and ex.limits.note:
            self.say(Kind.CAUTION, ex.limits.note)
        # Steps up to the first one that names a side are said once; the rest once per side.
        split = next((i for i, s in enumerate(ex.setup) if "{side}" in s.say), len(ex.setup))
        once, per_side = ex.setup[:split], ex.setup[split:]
        if short and ex.summary:
            # The summary stands for the set-up, but never for its safety steps.
            self.steps([s for s in once if s.safety], "", short)
            once, per_side = [], [s for s in per_side if s.safety]
            self.say(Kind.INSTRUCTION, _fill(ex.summary, ex.sides[0] if ex.sides else ""),
                     after=self.routine.defaults.step_pause)
        self.steps(once, "", short)
        sides = ex.sides or [""]
        for set_no in range(ex.sets):
            if ex.sets > 1 and self.routine.defaults.cues.sets:
                last = set_no == ex.sets - 1
                text = self.words.last_set if last else fill(self.words.set, n=set_no + 1,
                                                                total=ex.sets)
                self.say(Kind.SET, text, after=0.5)
            if set_no and ex.summary and not short and not ex.sides:
                self.say(Kind.INSTRUCTION, ex.summary, after=self.routine.defaults.step_pause)
            for side_no, side in enumerate(sides):
                self.side(ex, set_no, side_no, side)
                if set_no == 0:
                    self.steps(per_side, side, short)
                self.body(ex, side)
                for follow in ex.then:
                    self.follow_up(follow, side, short)
            if set_no < ex.sets - 1:
                seconds = ex.rest_between_sets or self.routine.defaults.rest_between_sets
                text = fill(self.words.rest_sets,
                            duration=self.words.duration(seconds * self.options.pace))
                self.timed(Kind.REST, text, self.paced(seconds), [], chimes="rest")

    def side(self, ex: Exercise, set_no: int, side_no: int, side: str) -> None:
        """Announce the side: first side, a switch (with time to move), or a new set's first
        side."""
        if not side:
            return
        if side_no:
            text = fill(self.words.switch_sides, side=side)
            self.timed(Kind.SWITCH_SIDES, text, self.f(self.routine.defaults.transition), [],
                       countdown=False)
        else:
            wording = self.words.side_again if set_no else self.words.side
            self.say(Kind.SWITCH_SIDES, _sentence(fill(wording, side=side)))
            if set_no and ex.summary:
                self.say(Kind.INSTRUCTION, _fill(ex.summary, side),
                         after=self.routine.defaults.step_pause)

    def steps(self, steps: Sequence[Step], side: str, short: bool) -> None:
        for step in steps:
            text = step.short if short and step.short else step.say
            wait = step.wait if step.wait is not None else self.routine.defaults.step_pause
            self.say(Kind.INSTRUCTION, _fill(text, side), after=wait)

    def body(self, ex: Exercise, side: str) -> None:
        """Reps first (moving into the position), then the hold."""
        if ex.reps is not None:
            if ex.each_rep:
                self.phased_reps(ex, side)
            else:
                self.counted_reps(ex)
        if ex.hold is not None:
            self.hold(ex, self.paced(ex.hold))

    def hold(self, ex: Exercise, length: int) -> None:
        d = self.routine.defaults
        wording = self.words.keep_going if ex.moving else self.words.hold
        text = fill(wording, duration=self.words.duration(length / self.options.rate))
        inner: list[_Inner] = []
        if ex.breathing and d.cues.breathing:
            # The first breath waits for the start chime, if there is one.
            room = max(self.gap, self.chime_room) if self.chimes else self.gap
            inner = self.breaths(ex, length, self.measure(text) + room)
        elif d.cues.halfway and length >= self.paced(d.halfway_after):
            inner = [_Inner(length // 2, Kind.HALFWAY, self.words.halfway)]
        self.timed(Kind.HOLD, text, length, inner, chimes="hold")

    def breaths(self, ex: Exercise, length: int, at: int) -> list[_Inner]:
        """Whole breathing cycles (in, [hold], out) that fit between the hold cue and the
        countdown."""
        assert ex.breathing is not None
        b, w = ex.breathing, self.words
        cycle = [(w.breath_in, self.f(b.inhale))]
        if b.pause:
            cycle.append((w.breath_hold, self.f(b.pause)))
        cycle.append((w.breath_out, self.f(b.exhale)))
        # Each part lasts its length, or as long as its cue takes to say if that is longer.
        spans = [(text, max(span, self.measure(text) + self.gap)) for text, span in cycle]
        period = sum(span for _, span in spans)
        countdown = self.countdown
        stop = length - self.f(countdown + 0.5) if countdown else length
        out: list[_Inner] = []
        while at + period <= stop:
            for text, span in spans:
                out.append(_Inner(at, Kind.BREATH, text))
                at += span
        return out

    def counted_reps(self, ex: Exercise) -> None:
        assert ex.reps is not None
        tempo = self.paced(ex.tempo or self.routine.defaults.tempo)
        for n in range(1, ex.reps + 1):
            template = self.words.last_rep if n == ex.reps and ex.reps > 1 else self.words.rep
            text = _sentence(fill(template, count=self.words.number(n)))
            speech = self.measure(text)
            self._append(Kind.REP, text, speech, max(tempo, speech + self.gap))

    def phased_reps(self, ex: Exercise, side: str) -> None:
        assert ex.reps is not None
        # Every rep after the first says the same: its cues are worked out once.
        first = [self.phase(phase, side, later=False) for phase in ex.each_rep]
        later = [self.phase(phase, side, later=True) for phase in ex.each_rep]
        for n in range(1, ex.reps + 1):
            if self.routine.defaults.cues.rep_counts and ex.reps > 1:
                template = self.words.last_rep if n == ex.reps else self.words.rep
                self.say(Kind.REP, _sentence(fill(template, count=self.words.number(n))), 0)
            for kind, text, length in later if n > 1 else first:
                self.timed(kind, text, length, [], countdown=False)

    def phase(self, phase: Phase, side: str, later: bool) -> tuple[Kind, str, int]:
        """A phase of a rep as a timed block: its kind, its words and its length."""
        kind = Kind.BREATH if phase.breath else Kind.INSTRUCTION
        text = phase.short if later and phase.short else phase.say
        return kind, _fill(text, side), self.paced(phase.seconds)

    def follow_up(self, follow: FollowUp, side: str, short: bool) -> None:
        text = _fill(follow.short if short and follow.short else follow.say, side)
        if follow.hold is None:
            self.say(Kind.INSTRUCTION, text, after=self.routine.defaults.step_pause)
        else:
            self.timed(Kind.INSTRUCTION, text, self.paced(follow.hold), [], chimes="hold")


def place_chimes(
    events: Sequence[Event], blocks: Sequence[Block], rate: int, *, chimes: bool, ticks: bool,
    countdown: int,
) -> tuple[Chime, ...]:
    """Chimes in the silences of a finished plan: after a hold's first words, just before a
    hold or rest ends, and (with `ticks`) a tick on each of the last `countdown` seconds. Each
    keeps CHIME_GUARD of silence from any speech; one that has no such room is left out, so a
    chime never sounds over a cue and never moves one. Pure: events and blocks in, chimes out."""
    if not (chimes or ticks):
        return ()
    spans = [(e.start, e.start + e.speech) for e in events if e.speech > 0]
    starts = [a for a, _ in spans]
    total = events[-1].end if events else 0

    def f(seconds: float) -> int:
        return round(seconds * rate)

    guard = f(CHIME_GUARD)
    placed: list[Chime] = []
    # The placed chimes in time order. They never overlap, so their ends rise with their starts:
    # as for speech, only the last one that starts before a new chime ends can reach it.
    taken: list[int] = []
    taken_ends: list[int] = []

    def clear(at: int, length: int) -> bool:
        lo, hi = at - guard, at + length + guard
        i = bisect.bisect_left(starts, hi)
        if i and spans[i - 1][1] > lo:
            return False
        j = bisect.bisect_left(taken, at + length + guard // 2)
        return not (j and taken_ends[j - 1] + guard // 2 > at)

    def place(kind: ChimeKind, at: int, length: int) -> bool:
        if at >= 0 and at + length <= total and clear(at, length):
            placed.append(Chime(kind, at, length))
            k = bisect.bisect_right(taken, at)
            taken.insert(k, at)
            taken_ends.insert(k, at + length)
            return True
        return False

    chime, tick, second = f(CHIME_SECONDS), f(TICK_SECONDS), f(1.0)
    for block in blocks:
        if chimes and block.kind == "hold":
            place(ChimeKind.HOLD_START, block.speech_end + guard, chime)
        if chimes:
            kind = ChimeKind.HOLD_END if block.kind == "hold" else ChimeKind.REST_END
            place(kind, block.end - guard - chime, chime)
        if ticks:
            # On each of the last seconds; half a second later where a number is spoken.
            for k in range(countdown, 0, -1):
                mark = block.end - k * second
                if mark >= block.speech_end:
                    _ = place(ChimeKind.TICK, mark, tick) or place(
                        ChimeKind.TICK, mark + second // 2, tick)
    return tuple(sorted(placed, key=lambda c: c.start))


def on_grid(
    cues: Sequence[Cue], blocks: Sequence[Block], gap: int, room: int, grid: int = GRID, *,
    at: int = 0,
) -> tuple[list[Event], list[Block]]:
    """The cues, timed from `at`, moved onto the frame grid (see grid_starts) as events, each
    lasting until the next one starts; the blocks (for the chimes) move with their cues."""
    starts, end = grid_starts(cues, blocks, gap, room, grid, at=at)
    moved = {cue.start: start for cue, start in zip(cues, starts, strict=True)}
    if cues:
        moved[cues[-1].start + cues[-1].length] = end
    ends = [*starts[1:], end] if cues else []
    out = [Event(c.kind, c.text, c.exercise, start, following - start, c.speech)
           for c, start, following in zip(cues, starts, ends, strict=True)]
    shifted = [
        Block(b.kind, moved[b.start], moved[b.start] + (b.speech_end - b.start), moved[b.end])
        for b in blocks
    ]
    return out, shifted


def grid_starts(
    cues: Sequence[Cue], blocks: Sequence[Block], gap: int, room: int, grid: int = GRID, *,
    at: int = 0,
) -> tuple[list[int], int]:
    """Where each cue (timed from `at`, as the blocks are) starts on the frame grid, and where
    the last one ends: each at the first grid point at or after its time, later still if the cue
    before needs it to keep its speech and `gap` (never less than it had; a hold's first words
    keep `room` for its start chime). No cue moves by more than the grid unless tight cues
    chain."""
    holds = {b.start for b in blocks if b.kind == "hold"}
    hold_keep = max(gap, room)
    starts: list[int] = []
    free = 0
    for cue in cues:
        start = max(-(-(at + cue.start) // grid) * grid, free)
        starts.append(start)
        keep = hold_keep if cue.start in holds else gap
        need = cue.speech + min(keep, cue.length - cue.speech)
        free = -(-(start + need) // grid) * grid
    end = max(free, starts[-1] + -(-cues[-1].length // grid) * grid) if cues else free
    return starts, end


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _fill(text: str, side: str) -> str:
    filled = text.replace("{side}", side)
    return _sentence(filled) if text.startswith("{side}") else filled
