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
from voicecoach.safety.history import History
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


@pytest.mark.parametrize("ending", [pytest.param(e, marks=pytest.mark.slow) if e in _SLOW else e
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
