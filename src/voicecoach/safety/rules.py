"""The articles' warnings as behaviour: screening answers, frequency limits, and familiarity."""

from __future__ import annotations

import datetime as _dt
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from voicecoach.errors import Fault, UserError
from voicecoach.routine.limits import COUNT as COUNT
from voicecoach.routine.limits import WAIT as WAIT
from voicecoach.routine.limits import LimitState as LimitState
from voicecoach.routine.limits import done_times, midnight
from voicecoach.routine.limits import limit_state as read_limits
from voicecoach.routine.model import Exercise, Routine
from voicecoach.routine.wording import counted, wording
from voicecoach.safety.history import History, data_dir
from voicecoach.storage import atomic

SAFETY_FILE = "safety.json"


@dataclass(frozen=True)
class Question:
    key: str
    text: str


#: The articles' contraindications, one short yes/no question each.
QUESTIONS = (
    Question("chronic", "Do you have chronic back or neck pain (pain lasting months)?"),
    Question("diagnosis", "Has a doctor diagnosed a problem with your spine, discs, bones or "
                          "joints (for example a disc problem or osteoporosis)?"),
    Question("surgery", "Have you had surgery recently?"),
    Question("pregnant", "Are you pregnant?"),
    Question("condition", "Do you have another medical condition that a doctor or "
                          "physiotherapist should clear before you crack your own back?"),
)


@dataclass(frozen=True)
class Screening:
    """Stored answers (None: never answered)."""

    answers: dict[str, bool] | None = None
    answered_at: str | None = None

    @property
    def answered(self) -> bool:
        return self.answers is not None

    @property
    def rules_out_manipulation(self) -> bool:
        return bool(self.answers) and any(self.answers.values())  # type: ignore[union-attr]

    def as_json(self) -> dict[str, object]:
        return {
            "answered": self.answered,
            "answered_at": self.answered_at,
            "answers": self.answers,
            "rules_out_manipulation": self.rules_out_manipulation,
            "questions": {q.key: q.text for q in QUESTIONS},
        }


def screening_path(folder: Path | None = None) -> Path:
    return (folder or data_dir()) / SAFETY_FILE


def load_screening(folder: Path | None = None) -> Screening:
    path = screening_path(folder)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        answers = {q.key: bool(data["answers"][q.key]) for q in QUESTIONS}
        return Screening(answers, data.get("answered_at"))
    except FileNotFoundError:
        return Screening()
    except (OSError, ValueError, KeyError, TypeError):
        # A damaged answers file counts as unanswered: the questions are asked again.
        return Screening()


def save_screening(answers: dict[str, bool], folder: Path | None = None) -> Screening:
    missing = [q.key for q in QUESTIONS if q.key not in answers]
    if missing:
        raise UserError(f"missing answers for: {', '.join(missing)}",
                        fix="answer every question, e.g. --answer pregnant=no")
    stamp = _dt.datetime.now().astimezone().isoformat(timespec="seconds")
    given = {q.key: bool(answers[q.key]) for q in QUESTIONS}
    payload = {"answers": given, "answered_at": stamp}
    try:
        atomic.write_text(screening_path(folder), json.dumps(payload, indent=2) + "\n")
    except UserError as exc:
        raise Fault(exc.message) from None
    return Screening(given, stamp)


def parse_answers(pairs: Iterable[str]) -> dict[str, bool]:
    """`key=yes|no` pairs, as given on the command line."""
    keys = {q.key for q in QUESTIONS}
    out: dict[str, bool] = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        key, value = key.strip().lower(), value.strip().lower()
        if key not in keys:
            raise UserError(f"unknown question {key!r}",
                            fix=f"questions: {', '.join(sorted(keys))}")
        if value not in {"yes", "no", "y", "n", "true", "false"}:
            raise UserError(f"answer {pair!r} with yes or no", fix=f"e.g. {key}=no")
        answer = value in {"yes", "y", "true"}
        if out.get(key, answer) != answer:
            raise UserError(f"{key} is answered both yes and no",
                            fix=f"give one answer for {key}")
        out[key] = answer
    return out


#: Why an exercise is left out, as data: front ends decide what to say by code, never by wording.
SCREENING = "screening"
#: The codes of frequency limits (--force overrides them), as against the screening's.
LIMIT_CODES = frozenset({WAIT, COUNT})


