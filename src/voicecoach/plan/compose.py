"""Compose a session from the whole library: fit the minutes, keep the safety rules, vary by day."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import difflib
import hashlib
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from voicecoach.errors import UserError
from voicecoach.plan.lead_in import LEAD_INS
from voicecoach.plan.timeline import Measure, Plan, PlanOptions, build_plan
from voicecoach.routine.limits import done_times, limit_state
from voicecoach.routine.model import Area, Defaults, Exercise, Level, Role, Routine
from voicecoach.routine.names import slug
from voicecoach.routine.wording import Wording, counted, wording

MIN_MINUTES, MAX_MINUTES = 2, 90
#: A made session's length aims within this share of the request (the promise is 10%).
AIM = 0.05
#: A made session is accepted only this close to the request on every timeline it is played on
#: (plan.lead_in.LEAD_INS: live play, a phone, an export): well inside the promise.
ACCEPT = 0.08
#: In a session of at least SEVERAL_MINUTES no exercise takes more than MAX_SHARE of it: its
#: sets come down first (never below half the article's count), else another is chosen.
MAX_SHARE = 0.35
SEVERAL_MINUTES = 6
#: ... and once fitted (holds scaled, sets added) none may be more than this share of it: a
#: session that would be is refused, not made.
MOST_OF_ONE = 0.45
#: "Do not crack your back often": at most this many self-manipulation moves in one session.
MAX_MANIPULATION = 2
#: Holds and reps scale within these factors of the article's values, so each stays sensible.
SCALE_MIN, SCALE_MAX = 0.5, 2.0
#: Past SCALE_MAX a long session adds whole sets (with a rest between), up to MAX_SETS each.
MAX_SETS = 3
HOLD_STEP = 5.0
REST_MIN, REST_DEFAULT, REST_MAX = 8.0, 12.0, 25.0
#: Days before the planned one whose exercises are avoided when alternatives exist.
VARIETY_DAYS = 2
#: Recent exercises stay out while the fresh ones fill the session with holds at most this
#: much longer than the articles' and no added sets.
MODEST = 1.5
FAVOURED = 3.0
WHOLE_BACK = ("whole back", "whole", "back", "all")
DEFAULT_EQUIPMENT = ("mat",)
MODELINE = "# yaml-language-server: $schema=routine.schema.json"

BEFORE = (Role.warm_up, Role.stretch, Role.mobilisation)
#: "Stretch before and after": the move right after the last crack stretches; a warm-up is not
#: that (it loosens for what follows).
AFTER = (Role.stretch, Role.cool_down)
#: The general cautions every made session opens with (from the gentle first routine).
GENERAL_CAUTIONS = (
    {"say": "Move slowly and only as far as feels comfortable. Stop if anything hurts.",
     "short": "Slow and comfortable; stop if anything hurts."},
)


class Refusal(UserError):
    """A request no session can meet; the message says which constraint and what to change."""


@dataclass(frozen=True)
class Request:
    """What the user asked for."""

    minutes: float
    day: _dt.date
    focus: tuple[str, ...] = ()
    equipment: tuple[str, ...] = DEFAULT_EQUIPMENT
    gentle: bool = False
    i_understand: bool = False

    def seed(self) -> int:
        key = "|".join([self.day.isoformat(), f"{self.minutes:g}", ",".join(sorted(self.focus)),
                        ",".join(sorted(self.equipment)), str(self.gentle), str(self.i_understand)])
        return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")

    def as_json(self) -> dict[str, object]:
        return {"minutes": self.minutes, "focus": list(self.focus),
                "equipment": list(self.equipment), "gentle": self.gentle,
                "i_understand": self.i_understand}


@dataclass(frozen=True)
class Facts:
    """What safety and history say, read before composing: all the composer knows of the world."""

    now: float
    rules_out_manipulation: bool = False
    #: `now` is the clock's now (planning today), not the start of a day planned ahead: limits
    #: may say "done N minutes ago" only then.
    present: bool = True
    #: (exercise name, done_at) of exercises done in any routine, recent enough to matter.
    done: tuple[tuple[str, float], ...] = ()
    #: exercise slug -> +1 (favoured) or -1 (never chosen).
    ratings: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Entry:
    """One library exercise with its facts (given in the file, or inferred from its routine)."""

    exercise: Exercise
    routine: Routine
    areas: frozenset[str]
    role: Role
    equipment: frozenset[str]
    level: Level

    @property
    def key(self) -> str:
        return slug(self.exercise.name)

    @property
    def scalable(self) -> bool:
        # Cracks are not chased with repeats, and limited moves keep the article's counts.
        return not self.exercise.manipulation and self.exercise.limits is None


@dataclass(frozen=True)
class Composition:
    """A made session: the routine, the file text that says it, its planned length, and what
    was left out and why."""

    routine: Routine
    text: str
    plan: Plan
    left_out: tuple[tuple[str, str], ...]
    skipped: tuple[tuple[str, int], ...]
    pool: int

    @property
    def seconds(self) -> float:
        return self.plan.duration


def entries(routines: Sequence[Routine]) -> list[Entry]:
    """Every exercise of the library once (the first routine to name it wins), with its facts."""
    out: dict[str, Entry] = {}
    for routine in routines:
        for ex in routine.exercises:
            out.setdefault(slug(ex.name), _entry(ex, routine))
    return list(out.values())


def _entry(ex: Exercise, routine: Routine) -> Entry:
    known = {a.value for a in Area}
    areas = [a.value for a in ex.areas] if ex.areas is not None else [
        a for a in routine.areas if a in known] or sorted(known)
    role = ex.role or (Role.self_manipulation if ex.manipulation else Role.stretch)
    equipment = ex.equipment if ex.equipment is not None else routine.equipment
    level = ex.level or (Level.intermediate if ex.manipulation else Level.beginner)
    return Entry(ex, routine, frozenset(areas), role, frozenset(equipment), level)


def check_request(request: Request, library: Sequence[Entry]) -> Request:
    """Refuse impossible requests; return the request with focus and equipment normalised."""
    if not MIN_MINUTES <= request.minutes <= MAX_MINUTES:
        raise Refusal(f"--minutes {request.minutes:g} is out of range",
                      fix=f"ask for {MIN_MINUTES} to {MAX_MINUTES} minutes")
    focus = tuple(dict.fromkeys(_known(f, [a.value for a in Area], "area", WHOLE_BACK)
                                for f in request.focus))
    focus = () if any(f in WHOLE_BACK for f in focus) else focus
    gear = sorted({g for e in library for g in e.equipment | set(e.routine.equipment)})
    equipment = tuple(dict.fromkeys(_known(g, gear, "equipment", ("none",))
                                    for g in request.equipment))
    if "none" in equipment and len(equipment) > 1:
        others = " ".join(f"--equipment {g}" for g in equipment if g != "none")
        raise Refusal(f"--equipment none contradicts {others}",
                      fix="give --equipment none alone for a session without equipment, or "
                      "leave it out")
    equipment = tuple(g for g in equipment if g != "none")
    return Request(request.minutes, request.day, tuple(sorted(focus)), tuple(sorted(equipment)),
                   request.gentle, request.i_understand)


def _known(value: str, known: Sequence[str], what: str, extra: Sequence[str]) -> str:
    word = " ".join(value.replace("-", " ").replace("_", " ").lower().split())
    if word in known or word in extra:
        return word
    close = difflib.get_close_matches(word, [*known, *extra], n=3, cutoff=0.5)
    fix = f"did you mean {', '.join(close)}?" if close else f"known: {', '.join([*known, *extra])}"
    raise Refusal(f"unknown {what} {value!r}", fix=fix)


# -- eligibility ---------------------------------------------------------------------------

def _stages(request: Request, facts: Facts, words: Wording) -> list[tuple[str, Any]]:
    """The filters, in the order they apply: (what it is called in a refusal, reason-or-None)."""
    have = set(request.equipment)

    def equipment(e: Entry) -> str | None:
        missing = sorted(e.equipment - have)
        return f"needs {', '.join(missing)}" if missing else None

    def focus(e: Entry) -> str | None:
        return None if not request.focus or e.areas & set(request.focus) else "other areas"

    def safety(e: Entry) -> str | None:
        if not e.exercise.manipulation:
            return None
        if request.gentle:
            return "self-manipulation, and you asked for --gentle"
        if facts.rules_out_manipulation and not request.i_understand:
            return words.left_out_screening
        return None

    def taste(e: Entry) -> str | None:
        return "you rated it down" if facts.ratings.get(e.key, 0) < 0 else None

    def limits(e: Entry) -> str | None:
        return _limit_reason(e.exercise, facts, request.day, words)

    return [("the equipment at hand", equipment), ("the focus", focus),
            ("safety (self-manipulation)", safety), ("your ratings", taste),
            ("frequency limits", limits)]


def _limit_reason(ex: Exercise, facts: Facts, day: _dt.date, words: Wording) -> str | None:
    """The article's wait and daily count on the planned day, whichever routine it was done in."""
    if ex.limits is None:
        return None
    return limit_state(ex, done_times(facts.done, ex.name), facts.now, words, day,
                       present=facts.present).reason


