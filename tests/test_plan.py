"""The plan: every cue kind, and the timing rules both export and live play rely on."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from voicecoach.errors import UserError
from voicecoach.plan.timeline import GRID, MIN_GAP, Kind, PlanOptions, build_plan, estimate_speech
from voicecoach.routine.loader import load_routine
from voicecoach.routine.model import Routine

RATE = 22050


def routine(**overrides: object) -> Routine:
    data: dict[str, object] = {
        "title": "Test routine",
        "cautions": ["Stop at once if anything hurts."],
        "exercises": [
            {"name": "Knee hug", "setup": ["Lie on your back.", "Hug both knees."], "hold": "20s"},
            {"name": "Twist", "sides": ["left", "right"], "setup": ["Drop your knees {side}."],
             "hold": "10s"},
        ],
    }
    data.update(overrides)
    return Routine.model_validate(data)


def kinds(plan):  # type: ignore[no-untyped-def]
    return [e.kind for e in plan.events]


def by_kind(plan, kind):  # type: ignore[no-untyped-def]
    return [e for e in plan.events if e.kind == kind]


def near(got: int, want: int) -> bool:
    """Within one MP3 frame: cues start on the frame grid (see timeline.on_grid)."""
    return abs(got - want) < GRID


def sec(frames: int) -> float:
    return frames / RATE


def test_timeline_is_contiguous_and_starts_after_lead_in() -> None:
    plan = build_plan(routine(), PlanOptions(lead_in=1.5))
    # The first grid point (an MP3 frame) at or after the lead-in.
    assert plan.events[0].start == -(-round(1.5 * RATE) // GRID) * GRID == plan.lead_in
    for a, b in zip(plan.events, plan.events[1:], strict=False):
        assert b.start == a.end
    assert plan.total == plan.events[-1].end


@pytest.mark.parametrize("pace", [0.5, 1.0, 1.7])
def test_every_cue_of_every_bundled_routine_starts_on_the_frame_grid(pace: float) -> None:
    """An export copies each cue's encoded MP3 frames: cues start on the 576-sample grid."""
    for path in sorted(Path("routines").glob("*.yaml")):
        plan = build_plan(load_routine(path), PlanOptions(pace=pace))
        assert all(e.start % GRID == 0 for e in plan.events), path
        assert plan.total % GRID == 0


@pytest.mark.parametrize("speech_seconds", [0.3, 1.0, 2.5])
def test_cues_never_overlap_whatever_the_speech_length(speech_seconds: float) -> None:
    plan = build_plan(routine(), measure=lambda text: round(speech_seconds * RATE))
    gap = round(MIN_GAP * RATE)
    for event in plan.events:
        if event.text:
            assert event.length >= event.speech + gap, event


def test_start_cautions_first_exercise_and_finish_order() -> None:
    plan = build_plan(routine())
    assert plan.events[0].kind == Kind.START
    assert "Test routine" in plan.events[0].text
    assert "minutes" in plan.events[0].text
    first_exercise = next(i for i, e in enumerate(plan.events) if e.exercise)
    cautions = [e.text for e in plan.events[:first_exercise] if e.kind == Kind.CAUTION]
    assert "Stop at once if anything hurts." in cautions
    assert plan.events[-1].kind == Kind.FINISH


def test_hold_lasts_exactly_its_length_with_countdown_at_the_end() -> None:
    plan = build_plan(routine(exercises=[{"name": "A", "hold": "12s"}]))
    hold = by_kind(plan, Kind.HOLD)[0]
    countdown = by_kind(plan, Kind.COUNTDOWN)
    assert [c.text for c in countdown] == ["three", "two", "one"]
    end = countdown[-1].end
    assert near(end - hold.start, 12 * RATE)
    assert all(near(end - c.start, k * RATE) for c, k in zip(countdown, [3, 2, 1], strict=True))


def test_halfway_only_on_long_holds() -> None:
    long = build_plan(routine(exercises=[{"name": "A", "hold": "30s"}]))
    halfway = by_kind(long, Kind.HALFWAY)
    hold = by_kind(long, Kind.HOLD)[0]
    assert len(halfway) == 1 and near(halfway[0].start - hold.start, 15 * RATE)
    short = build_plan(routine(exercises=[{"name": "A", "hold": "10s"}]))
    assert not by_kind(short, Kind.HALFWAY)


