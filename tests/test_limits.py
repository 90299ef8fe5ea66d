"""Limits are read one way, by exercise: a move done in one routine is limited in every routine
that has it, whether safety decides a session (assess, coach.decide) or `make` composes one."""

from __future__ import annotations

import datetime as _dt
import time
from pathlib import Path

import pytest

from voicecoach import coach
from voicecoach.coach import today
from voicecoach.plan import compose
from voicecoach.plan.timeline import estimate_speech
from voicecoach.routine.library import bundled
from voicecoach.routine.limits import COUNT, WAIT
from voicecoach.routine.loader import load_routine
from voicecoach.routine.model import Routine
from voicecoach.safety.history import History, SessionRecord
from voicecoach.safety.rules import QUESTIONS, Screening, assess

#: 18:00 local time today: far enough from midnight for an hour's wait to stay on the same day.
#: DAY is EVENING's day, not the clock's: a run that crosses midnight after collection would
#: otherwise plan tomorrow's session at today's evening, with every wait and count over.
DAY = _dt.date.today()
EVENING = _dt.datetime.combine(DAY, _dt.time(18)).timestamp()
ALL_NO = Screening({q.key: False for q in QUESTIONS})


def routine(folder: Path, rid: str, twist: str) -> Routine:
    path = folder / f"{rid}.yaml"
    path.write_text(f"""\
title: {rid}
exercises:
  - name: Knee hug
    hold: 10s
  - name: {twist}
    hold: 10s
    limits: {{wait: 1h, max_per_day: 2}}
""", encoding="utf-8")
    return load_routine(path)


def done(history: History, made: Routine, name: str, at: float) -> None:
    history.record(SessionRecord(made.id, made.title, "live", at - 60, at, True, 60.0, (name,)))


@pytest.mark.parametrize(("times", "code"), [((EVENING - 1800,), WAIT),
                                             ((EVENING - 5 * 3600, EVENING - 3 * 3600), COUNT)])
def test_a_move_done_in_one_routine_is_limited_in_another(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, times: tuple[float, ...], code: str
) -> None:
    a = routine(tmp_path, "routine-a", "Seated twist")
    b = routine(tmp_path, "routine-b", "Seated  Twist")  # the same move, spelled another way
    history = History(tmp_path / "data")
    for at in times:
        done(history, a, "Seated twist", at)
    # Safety deciding a session of B ...
    verdict = assess(b, history=history, screening=ALL_NO, now=EVENING)
    [left] = verdict.excluded
    assert (left.exercise, left.code) == ("Seated  Twist", code)
    # ... the application layer (play, serve) deciding one now, in the user's history ...
    monkeypatch.setenv("VOICECOACH_DATA_DIR", str(tmp_path / "user"))
    done(History(), a, "Seated twist", time.time() - 1800)
    decided = coach.decide(b, coach.Settings(), coach.Purpose.PLAY).verdict
    assert [(e.exercise, e.code) for e in decided.excluded] == [("Seated  Twist", WAIT)]
    # ... and `make` composing from both routines: the same reason, by the same reading.
    facts = compose.Facts(now=EVENING, done=tuple(history.done_since(EVENING - 86400)))
    request = compose.Request(minutes=5, day=DAY)
    _, left_out, _ = compose.eligible(compose.entries([b]), request, facts)
    assert left_out == [("Seated  Twist", left.reason)]
    # Tomorrow (planned from its start) the daily count is new and the hour has passed.
    tomorrow = DAY + _dt.timedelta(days=1)
    facts = today.facts(tomorrow, history, ALL_NO, now=EVENING)
    _, left_out, _ = compose.eligible(compose.entries([b]), compose.Request(5, tomorrow), facts)
    assert not left_out


def test_make_leaves_out_a_bundled_move_done_in_another_session(tmp_path: Path) -> None:
    """The bundled limited moves, done in their routine: `make` does not offer them today, and a
    made session that has them (another routine id) is limited too."""
    source = load_routine(bundled()["crack-your-back-alone"])
    limited = [ex for ex in source.exercises if ex.limits and ex.limits.wait]
    assert limited
    history = History(tmp_path / "data")
    history.record(SessionRecord(source.id, source.title, "live", EVENING - 1860, EVENING - 1800,
                                 True, 60.0, tuple(ex.name for ex in limited)))
    request = compose.Request(minutes=10, day=DAY, i_understand=True,
                              equipment=tuple(sorted({e for ex in source.exercises
                                                      for e in ex.equipment or ()})))
    made = today.make(request, estimate_speech(), history=history, screening=ALL_NO, now=EVENING)
    names = {ex.name for ex in made.routine.exercises}
    assert not names & {ex.name for ex in limited}
    assert {ex.name for ex in limited} <= dict(made.left_out).keys()
    other = Routine.model_validate({"title": "Made", "exercises": [
        ex.model_dump(exclude_none=True) for ex in limited]})
    verdict = assess(other, history=history, screening=ALL_NO, now=EVENING, i_understand=True)
    assert {e.exercise for e in verdict.excluded} == {ex.name for ex in limited}
    assert {e.code for e in verdict.excluded} == {WAIT}