def _midnight(day: _dt.date) -> float:
    return _dt.datetime.combine(day, _dt.time()).timestamp()


def eligible(library: Sequence[Entry], request: Request, facts: Facts, language: str = "en"
             ) -> tuple[list[Entry], list[tuple[str, str]], list[tuple[str, int]]]:
    """The pool, the moves safety, limits and taste left out (with reasons), and how many each
    plain filter (equipment, focus) set aside. Refuses, naming the constraint, when none is left."""
    words = wording(language)
    pool = list(library)
    left_out: list[tuple[str, str]] = []
    skipped: list[tuple[str, int]] = []
    for name, reason_of in _stages(request, facts, words):
        kept = []
        for e in pool:
            reason = reason_of(e)
            if reason is None:
                kept.append(e)
            elif name in ("the equipment at hand", "the focus"):
                continue
            else:
                left_out.append((e.exercise.name, reason))
        if len(kept) < len(pool) and name in ("the equipment at hand", "the focus"):
            skipped.append((name, len(pool) - len(kept)))
        if not kept:
            raise Refusal(f"no exercise is left: {name} ruled out the last "
                          f"{counted(len(pool), 'one')}",
                          fix=_loosen(name))
        pool = kept
    return pool, left_out, skipped


def _loosen(stage: str) -> str:
    return {
        "the equipment at hand": "add --equipment (e.g. --equipment mat)",
        "the focus": "widen --focus, or leave it out for the whole back",
        "safety (self-manipulation)": "drop --gentle, or review `voicecoach safety`",
        "your ratings": "clear a rating with `voicecoach rate EXERCISE clear`",
        "frequency limits": "plan for another --date, when the waits are over",
    }[stage]