def test_switch_sides_fills_side_and_takes_the_transition_time() -> None:
    plan = build_plan(routine(defaults={"transition": "6s"}))
    switches = by_kind(plan, Kind.SWITCH_SIDES)
    assert switches[0].text == "Left side first."
    assert "right" in switches[1].text
    assert near(switches[1].length, 6 * RATE)
    setups = [e.text for e in plan.events if e.text.startswith("Drop your knees")]
    assert setups == ["Drop your knees left.", "Drop your knees right."]


def test_sets_are_announced_and_rested_between() -> None:
    plan = build_plan(routine(exercises=[
        {"name": "Roll", "reps": 2, "tempo": "3s", "sets": 3, "rest_between_sets": "20s"}
    ]))
    assert [e.text for e in by_kind(plan, Kind.SET)] == ["Set 1 of 3.", "Set 2 of 3.", "Last set."]
    rests = [e for e in by_kind(plan, Kind.REST) if "next set" in e.text]
    assert len(rests) == 2
    # A rest lasts its full length: from its cue to the end of its countdown.
    index = plan.events.index(rests[0])
    following = plan.events[index + 1:]
    end = next(e for e in following if e.kind != Kind.COUNTDOWN).start
    assert near(end - rests[0].start, 20 * RATE)


def test_reps_are_counted_at_the_tempo() -> None:
    plan = build_plan(routine(exercises=[{"name": "Roll", "reps": 4, "tempo": "2.5s"}]))
    reps = by_kind(plan, Kind.REP)
    assert [r.text for r in reps] == ["One.", "Two.", "Three.", "Four, last one."]
    assert all(near(r.length, round(2.5 * RATE)) for r in reps)


def test_tempo_stretches_rather_than_overlapping_long_counts() -> None:
    plan = build_plan(routine(exercises=[{"name": "Roll", "reps": 2, "tempo": "1s"}]),
                      measure=lambda t: 2 * RATE)
    for rep in by_kind(plan, Kind.REP):
        assert rep.length >= 2 * RATE + round(MIN_GAP * RATE)


def test_phased_reps_speak_breaths_at_their_lengths() -> None:
    plan = build_plan(routine(exercises=[{
        "name": "Cat", "reps": 2,
        "each_rep": [
            {"say": "Breathe in and arch.", "seconds": 4, "breath": "in"},
            {"say": "Hold it.", "seconds": 5},
            {"say": "Breathe out and round.", "seconds": 4, "breath": "out"},
        ],
    }]))
    breaths = by_kind(plan, Kind.BREATH)
    assert [b.text for b in breaths] == ["Breathe in and arch.", "Breathe out and round."] * 2
    assert all(near(b.length, 4 * RATE) for b in breaths)
    holds = [e for e in plan.events if e.text == "Hold it."]
    assert all(near(h.length, 5 * RATE) for h in holds)
    assert [r.text for r in by_kind(plan, Kind.REP)] == ["One.", "Two, last one."]


def test_breathing_during_a_hold_follows_the_pace_and_replaces_halfway() -> None:
    plan = build_plan(routine(exercises=[
        {"name": "Child", "hold": "30s", "breathing": {"inhale": "4s", "exhale": "6s"}}
    ]))
    breaths = by_kind(plan, Kind.BREATH)
    assert [b.text for b in breaths[:4]] == ["Breathe in.", "Breathe out."] * 2
    starts = [b.start for b in breaths]
    assert near(starts[1] - starts[0], 4 * RATE) and near(starts[2] - starts[1], 6 * RATE)
    assert not by_kind(plan, Kind.HALFWAY)
    countdown = by_kind(plan, Kind.COUNTDOWN)
    assert breaths[-1].start + breaths[-1].speech < countdown[0].start


def test_rest_between_exercises_previews_the_next_one() -> None:
    plan = build_plan(routine(defaults={"rest": "12s"}))
    rest = by_kind(plan, Kind.REST)[0]
    nxt = by_kind(plan, Kind.NEXT_UP)[0]
    assert "12 seconds" in rest.text
    assert "Twist" in nxt.text
    assert nxt.start == rest.end
    first_twist = next(e for e in plan.events if e.exercise == "Twist")
    assert near(first_twist.start - rest.start, 12 * RATE)