@dataclass(frozen=True)
class Exclusion:
    """One exercise left out: which, why (a code above), and the reason as the voice says it."""

    exercise: str
    code: str
    reason: str


@dataclass(frozen=True)
class Verdict:
    """What safety decides for one session: exercises left out (and why) and the detail level."""

    excluded: tuple[Exclusion, ...]
    detail: str
    sessions_before: int
    forced: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def left_out(self) -> tuple[tuple[str, str], ...]:
        """(exercise, spoken reason) pairs, as the plan announces them."""
        return tuple((e.exercise, e.reason) for e in self.excluded)


def assess(
    routine: Routine,
    *,
    history: History,
    screening: Screening,
    now: float | None = None,
    apply_limits: bool = True,
    force: bool = False,
    i_understand: bool = False,
    detail: str | None = None,
    chosen: Iterable[Exercise] | None = None,
) -> Verdict:
    """Decide what a session of `routine` may contain now. Raises UserError when nothing may
    play."""
    now = time.time() if now is None else now
    words = wording(routine.language)
    exercises = list(chosen) if chosen is not None else list(routine.exercises)
    left: list[Exclusion] = []
    forced: list[str] = []
    notes: list[str] = []
    if screening.rules_out_manipulation and not i_understand:
        cracking = [ex for ex in exercises if ex.manipulation]
        if cracking and len(cracking) == len(exercises):
            raise UserError(
                f"{routine.id} is all self-manipulation, which your safety answers rule out",
                fix=f"try {', '.join(gentle_routines()) or 'a gentle routine'}; review answers "
                "with `voicecoach safety`, or add --i-understand",
            )
        left += [Exclusion(ex.name, SCREENING, words.left_out_screening) for ex in cracking]
        if cracking:
            left_n = counted(len(cracking), "self-manipulation exercise")
            notes.append(f"left out {left_n} because of your safety answers "
                         "(`voicecoach safety`; --i-understand to include them)")
    for ex in exercises:
        if not ex.limits or any(e.exercise == ex.name for e in left):
            continue
        state = limit_state(routine, ex, history, now) if apply_limits else None
        if state and state.reason and force:
            forced.append(ex.name)
        elif state and state.reason:
            left.append(Exclusion(ex.name, state.code or WAIT, state.reason))
    sessions = history.live_sessions(routine.id)
    level = detail or ("short" if sessions >= routine.defaults.familiar_after else "full")
    return Verdict(tuple(left), level, sessions, tuple(forced), tuple(notes))


def limit_state(routine: Routine, ex: Exercise, history: History, now: float) -> LimitState:
    """One reading of history for both questions: may it be done now, and if not, when. The
    exercise's times come from every routine it was done in (voicecoach.routine.limits)."""
    if ex.limits is None:
        return LimitState(None, None)
    since = min(now - (ex.limits.wait or 0), _midnight(now))
    times = done_times(history.done_since(since), ex.name)
    return read_limits(ex, times, now, wording(routine.language))


def limit_reason(routine: Routine, ex: Exercise, history: History, now: float) -> str | None:
    """Why `ex` may not be done now, or None."""
    return limit_state(routine, ex, history, now).reason


def next_allowed(routine: Routine, ex: Exercise, history: History, now: float) -> float | None:
    """When `ex` may next be done (None: now)."""
    return limit_state(routine, ex, history, now).next_allowed


def limits_overview(history: History, now: float | None = None) -> list[dict[str, object]]:
    """Every limited exercise of the bundled routines, its rule, and when it may next be done."""
    from voicecoach.routine.library import bundled
    from voicecoach.routine.loader import load_routine

    now = time.time() if now is None else now
    out: list[dict[str, object]] = []
    for rid, path in bundled().items():
        routine = load_routine(path)
        for ex in routine.exercises:
            if ex.limits and (ex.limits.wait or ex.limits.max_per_day):
                out.append({
                    "routine": rid,
                    "exercise": ex.name,
                    "wait": ex.limits.wait,
                    "max_per_day": ex.limits.max_per_day,
                    "next_allowed": next_allowed(routine, ex, history, now),
                })
    return out


def _midnight(now: float) -> float:
    return midnight(_dt.datetime.fromtimestamp(now).date())


def gentle_routines() -> list[str]:
    """Bundled routines without any self-manipulation exercise."""
    from voicecoach.routine.library import bundled
    from voicecoach.routine.loader import load_routine

    return [rid for rid, path in bundled().items() if not load_routine(path).manipulation]
