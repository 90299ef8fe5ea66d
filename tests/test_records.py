"""Records tell the truth: a live session counts (familiarity, streaks) only if an exercise in it
was done, whatever way it ended; --from and --only still open with the cautions; one screening
question answered two ways is a mistake."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import pytest

from helpers import run_cli
from voicecoach.live.player import NoSoundDevice, Player, open_device, sections
from voicecoach.plan.timeline import Kind, PlanOptions, build_plan, from_onwards, select_exercises
from voicecoach.routine.library import bundled
from voicecoach.routine.loader import load_routine
from voicecoach.safety.history import History, SessionRecord
from voicecoach.safety.rules import QUESTIONS, Screening, assess

ROUTINE = """\
title: Tiny records
cautions: ["Stop if it hurts."]
defaults: {rest: 1s, countdown: 0, step_pause: 0.5s, familiar_after: 1}
exercises:
  - name: Arms up
    hold: 1s
  - name: Knees in
    hold: 1s
"""


@pytest.fixture(scope="module")
def routine_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("records") / "tiny-records.yaml"
    path.write_text(ROUTINE, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def prepared(routine_path: Path):  # type: ignore[no-untyped-def]
    from voicecoach.audio.prepare import prepare
    from voicecoach.speech import VoiceSettings, get_engine
    from voicecoach.storage.cache import ClipCache

    made = prepare(load_routine(routine_path), PlanOptions(lead_in=0.0), engine=get_engine(None),
                   settings=VoiceSettings(), cache=ClipCache())
    yield made
    made.close()


def _wait(check, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.01)


def _quit_in_introduction(player: Player) -> None:
    player.stop()


def _skip_every_exercise(player: Player) -> None:
    """`n` through every exercise, each as soon as it begins, then the closing words to the end."""
    for _ in range(len(sections(player.plan)) + 1):
        seeks = sum(1 for r in list(player.log) if getattr(r, "kind", "") == "seek")
        player.next_exercise()
        _wait(lambda s=seeks: sum(1 for r in list(player.log)
                                  if getattr(r, "kind", "") == "seek") > s or player.wait(0))


def _quit_after_the_first_exercise(player: Player) -> None:
    second = sections(player.plan)[2].start / player.rate
    _wait(lambda: player.state().position >= second + 0.1)
    player.stop()


def _play_to_the_end(player: Player) -> None:
    pass


ENDINGS = {
    "quit in the introduction": (_quit_in_introduction, False),
    "every exercise skipped": (_skip_every_exercise, False),
    "quit after the first exercise": (_quit_after_the_first_exercise, True),
    "played to the end": (_play_to_the_end, True),
}


#: Real-time playback of a whole exercise or more.
_SLOW = {"quit after the first exercise", "played to the end"}


@pytest.mark.parametrize("ending", [
    pytest.param(e, marks=[pytest.mark.slow, pytest.mark.long] if e == "played to the end"
                 else pytest.mark.slow) if e in _SLOW else e
    for e in sorted(ENDINGS)])
def test_a_session_counts_only_if_an_exercise_was_done(
    ending: str, prepared, routine_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch  # type: ignore[no-untyped-def]
) -> None:
    from voicecoach import coach

    act, counts = ENDINGS[ending]
    monkeypatch.setenv("VOICECOACH_DATA_DIR", str(tmp_path))
    routine = load_routine(routine_path)
    player = Player(prepared, audio="none")
    player.start()
    try:
        act(player)
        result = player.wait(60)
    finally:
        player.close()
    assert result is not None
    decision = coach.decide(routine, coach.Settings(), coach.Purpose.PLAY)
    coach.record(coach.Session(decision, prepared, time.time()), result)
    history = History(tmp_path)
    (session,) = history.sessions()
    assert session.counts is counts, (ending, result)
    assert history.live_sessions(routine.id) == int(counts)
    assert bool(history.active_days()) is (counts and result.completed)
    # familiar_after is 1: only a session that did something makes the next one short.
    verdict = assess(routine, history=history,
                     screening=Screening({q.key: False for q in QUESTIONS}))
    assert verdict.detail == ("short" if counts else "full")


def test_failed_starts_are_recorded_but_count_for_nothing(
    routine_path: Path, tmp_path: Path
) -> None:
    try:
        open_device("alsa", 22050).close()
    except NoSoundDevice:
        pass
    else:
        pytest.skip("this machine has an ALSA sound device")
    env = {"VOICECOACH_DATA_DIR": str(tmp_path)}
    for _ in range(3):
        done = run_cli("play", str(routine_path), "--audio", "alsa", env=env)
        assert done.returncode == 1, done.stderr
    history = History(tmp_path)
    assert len(history.sessions()) == 3 and not any(s.counts for s in history.sessions())
    assert history.live_sessions("tiny-records") == 0 and history.active_days() == []
    shown = run_cli("history", env=env)
    assert shown.stdout.count("no exercise done (not counted)") == 3
    routine = load_routine(routine_path)
    verdict = assess(routine, history=history,
                     screening=Screening({q.key: False for q in QUESTIONS}))
    assert verdict.detail == "full"  # the next real session is still a first one


@pytest.mark.parametrize("rid", sorted(bundled()))
def test_from_and_only_still_open_with_the_cautions(rid: str) -> None:
    routine = load_routine(bundled()[rid])
    for detail in ("full", "short"):
        whole = build_plan(routine, PlanOptions(detail=detail))
        said = [e.text for e in whole.events if e.kind == Kind.CAUTION and e.exercise is None]
        assert said
        for n in range(1, len(routine.exercises) + 1):
            for only in (from_onwards(routine, str(n)), (str(n),)):
                plan = build_plan(routine, PlanOptions(detail=detail, only=only))
                first = next(i for i, e in enumerate(plan.events) if e.exercise)
                opening = [e.text for e in plan.events[:first] if e.kind == Kind.CAUTION]
                assert opening == said, (rid, n, only)
                assert plan.events[first].exercise == select_exercises(routine, only)[0].name


def test_from_outside_the_chosen_exercises_is_a_mistake() -> None:
    from voicecoach.errors import UserError

    routine = load_routine(bundled()["five-minute-back"])
    with pytest.raises(UserError, match="not in this session"):
        from_onwards(routine, "1", only=("2", "3"))
    assert from_onwards(routine, "3", skip=("4",)) == ("3", "5")


@pytest.mark.parametrize("key", [q.key for q in QUESTIONS])
def test_contradictory_answers_to_one_question_are_a_mistake(key: str) -> None:
    from voicecoach.errors import UserError
    from voicecoach.safety.rules import parse_answers

    for first, second in itertools.permutations(["yes", "no", "y", "n", "true", "false"], 2):
        pair = [f"{key}={first}", f"{key.upper()}= {second}"]
        if (first in ("yes", "y", "true")) == (second in ("yes", "y", "true")):
            assert parse_answers(pair) == {key: first in ("yes", "y", "true")}
            continue
        with pytest.raises(UserError, match=f"{key} is answered both yes and no"):
            parse_answers(pair)


def test_contradictory_answers_on_the_command_line_change_nothing(tmp_path: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    env = {"VOICECOACH_DATA_DIR": str(tmp_path)}
    others = [f"--answer={q.key}=no" for q in QUESTIONS if q.key != "pregnant"]
    done = run_cli("safety", *others, "--answer", "pregnant=yes", "--answer", "pregnant=no",
                   env=env)
    assert (done.returncode, done.stderr.splitlines()) == (2, [
        "error: pregnant is answered both yes and no (give one answer for pregnant)"])
    assert not (tmp_path / "safety.json").exists()
    done = run_cli("safety", *others, "--answer", "pregnant=no", "--answer", "pregnant=n", env=env)
    assert done.returncode == 0, done.stderr


LIMITED = """\
title: Limited records
defaults: {rest: 1s, countdown: 0, step_pause: 0.3s}
exercises:
  - name: Arms up
    hold: 1s
  - name: Side crack
    setup: ["Turn to the side.", "Let it go."]
    hold: 3s
    limits: {wait: 1h, max_per_day: 2}
  - name: Knees in
    hold: 1s