def test_follow_up_with_a_hold() -> None:
    plan = build_plan(routine(exercises=[
        {"name": "Knee hug", "hold": "20s", "then": [
            {"say": "Now rock gently side to side.", "hold": "10s"},
            {"say": "Straighten your legs."},
        ]}
    ]))
    texts = [e.text for e in plan.events]
    rock = texts.index("Now rock gently side to side.")
    straighten = texts.index("Straighten your legs.")
    assert near(plan.events[straighten].start - plan.events[rock].start, 10 * RATE)


def test_exercise_caution_and_limit_note_are_spoken_before_set_up() -> None:
    plan = build_plan(routine(exercises=[{
        "name": "Crack", "manipulation": True, "caution": "Never force it.",
        "limits": {"max_per_day": 3, "note": "No more than three times a day."},
        "setup": ["Sit tall."], "hold": "5s",
    }]))
    texts = [e.text for e in plan.events if e.exercise == "Crack"]
    assert texts.index("Never force it.") < texts.index("Sit tall.")
    assert texts.index("No more than three times a day.") < texts.index("Sit tall.")


def test_pace_scales_holds_and_rests_not_speech() -> None:
    r = routine()
    normal = build_plan(r)
    slow = build_plan(r, PlanOptions(pace=2.0))
    hold_normal = by_kind(normal, Kind.HOLD)[0]
    hold_slow = by_kind(slow, Kind.HOLD)[0]
    assert "40 seconds" in hold_slow.text
    assert slow.duration > normal.duration + 30
    assert hold_slow.speech >= hold_normal.speech  # speech is not stretched, only the waits


def test_only_and_skip_by_name_or_number() -> None:
    r = routine()
    assert build_plan(r, PlanOptions(only=("twist",))).exercises == ("Twist",)
    assert build_plan(r, PlanOptions(skip=("1",))).exercises == ("Twist",)
    with pytest.raises(UserError) as wrong:
        build_plan(r, PlanOptions(only=("twst",)))
    assert "did you mean 'Twist'" in wrong.value.line()
    with pytest.raises(UserError, match="no exercises left"):
        build_plan(r, PlanOptions(skip=("Knee hug", "Twist")))


def test_short_detail_uses_summaries() -> None:
    r = routine(exercises=[{"name": "A", "summary": "Knees in, hug.", "setup": ["Lie down.",
                "Bend your knees."], "hold": "5s"}])
    full = [e.text for e in build_plan(r).events]
    short = [e.text for e in build_plan(r, PlanOptions(detail="short")).events]
    assert "Lie down." in full and "Knees in, hug." not in full
    assert "Knees in, hug." in short and "Lie down." not in short


def test_cue_switches_turn_optional_cues_off() -> None:
    r = routine(defaults={"cues": {"countdown": False, "halfway": False, "next_up": False}},
                exercises=[{"name": "A", "hold": "30s"}, {"name": "B", "hold": "30s"}])
    plan = build_plan(r)
    for kind in (Kind.COUNTDOWN, Kind.HALFWAY, Kind.NEXT_UP):
        assert not by_kind(plan, kind)


def test_measured_speech_changes_times_but_not_holds() -> None:
    r = routine()
    a = build_plan(r, measure=estimate_speech())
    b = build_plan(r, measure=lambda text: round(RATE * (0.1 + len(text) / 30)))
    assert a.total != b.total
    for plan in (a, b):
        for hold in by_kind(plan, Kind.HOLD):
            if "20 seconds" in hold.text:
                end = next(e for e in plan.events if e.start > hold.start and e.kind not in
                           (Kind.HALFWAY, Kind.COUNTDOWN))
                assert near(end.start - hold.start, 20 * RATE)


def test_plan_is_pure() -> None:
    r = routine()
    assert build_plan(r) == build_plan(r)


def test_every_cue_kind_appears_in_a_rich_routine() -> None:
    r = routine(exercises=[
        {"name": "Hold", "hold": "30s", "caution": "Careful."},
        {"name": "Sided", "sides": ["left", "right"], "hold": "5s", "sets": 2},
        {"name": "Breathe", "hold": "20s", "breathing": {"inhale": "3s", "exhale": "3s"}},
        {"name": "Count", "reps": 3},
    ])
    assert set(kinds(build_plan(r))) == set(Kind)