# -- choice ----------------------------------------------------------------------------------

def _recency(e: Entry, facts: Facts, day: _dt.date) -> int:
    """2: done on the planned day or the day before; 1: within VARIETY_DAYS; 0: not lately."""
    key, start = e.key, _midnight(day)
    last = max((t for name, t in facts.done if slug(name) == key and t <= facts.now), default=None)
    if last is None or last < start - VARIETY_DAYS * 86400:
        return 0
    return 2 if last >= start - 86400 else 1


def _order(pool: Sequence[Entry], request: Request, facts: Facts) -> list[tuple[int, Entry]]:
    """(recency tier, candidate), fresh ones first; within a tier, a weighted shuffle seeded by
    the request."""
    rng = random.Random(request.seed())
    keyed = []
    for e in sorted(pool, key=lambda e: e.key):
        weight = FAVOURED if facts.ratings.get(e.key, 0) > 0 else 1.0
        keyed.append((_recency(e, facts, request.day), -(rng.random() ** (1.0 / weight)), e.key, e))
    return [(k[0], k[3]) for k in sorted(keyed, key=lambda k: k[:3])]


def arrange(chosen: Sequence[Entry]) -> list[Entry] | None:
    """Session order: warm-ups, stretches and mobilisation, then each cracking move followed by
    a stretch (the last by the cool-down when there is one), then the rest. None when a cracking
    move lacks a gentle move before or a stretch after it."""
    rank = {Role.warm_up: 0, Role.stretch: 1, Role.mobilisation: 2, Role.self_manipulation: 3,
            Role.cool_down: 5}
    ordered = sorted(chosen, key=lambda e: (rank[e.role], e.level != Level.beginner))
    cracks = [e for e in ordered if e.role is Role.self_manipulation]
    if not cracks:
        return ordered
    if len(cracks) > MAX_MANIPULATION:
        return None
    gentle = [e for e in ordered if e.role is not Role.self_manipulation]
    last = next((e for e in reversed(gentle) if e.role is Role.cool_down), None) or next(
        (e for e in reversed(gentle) if e.role in AFTER), None)
    if last is None:
        return None
    # "Stretch before and after": every crack but the last is followed by a stretch of its own.
    others = [e for e in reversed(gentle) if e.role in AFTER and e is not last]
    afters = [*others[:len(cracks) - 1], last]
    if len(afters) < len(cracks):
        return None
    before = [e for e in gentle if e not in afters and e.role is not Role.cool_down]
    if not any(e.role in BEFORE for e in before):
        return None
    rest = [e for e in gentle if e not in afters and e not in before]
    return [*before, *(m for pair in zip(cracks, afters, strict=True) for m in pair), *rest]


