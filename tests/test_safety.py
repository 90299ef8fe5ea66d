"""Safety as behaviour: screening, frequency limits from history, familiarity, and the history
store."""

from __future__ import annotations

import datetime as _dt
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from voicecoach.errors import Fault, UserError
from voicecoach.plan.timeline import Kind, PlanOptions, build_plan
from voicecoach.routine.library import bundled
from voicecoach.routine.loader import load_routine
from voicecoach.routine.model import Routine
from voicecoach.safety.history import History, SessionRecord, streaks
from voicecoach.safety.rules import QUESTIONS, Screening, assess, next_allowed, save_screening

#: 18:00 local time today: far enough from midnight for an hour's wait to stay on the same day.
EVENING = _dt.datetime.combine(_dt.date.today(), _dt.time(18)).timestamp()
ALL_NO = Screening({q.key: False for q in QUESTIONS})


def limited_exercises() -> list[tuple[Routine, str]]:
    out = []
    for path in bundled().values():
        routine = load_routine(path)
        out += [(routine, ex.name) for ex in routine.exercises if ex.limits and
                (ex.limits.wait or ex.limits.max_per_day)]
    return out


def done(
    history: History, routine: Routine, names: tuple[str, ...], at: float, forced: bool = False
) -> None:
    history.record(SessionRecord(routine.id, routine.title, "live", at - 60, at, True, 60.0,
                                 names, forced=forced))


def test_the_bundled_library_has_limits_to_enforce() -> None:
    assert len(limited_exercises()) >= 2


@pytest.mark.parametrize("routine,name", limited_exercises(), ids=lambda v: getattr(v, "id", v))
def test_every_bundled_limit_is_enforced_and_can_be_forced(
    tmp_path: Path, routine: Routine, name: str
) -> None:
    history = History(tmp_path)
    ex = next(e for e in routine.exercises if e.name == name)
    assert ex.limits is not None
    fresh = assess(routine, history=history, screening=ALL_NO, now=EVENING, i_understand=True)
    assert name not in dict(fresh.left_out)
    if ex.limits.wait:
        done(history, routine, (name,), EVENING - ex.limits.wait / 2)
        verdict = assess(routine, history=history, screening=ALL_NO, now=EVENING, i_understand=True)
        reason = dict(verdict.left_out)[name]
        assert "between sessions" in reason
        later = EVENING + ex.limits.wait / 2 + 1
        assert name not in dict(assess(routine, history=history, screening=ALL_NO, now=later,
                                       i_understand=True).left_out)
        assert next_allowed(routine, ex, history, EVENING) == pytest.approx(
            EVENING + ex.limits.wait / 2)
    if ex.limits.max_per_day:
        history = History(tmp_path / "count")
        gap = (ex.limits.wait or 60) + 60
        for i in range(ex.limits.max_per_day):
            done(history, routine, (name,), EVENING - 2 * gap - i * gap)
        verdict = assess(routine, history=history, screening=ALL_NO, now=EVENING, i_understand=True)
        assert "today" in dict(verdict.left_out)[name]
    forced = assess(routine, history=history, screening=ALL_NO, now=EVENING, i_understand=True,
                    force=True)
    assert name not in dict(forced.left_out) and name in forced.forced
    # The plan says what was left out and why, out loud.
    options = PlanOptions(left_out=verdict.left_out if ex.limits.max_per_day else
                          assess(routine, history=history, screening=ALL_NO, now=EVENING,
                                 i_understand=True).left_out)
    if any(n == name for n, _ in options.left_out) and len(routine.exercises) > 1:
        plan = build_plan(routine, options)
        assert name not in plan.exercises
        spoken = [e.text for e in plan.events if e.kind == Kind.CAUTION]
        assert any(t.startswith(f"{name} is left out today") for t in spoken)


def test_screening_yes_leaves_out_manipulation_and_i_understand_brings_it_back(
    tmp_path: Path,
) -> None:
    routine = load_routine(bundled()["crack-your-back-alone"])
    cracking = {ex.name for ex in routine.exercises if ex.manipulation}
    assert cracking
    yes = Screening({**ALL_NO.answers, "pregnant": True})  # type: ignore[dict-item]
    verdict = assess(routine, history=History(tmp_path), screening=yes)
    assert set(dict(verdict.left_out)) == cracking
    plan = build_plan(routine, PlanOptions(left_out=verdict.left_out))
    assert not cracking & set(plan.exercises)
    assert assess(routine, history=History(tmp_path), screening=yes,
                  i_understand=True).left_out == ()
    assert assess(routine, history=History(tmp_path), screening=ALL_NO).left_out == ()
    assert assess(routine, history=History(tmp_path), screening=Screening()).left_out == ()