def test_chapters_one_per_exercise_starting_at_its_first_cue() -> None:
    plan = build_plan(routine())
    chapters = plan.chapters()
    assert [c[0] for c in chapters] == ["Introduction", "Knee hug", "Twist"]
    assert chapters[0][1] == 0 and chapters[-1][2] == plan.total
    first = {e.exercise: e.start for e in reversed(plan.events) if e.exercise}
    assert chapters[1][1] == first["Knee hug"] and chapters[2][1] == first["Twist"]


def test_countdown_is_whole_or_absent() -> None:
    # A 3.5 s hold cannot fit its cue and all of "three, two, one": no partial countdown.
    half = RATE // 2
    plan = build_plan(routine(exercises=[{"name": "A", "hold": "3.5s"}]), measure=lambda t: half)
    assert not by_kind(plan, Kind.COUNTDOWN)
    plan = build_plan(routine(exercises=[{"name": "A", "hold": "8s"}]), measure=lambda t: half)
    assert [c.text for c in by_kind(plan, Kind.COUNTDOWN)] == ["three", "two", "one"]


def test_breathing_cycles_are_whole_and_a_short_pause_keeps_the_exhale() -> None:
    plan = build_plan(routine(exercises=[{
        "name": "Child", "hold": "40s", "breathing": {"inhale": "3s", "pause": "1s", "exhale": "4s"}
    }]))
    texts = [b.text for b in by_kind(plan, Kind.BREATH)]
    cycle = ["Breathe in.", "Hold your breath.", "Breathe out."]
    assert texts and len(texts) % 3 == 0
    assert texts == cycle * (len(texts) // 3)
    gap = round(MIN_GAP * RATE)
    breaths = by_kind(plan, Kind.BREATH)
    for a, b in itertools.pairwise(breaths):
        assert b.start >= a.start + a.speech + gap


def test_moving_holds_say_keep_going() -> None:
    plan = build_plan(routine(exercises=[{"name": "Roll", "hold": "1m", "moving": True}]))
    assert by_kind(plan, Kind.HOLD)[0].text == "Keep going for 1 minute."


def test_follow_ups_may_be_plain_text_and_reps_come_before_the_hold() -> None:
    plan = build_plan(routine(exercises=[{
        "name": "Kneel", "reps": 2, "hold": "20s",
        "each_rep": [{"say": "Rock forward.", "seconds": 3}, {"say": "Rock back.", "seconds": 3}],
        "then": ["Come back to kneeling."],
    }]))
    texts = [e.text for e in plan.events]
    assert texts.index("Rock back.") < texts.index("Hold for 20 seconds.")
    assert texts.index("Hold for 20 seconds.") < texts.index("Come back to kneeling.")


def test_only_steps_naming_a_side_repeat_per_side() -> None:
    plan = build_plan(routine(exercises=[{
        "name": "Twist", "sides": ["left", "right"], "hold": "5s",
        "setup": ["Lie on your back.", "{side} knee over the other leg."],
    }]))
    texts = [e.text for e in plan.events]
    assert texts.count("Lie on your back.") == 1
    assert "Left knee over the other leg." in texts and "Right knee over the other leg." in texts


def test_later_sets_get_the_summary_and_no_needless_switch() -> None:
    plan = build_plan(routine(exercises=[{
        "name": "Twist", "sides": ["left", "right"], "hold": "5s", "sets": 2,
        "summary": "Knee over to the {side}.", "setup": ["Lie down.", "Knee over to the {side}."],
    }]))
    texts = [e.text for e in plan.events]
    second_set = texts.index("Last set.")
    assert texts[second_set + 1] == "Left side."
    assert texts[second_set + 2] == "Knee over to the left."
    switches = [e for e in by_kind(plan, Kind.SWITCH_SIDES) if e.text.startswith("Switch")]
    assert len(switches) == 2  # only the real switches, one per set


def test_side_placeholder_in_a_caution_is_refused() -> None:
    with pytest.raises(ValueError, match="said once"):
        routine(exercises=[{"name": "A", "sides": ["left", "right"], "hold": "5s",
                            "caution": "Careful with your {side} knee."}])