# -- timing ----------------------------------------------------------------------------------

class _Timer:
    """Plans a candidate session with the real planner and the given speech measure."""

    def __init__(self, request: Request, measure: Measure, options: PlanOptions,
                 lead_ins: Sequence[float] = ()) -> None:
        self.request, self.measure, self.options = request, measure, options
        self.lead_ins = tuple(lead_ins) or (options.lead_in,)
        #: Plans already made in this composition: the search asks for the same one repeatedly
        #: (its length, then on every timeline, then which exercise dominates).
        self._plans: dict[tuple[tuple[str, ...], Fit, tuple[tuple[str, int], ...], float],
                          Plan] = {}
        #: Sets an exercise is trimmed to, so that it does not dominate (see trim).
        self.sets: dict[str, int] = {}

    def routine(self, chosen: Sequence[Entry], fit: Fit) -> tuple[dict[str, Any], Routine]:
        data = session_data(self.request, chosen, fit, self.sets)
        return data, Routine.model_validate({**data, "id": "today"})

    def plan(self, chosen: Sequence[Entry], fit: Fit, lead_in: float | None = None) -> Plan:
        """The plan of these exercises so fitted, with the sets trimmed so far, on the timeline
        with this lead-in (None: the options')."""
        lead = self.options.lead_in if lead_in is None else lead_in
        key = (tuple(e.key for e in chosen), fit, tuple(sorted(self.sets.items())), lead)
        if key not in self._plans:
            _, routine = self.routine(chosen, fit)
            options = self.options if lead == self.options.lead_in else dataclasses.replace(
                self.options, lead_in=lead)
            self._plans[key] = build_plan(routine, options, self.measure)
        return self._plans[key]

    def worst(self, chosen: Sequence[Entry], fit: Fit, target: float) -> float:
        """The largest miss of the target over the timelines the session is played on."""
        return max(abs(self.plan(chosen, fit, lead).duration - target) for lead in self.lead_ins)

    def dominant(self, chosen: Sequence[Entry], fit: Fit, target: float) -> str | None:
        """The exercise that would take more than MOST_OF_ONE of a session of several minutes."""
        if target < SEVERAL_MINUTES * 60 or len(chosen) < 2:
            return None
        plan = self.plan(chosen, fit)
        return next((title for title, start, end in plan.chapters()[1:]
                     if plan.seconds(end - start) > MOST_OF_ONE * plan.duration), None)

    def length(self, e: Entry, sets: int) -> float:
        """How long `e` takes, alone in a session, with `sets` sets."""
        saved = self.sets.get(e.key)
        self.sets[e.key] = sets
        try:
            plan = self.plan([e], Fit())
        finally:
            if saved is None:
                del self.sets[e.key]
            else:
                self.sets[e.key] = saved
        _, start, end = plan.chapters()[1]
        return plan.seconds(end - start)

    def trim(self, pool: Sequence[Entry], target: float) -> list[Entry]:
        """Bring each long exercise's sets down (never below half the article's count, rests
        kept; cracks and limited moves untouched) until it takes at most MAX_SHARE of the
        session; returns the pool without those that would still dominate. Short sessions
        (under SEVERAL_MINUTES) may be one long exercise."""
        if target < SEVERAL_MINUTES * 60:
            return list(pool)
        cap, kept = MAX_SHARE * target, []
        for e in pool:
            sets = e.exercise.sets
            if self.length(e, sets) > cap and e.scalable:
                while sets > fewest_sets(e.exercise.sets) and self.length(e, sets) > cap:
                    sets -= 1
                self.sets[e.key] = sets
            if self.length(e, self.sets.get(e.key, e.exercise.sets)) <= cap:
                kept.append(e)
        return kept

    def seconds(self, chosen: Sequence[Entry], fit: Fit | None = None) -> float:
        return self.plan(chosen, fit or Fit()).duration