"""


def _stop_inside(player: Player) -> None:
    begin = sections(player.plan)[2].start / player.rate
    _wait(lambda: player.state().position >= begin + 0.3)
    player.stop()


def _skip_out_of(player: Player) -> None:
    begin = sections(player.plan)[2].start / player.rate
    _wait(lambda: player.state().position >= begin + 0.3)
    player.next_exercise()
    _wait(lambda: player.state().exercise == "Knees in")
    player.stop()


def _skip_into_then_stop(player: Player) -> None:
    """`n` from the first exercise straight into the limited one, stopped as soon as any of it
    was heard (a stop before its first frame plays leaves it unbegun)."""
    _wait(lambda: player.state().exercise == "Arms up")
    player.next_exercise()
    begin = sections(player.plan)[2].start / player.rate
    _wait(lambda: player.state().position > begin + 0.05)
    player.stop()


BEGUN = {"stopped inside it": _stop_inside, "skipped out of it": _skip_out_of,
         "skipped into it and stopped": _skip_into_then_stop}


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from voicecoach.audio.prepare import prepare
    from voicecoach.speech import VoiceSettings, get_engine
    from voicecoach.storage.cache import ClipCache

    path = tmp_path_factory.mktemp("limited") / "limited-records.yaml"
    path.write_text(LIMITED, encoding="utf-8")
    made = prepare(load_routine(path), PlanOptions(lead_in=0.0), engine=get_engine(None),
                   settings=VoiceSettings(), cache=ClipCache())
    yield path, made
    made.close()


def _limits_everywhere(history: History, routine, now: float) -> dict[str, str | None]:  # type: ignore[no-untyped-def]
    """What each reader of history says of the limited move now: `play`/`serve` (assess) and
    `make`/`today` (compose)."""
    import datetime as dt

    from voicecoach.coach import today
    from voicecoach.plan import compose
    from voicecoach.routine.wording import wording

    screening = Screening({q.key: False for q in QUESTIONS})
    verdict = assess(routine, history=history, screening=screening, now=now)
    ex = next(e for e in routine.exercises if e.limits)
    day = dt.date.fromtimestamp(now)
    facts = today.facts(day, history, screening, now)
    return {"assess": next((e.code for e in verdict.excluded), None),
            "compose": compose._limit_reason(ex, facts, day, wording(routine.language))}


@pytest.mark.parametrize("way", [
    # Each plays in real time: the slow lane's.
    pytest.param(way, marks=pytest.mark.slow) for way in sorted(BEGUN)])
def test_a_limited_move_begun_counts_for_its_limits_and_nothing_else(
    way: str, limited, tmp_path: Path, monkeypatch: pytest.MonkeyPatch  # type: ignore[no-untyped-def]
) -> None:
    """Every way a live session can begin a limited move without playing it through: it counts
    towards its wait and daily count for every reader of history, and towards nothing else."""
    from voicecoach import coach

    path, made = limited
    monkeypatch.setenv("VOICECOACH_DATA_DIR", str(tmp_path))
    routine = load_routine(path)
    player = Player(made, audio="none")
    player.start()
    try:
        BEGUN[way](player)
        result = player.wait(60)
    finally:
        player.close()
    assert result is not None and "Side crack" in result.exercises_started, result
    assert "Side crack" not in result.exercises_completed
    decision = coach.decide(routine, coach.Settings(), coach.Purpose.PLAY)
    coach.record(coach.Session(decision, made, time.time()), result)
    history = History(tmp_path)
    now = time.time() + 60
    said = _limits_everywhere(history, routine, now)
    assert said["assess"] == "wait" and said["compose"], said
    # An hour later the wait is over; a second begun attempt reaches the daily count of two.
    later = now + 3700
    assert _limits_everywhere(history, routine, later) == {"assess": None, "compose": None}
    history.record(SessionRecord(routine.id, routine.title, "live", later, later, False, 1.0,
                                 exercises_started=("Side crack",)))
    after = later + 3700
    if dt_same_day(now, after):
        said = _limits_everywhere(history, routine, after)
        assert said["assess"] == "count" and said["compose"], said
    # Familiarity and streaks keep their rule: only an exercise played through counts.
    sessions = history.sessions()
    assert all(s.counts is bool(s.exercises_done) for s in sessions), sessions
    assert sessions[-1].exercises_done == len(result.exercises_completed), sessions
    if not result.exercises_completed:
        assert history.live_sessions(routine.id) == 0 and not history.active_days()


def dt_same_day(a: float, b: float) -> bool:
    import datetime as dt

    return dt.date.fromtimestamp(a) == dt.date.fromtimestamp(b)


def test_a_history_from_before_begun_moves_keeps_every_row_as_played_through(
    tmp_path: Path
) -> None:
    import sqlite3

    conn = sqlite3.connect(tmp_path / "history.sqlite3")
    conn.executescript(
        "CREATE TABLE exercises_done (session_id INTEGER NOT NULL, routine TEXT NOT NULL,"
        " exercise TEXT NOT NULL, done_at REAL NOT NULL, forced INTEGER NOT NULL DEFAULT 0);"
        "INSERT INTO exercises_done VALUES (1, 'r', 'A', 10, 0);")
    conn.close()
    history = History(tmp_path)
    history.record(SessionRecord("r", "R", "live", 20, 30, False, 5.0, ("B",),
                                 exercises_started=("C",)))
    rows = sqlite3.connect(tmp_path / "history.sqlite3").execute(
        "SELECT exercise, finished FROM exercises_done ORDER BY exercise").fetchall()
    assert rows == [("A", 1), ("B", 1), ("C", 0)]