def test_an_all_cracking_routine_is_refused_and_gentle_ones_offered(tmp_path: Path) -> None:
    routine = load_routine(bundled()["back-crack-worksheet"])
    yes = Screening({**ALL_NO.answers, "surgery": True})  # type: ignore[dict-item]
    with pytest.raises(UserError) as refused:
        assess(routine, history=History(tmp_path), screening=yes)
    assert "five-minute-back" in refused.value.line()


def test_screening_through_the_cli(tmp_path: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    env = {"VOICECOACH_DATA_DIR": str(tmp_path / "data")}
    answers = [f"--answer={q.key}=no" for q in QUESTIONS]
    assert run_cli("safety", *answers, env=env).returncode == 0
    full = json.loads(
        run_cli("show", "crack-your-back-alone", "--json", "--estimate", env=env).stdout)
    assert full["left_out"] == []
    assert run_cli("safety", "--answer", "chronic=yes", env=env).returncode == 0
    stored = json.loads(run_cli("safety", "--json", env=env).stdout)
    assert stored["rules_out_manipulation"] is True
    cut = run_cli("show", "crack-your-back-alone", "--json", "--estimate", env=env)
    assert cut.returncode == 0
    left = json.loads(cut.stdout)["left_out"]
    assert left and all("safety answers" in item["reason"] for item in left)
    assert "--i-understand" in cut.stderr
    refused = run_cli("export", "back-crack-worksheet", env=env)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert not list(tmp_path.glob("*.mp3"))
    allowed = run_cli("show", "crack-your-back-alone", "--json", "--estimate", "--i-understand",
                      env=env)
    assert json.loads(allowed.stdout)["left_out"] == []


def test_cautions_shorten_with_familiarity_but_never_vanish(tmp_path: Path) -> None:
    routine = Routine.model_validate({
        "title": "R", "defaults": {"familiar_after": 2},
        "cautions": [{"say": "See a doctor first if you are pregnant or had surgery.",
                      "short": "Doctor first if unsure."},
                     "Stop at once if it hurts."],
        "exercises": [{"name": "Crack", "manipulation": True, "summary": "Sit, lean back.",
                       "setup": ["Sit on a firm chair.", "Lean back over it."], "hold": "5s"}],
    })
    history = History(tmp_path)
    details = []
    for _ in range(3):
        verdict = assess(routine, history=history, screening=ALL_NO)
        details.append(verdict.detail)
        done(history, routine, ("Crack",), time.time())
    assert details == ["full", "full", "short"]
    full = build_plan(routine, PlanOptions(detail="full"))
    short = build_plan(routine, PlanOptions(detail="short"))
    full_cautions = [e.text for e in full.events if e.kind == Kind.CAUTION]
    short_cautions = [e.text for e in short.events if e.kind == Kind.CAUTION]
    assert "Stop at once if it hurts." in full_cautions
    assert "Doctor first if unsure." in short_cautions
    assert sum(map(len, short_cautions)) < sum(map(len, full_cautions))
    # Every self-manipulation exercise reminds the listener to stop if it hurts, never to force.
    for plan in (full, short):
        said = " ".join(e.text for e in plan.events if e.exercise == "Crack").lower()
        assert "stop if it hurts" in said and "never force" in said
    assert "Sit on a firm chair." in [e.text for e in full.events]
    assert "Sit, lean back." in [e.text for e in short.events]
    bare = Routine.model_validate({"title": "B", "exercises": [{"name": "A", "hold": "5s"}]})
    generic = [e.text for e in build_plan(bare, PlanOptions(detail="short")).events
               if e.kind == Kind.CAUTION]
    assert any("stop at once if anything hurts" in t.lower() for t in generic)


def test_streaks() -> None:
    d = _dt.date(2026, 3, 10)
    days = [d - _dt.timedelta(days=n) for n in (9, 8, 7, 3, 2, 1)]
    assert streaks(sorted(days), today=d) == (3, 3)
    assert streaks(sorted(days), today=d + _dt.timedelta(days=3)) == (0, 3)
    assert streaks([], today=d) == (0, 0)


_WRITER = """
import sys, time
from pathlib import Path
from voicecoach.safety.history import History, SessionRecord
h = History(Path(sys.argv[1]))
for i in range(int(sys.argv[3])):
    sid = h.record(SessionRecord("r", "R", "live", time.time(), time.time(), True, 1.0,
                                 ("A", "B"), stopped_at=sys.argv[2] + str(i)))
    print(sid, flush=True)
"""


def test_two_processes_recording_at_once_lose_nothing(tmp_path: Path) -> None:
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp_path), tag, "150"],
                              stdout=subprocess.PIPE, text=True) for tag in ("a", "b")]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs)
    ids = [int(x) for out in outputs for x in out.split()]
    assert len(ids) == len(set(ids)) == 300
    history = History(tmp_path)
    sessions = history.sessions()
    assert len(sessions) == 300
    assert {s.stopped_at for s in sessions} == {f"{t}{i}" for t in "ab" for i in range(150)}
    conn = sqlite3.connect(tmp_path / "history.sqlite3")
    assert conn.execute("SELECT COUNT(*) FROM exercises_done").fetchone()[0] == 600