@dataclass(frozen=True)
class Fit:
    """How a session is stretched or shrunk to its minutes: holds and reps scaled (within
    SCALE_MIN..SCALE_MAX of the article's), `extra` whole sets added one exercise at a time
    (up to MAX_SETS each), and the rest between exercises."""

    scale: float = 1.0
    extra: int = 0
    rest: float = REST_DEFAULT


SHORTEST = Fit(SCALE_MIN, 0, REST_MIN)


def compose(
    library: Sequence[Entry],
    request: Request,
    facts: Facts,
    measure: Measure,
    options: PlanOptions | None = None,
    lead_ins: Sequence[float] = LEAD_INS,
) -> Composition:
    """The session for `request` on its day: pure, so the same library, request, facts and speech
    give the same session. `lead_ins`: the timelines it may be played on (live play, export),
    each of which must land within ACCEPT of the request. Raises Refusal with the reason when no
    session can meet it."""
    request = check_request(request, library)
    options = options or PlanOptions()
    language = library[0].routine.language if library else "en"
    pool, left_out, skipped = eligible(library, request, facts, language)
    timer = _Timer(request, measure, options, lead_ins)
    target = request.minutes * 60
    shares = timer.trim(pool, target)
    chosen, fit, seconds = _choose(_order(shares, request, facts), timer, target)
    if not chosen:
        shortest = min(timer.seconds([e], SHORTEST) for e in pool)
        if shortest <= target * (1 + AIM):  # short enough: what is left cannot be arranged
            eligible_ones = counted(len(pool), "eligible exercise")
            raise Refusal(f"no session can be made from the {eligible_ones}: a cracking move "
                          "needs a gentle move before it and a stretch after it",
                          fix=_loosen("your ratings") + ", or widen --focus")
        raise Refusal(f"nothing fits in {request.minutes:g} minutes: the shortest eligible "
                      f"exercise takes {shortest / 60:.1f} minutes", fix="ask for more minutes")
    if timer.worst(chosen, fit, target) > ACCEPT * target:
        most = timer.seconds(chosen, Fit(SCALE_MAX, _slots(chosen, timer.sets), REST_MAX)) / 60
        if seconds < target:
            more = "add --equipment or widen --focus for more exercises"
            raise Refusal(f"with {counted(len(pool), 'eligible exercise')}, a session lasts at "
                          f"most {counted(round(most), 'minute')}, not {request.minutes:g}",
                          fix=more if round(most) < MIN_MINUTES else "ask for fewer minutes, or "
                          + more)
        raise Refusal(f"no eligible exercise fits in {request.minutes:g} minutes",
                      fix="ask for more minutes")
    one = timer.dominant(chosen, fit, target)
    if one is not None:
        raise Refusal(f"with {counted(len(pool), 'eligible exercise')}, a session of "
                      f"{request.minutes:g} minutes would be mostly {one}",
                      fix="ask for fewer minutes, or add --equipment or widen --focus for more "
                      "exercises")
    data, routine = timer.routine(chosen, fit)
    plan = timer.plan(chosen, fit)
    return Composition(routine, routine_text(data, request), plan, tuple(left_out),
                       tuple(skipped), len(pool))


def _choose(ordered: Sequence[tuple[int, Entry]], timer: _Timer, target: float
            ) -> tuple[list[Entry], Fit, float]:
    """Fresh exercises first. Those done two days ago join when the fresh ones cannot make a
    session of the asked length without stretching each one far (added sets, holds past
    MODEST); those done yesterday only when nothing else can make it at all."""
    chosen: list[Entry] = []
    fit, seconds = Fit(), 0.0
    for tier in range(3):
        chosen = _fill([e for t, e in ordered if t <= tier], timer, target)
        if not chosen:
            continue
        fit = _fit(chosen, timer, target)
        seconds = timer.seconds(chosen, fit)
        modest = tier > 0 or (fit.extra == 0 and fit.scale <= MODEST)
        if (modest and timer.worst(chosen, fit, target) <= ACCEPT * target
                and timer.dominant(chosen, fit, target) is None):
            break
    return chosen, fit, seconds


def _fill(candidates: Sequence[Entry], timer: _Timer, target: float) -> list[Entry]:
    """Add candidates in order while the session stays under the target; a cracking move waits
    until gentle moves can surround it."""
    chosen: list[Entry] = []
    waiting: list[Entry] = []
    for e in candidates:
        for attempt in [e, *waiting]:
            trial = arrange([*chosen, attempt])
            if trial is None:
                if attempt is e:
                    waiting.append(e)
                continue
            if _fits(trial, timer, target, first=not chosen):
                chosen = trial
                if attempt is not e:
                    waiting.remove(attempt)
                if timer.seconds(chosen) >= target * (1 - AIM):
                    return chosen
    return chosen


def _fits(trial: Sequence[Entry], timer: _Timer, target: float, *, first: bool) -> bool:
    if timer.seconds(trial) <= target * (1 + AIM):
        return True
    # The first exercise may be long: shortened holds and rests can still bring it in.
    return first and timer.seconds(trial, SHORTEST) <= target * (1 + AIM)


def _fit(chosen: Sequence[Entry], timer: _Timer, target: float) -> Fit:
    """Scale holds and reps (within bounds), add sets if that is not enough, then pick the rest
    between exercises that lands closest to the target. Length grows with each knob."""
    extra = 0
    if timer.seconds(chosen, Fit(SCALE_MAX)) < target:
        lo, hi = 0, _slots(chosen, timer.sets)
        while lo < hi:  # the fewest extra sets that reach the target at full scale
            mid = (lo + hi) // 2
            if timer.seconds(chosen, Fit(SCALE_MAX, mid)) >= target:
                hi = mid
            else:
                lo = mid + 1
        extra = lo
    lo_s, hi_s = SCALE_MIN, SCALE_MAX
    best = (abs(timer.seconds(chosen, Fit(1.0, extra)) - target), 1.0)
    for _ in range(8):
        mid_s = math.sqrt(lo_s * hi_s)
        got = timer.seconds(chosen, Fit(mid_s, extra))
        best = min(best, (abs(got - target), mid_s))
        lo_s, hi_s = (mid_s, hi_s) if got < target else (lo_s, mid_s)
    scale = best[1]
    rests = (REST_DEFAULT, REST_MIN, 10.0, 15.0, 20.0, REST_MAX)
    rest = min(rests, key=lambda r: abs(timer.seconds(chosen, Fit(scale, extra, r)) - target))
    return Fit(scale, extra, rest)


def _slots(chosen: Sequence[Entry], trimmed: Mapping[str, int]) -> int:
    return len(_set_slots(chosen, trimmed))


def _set_slots(chosen: Sequence[Entry], trimmed: Mapping[str, int]) -> list[int]:
    """Which exercise gets each extra set, in turn: a round over the session, then another
    (not one whose sets were trimmed so that it does not dominate)."""
    slots = []
    for round_no in range(1, MAX_SETS):
        slots += [i for i, e in enumerate(chosen)
                  if e.scalable and e.key not in trimmed
                  and e.exercise.sets + round_no <= MAX_SETS]
    return slots


def fewest_sets(sets: int) -> int:
    """The fewest sets an article's count may be trimmed to: half of it, rounded up."""
    return math.ceil(sets * SCALE_MIN)


# -- the routine file ------------------------------------------------------------------------

_DURATIONS = {"hold", "tempo", "wait", "seconds", "rest_between_sets", "inhale", "exhale",
              "pause", "rest"}