@pytest.mark.slow  # SIGKILLs into real writers: a fault test
def test_a_killed_writer_leaves_every_finished_session(tmp_path: Path) -> None:
    for delay in (0.3, 0.5, 0.7):
        proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp_path), "k", "100000"],
                                stdout=subprocess.PIPE, text=True)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        printed = {int(x) for x in proc.communicate()[0].split()}
        history = History(tmp_path)
        stored = {s.id for s in history.sessions(limit=10**9)}
        assert printed <= stored, "a committed session was lost"
        conn = sqlite3.connect(tmp_path / "history.sqlite3")
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        conn.close()
        history.close()


def test_a_damaged_history_is_moved_aside_with_one_clear_error(tmp_path: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "data"
    data.mkdir()
    (data / "history.sqlite3").write_bytes(b"this is not a database" * 100)
    done_ = run_cli("history", env={"VOICECOACH_DATA_DIR": str(data)})
    assert done_.returncode == 1
    assert done_.stderr.count("\n") == 1 and "moved to" in done_.stderr
    assert "Traceback" not in done_.stderr
    aside = list(data.glob("history.sqlite3.damaged-*"))
    assert len(aside) == 1 and aside[0].read_bytes().startswith(b"this is not a database")
    again = run_cli("history", "--json", env={"VOICECOACH_DATA_DIR": str(data)})
    assert again.returncode == 0 and json.loads(again.stdout)["sessions"] == []


def test_damaged_history_raises_fault_in_the_core(tmp_path: Path) -> None:
    (tmp_path / "history.sqlite3").write_bytes(os.urandom(4096))
    with pytest.raises(Fault, match="moved to"):
        History(tmp_path).sessions()


def test_exports_are_recorded_and_history_shows_limits(tmp_path: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    env = {"VOICECOACH_DATA_DIR": str(tmp_path / "data")}
    (tmp_path / "r.yaml").write_text("title: R\nexercises: [{name: A, hold: 3s}]\n")
    assert run_cli("export", "r.yaml", "-o", "r.mp3", env=env).returncode == 0
    report = json.loads(run_cli("history", "--json", env=env).stdout)
    assert [(s["routine"], s["kind"]) for s in report["sessions"]] == [("r", "export")]
    names = {(item["routine"], item["exercise"]) for item in report["limits"]}
    assert {(r.id, n) for r, n in limited_exercises()} <= names


def test_save_screening_needs_every_answer(tmp_path: Path) -> None:
    with pytest.raises(UserError):
        save_screening({"chronic": False}, tmp_path)


def test_a_locked_or_unwritable_history_is_a_fault_and_is_not_moved(tmp_path: Path) -> None:
    history = History(tmp_path)
    history.record(SessionRecord("r", "R", "live", 1.0, 2.0, True, 1.0))
    history.close()
    blocker = sqlite3.connect(tmp_path / "history.sqlite3", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        waiting = History(tmp_path, timeout=0.2)
        with pytest.raises(Fault, match="cannot use the history file"):
            waiting.record(SessionRecord("r", "R", "live", 3.0, 4.0, True, 1.0))
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert not list(tmp_path.glob("*.damaged-*"))
    assert len(History(tmp_path).sessions()) == 1


def test_show_for_play_applies_limits_and_show_for_export_matches_the_track(  # type: ignore[no-untyped-def]
    tmp_path: Path, run_cli
) -> None:
    data = tmp_path / "data"
    env = {"VOICECOACH_DATA_DIR": str(data)}
    (tmp_path / "r.yaml").write_text(
        "title: R\nexercises:\n  - {name: Roll, hold: 3s, limits: {wait: 1h}}\n"
        "  - {name: Rest pose, hold: 3s}\n", encoding="utf-8")
    History(data).record(SessionRecord("r", "R", "live", time.time() - 70, time.time() - 60,
                                       True, 10.0, ("Roll",)))
    live = json.loads(run_cli("show", "r.yaml", "--json", "--for", "play", env=env).stdout)
    assert [item["exercise"] for item in live["left_out"]] == ["Roll"]
    assert live["events"][0]["start"] == 0.0
    shown = json.loads(run_cli("show", "r.yaml", "--json", env=env).stdout)
    # Export's 1.5 s lead-in, on the MP3 frame grid (576 samples at 22.05 kHz): 1.515 s.
    assert shown["left_out"] == [] and shown["events"][0]["start"] == 1.515
    track = json.loads(run_cli("export", "r.yaml", "-o", "r.mp3", "--json", env=env).stdout)[0]
    assert track["duration"] == shown["duration"]