def session_data(request: Request, chosen: Sequence[Entry], fit: Fit,
                 trimmed: Mapping[str, int] | None = None) -> dict[str, Any]:
    """The routine a made session is, as the mapping its file holds; `trimmed`: exercises whose
    sets come down so that none dominates."""
    trimmed = trimmed or {}
    cautions: list[Any] = list(GENERAL_CAUTIONS)
    for e in chosen:
        if e.exercise.manipulation:
            for c in e.routine.cautions:
                item = c.model_dump(exclude_none=True)
                if item not in cautions:
                    cautions.append(item)
    added = _set_slots(chosen, trimmed)[:fit.extra]
    exercises = [_exercise_data(e, fit.scale, added.count(i), trimmed.get(e.key))
                 for i, e in enumerate(chosen)]
    return {
        "title": f"Session for {request.day:%A} {request.day.day} {request.day:%B}",
        "description": _describe(request),
        "source": "Made by `voicecoach make` from the bundled routines: "
                  + ", ".join(dict.fromkeys(e.routine.title for e in chosen)),
        "equipment": sorted({g for e in chosen for g in e.equipment}),
        "areas": [a.value for a in Area if any(a.value in e.areas for e in chosen)],
        "cautions": cautions,
        # Each made session is new, so its set-up instructions are said in full every time.
        "defaults": {"rest": fit.rest, "familiar_after": 1000},
        "exercises": exercises,
    }


def _describe(request: Request) -> str:
    focus = ", ".join(request.focus) or "whole back"
    gear = ", ".join(request.equipment) or "no equipment"
    gentle = "; gentle (no self-manipulation)" if request.gentle else ""
    return f"{request.minutes:g} minutes; {focus}; {gear}{gentle}."


def _exercise_data(e: Entry, scale: float, extra_sets: int, sets: int | None = None
                   ) -> dict[str, Any]:
    ex = e.exercise
    data = ex.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
    data.update(areas=sorted(e.areas, key=[a.value for a in Area].index), role=e.role.value,
                equipment=sorted(e.equipment), level=e.level.value)
    d, base = e.routine.defaults, Defaults()
    # Timings the source routine set for all its exercises travel with the exercise.
    if ex.reps and not ex.each_rep and ex.tempo is None and d.tempo != base.tempo:
        data["tempo"] = d.tempo
    if ex.sets > 1 and ex.rest_between_sets is None:
        data["rest_between_sets"] = d.rest_between_sets
    if d.step_pause != base.step_pause:
        for step in data.get("setup", []):
            step.setdefault("wait", d.step_pause)
    if e.scalable and scale != 1.0:
        if ex.hold is not None:
            data["hold"] = _scaled_hold(ex.hold, scale)
        if ex.reps is not None:
            data["reps"] = _scaled_reps(ex.reps, scale, ex.max_reps)
    if extra_sets:
        data["sets"] = ex.sets + extra_sets
        data.setdefault("rest_between_sets", d.rest_between_sets)
    elif sets is not None and sets != ex.sets and e.scalable:
        data["sets"] = max(sets, fewest_sets(ex.sets))
    return data


def _scaled_hold(hold: float, scale: float) -> float:
    # Whole seconds for short holds (a 10 s hold repeated eight times needs the finer steps).
    step = HOLD_STEP if hold >= 4 * HOLD_STEP else 1.0
    value = max(step, round(hold * scale / step) * step)
    return min(max(value, min(hold, hold * SCALE_MIN)), hold * SCALE_MAX)


def _scaled_reps(reps: int, scale: float, cap: int | None) -> int:
    value = max(
        1, math.ceil(reps * SCALE_MIN), min(round(reps * scale), math.floor(reps * SCALE_MAX))
    )
    return min(value, cap) if cap else value


def routine_text(data: dict[str, Any], request: Request) -> str:
    """The file a made session is written as: an ordinary routine with the schema modeline."""
    head = [MODELINE,
            f"# Made by `voicecoach make` for {request.day.isoformat()}: {_describe(request)}",
            "# An ordinary routine: edit it by hand, or validate it with `voicecoach validate`."]
    body = yaml.safe_dump(_friendly(data), sort_keys=False, allow_unicode=True, width=100)
    return "\n".join(head) + "\n" + body


def _friendly(value: Any, key: str | None = None) -> Any:
    """Durations as `20s`, steps with only words as plain text."""
    if isinstance(value, dict):
        if set(value) == {"say"} and key in ("setup", "then", "cautions"):
            return value["say"]
        return {k: _friendly(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_friendly(v, key) for v in value]
    if key in _DURATIONS and isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:g}s"
    return value
