"""Every caution reaches a regular listener: short renderings keep every caution and every safety
step (in a short form), and what an article advises (stretch before and after) is done."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from voicecoach.plan.timeline import Kind, PlanOptions, build_plan
from voicecoach.routine.library import bundled
from voicecoach.routine.loader import load_routine
from voicecoach.routine.model import Routine


def _said(routine: Routine, detail: str) -> tuple[list[str], Counter[tuple[str | None, Kind]]]:
    plan = build_plan(routine, PlanOptions(detail=detail))
    texts = [e.text for e in plan.events]
    cautions = Counter((e.exercise, e.kind) for e in plan.events if e.kind == Kind.CAUTION)
    return texts, cautions


def assert_every_caution_in_both(routine: Routine) -> None:
    full, full_count = _said(routine, "full")
    short, short_count = _said(routine, "short")
    # The same number of cautions, in the introduction and in each exercise.
    assert full_count == short_count, routine.id
    for caution in routine.cautions:
        assert caution.say in full, caution.say
        assert (caution.short or caution.say) in short, caution.say
    for ex in routine.exercises:
        for text in filter(None, [ex.caution, ex.limits.note if ex.limits else None]):
            assert text in full and text in short, text
        for step in ex.setup:
            if step.safety:  # compared without case: "{side} foot" is said "Left foot"
                for side in ex.sides or [""]:
                    assert step.say.replace("{side}", side).lower() in map(str.lower, full)
                    said = (step.short or step.say).replace("{side}", side).lower()
                    assert said in map(str.lower, short), step.say


@pytest.mark.parametrize("rid", sorted(bundled()))
def test_every_bundled_caution_is_said_in_full_and_in_short(rid: str) -> None:
    routine = load_routine(bundled()[rid])
    assert_every_caution_in_both(routine)
    # Bundled routines give each caution and safety step a wording of its own for short mode.
    assert all(c.short for c in routine.cautions), rid
    assert all(s.short for ex in routine.exercises for s in ex.setup if s.safety), rid


def test_a_padding_step_is_a_safety_step() -> None:
    """The worksheet's towel over a hard backrest must not vanish with the set-up."""
    routine = load_routine(bundled()["back-crack-worksheet"])
    padding = [s for ex in routine.exercises for s in ex.setup if "padding" in s.say]
    assert padding and all(s.safety for s in padding)


USER_ROUTINE = """\
title: Mine
cautions: ["Stop at once if anything hurts.", \
{say: "Check with a doctor first.", short: "Doctor first."}]
exercises:
  - name: Over the chair
    caution: Use a sturdy chair.
    summary: Lean back over the chair.
    limits: {wait: 1h, note: Once an hour at most.}
    setup:
      - {say: "Put a cushion on the backrest.", safety: true}
      - Sit down.
      - {say: "Keep your {side} foot flat.", safety: true, short: "{side} foot flat."}
    sides: [left, right]
    hold: 5s
  - name: No short forms
    summary: Just breathe.
    setup: [{say: "Lie on a firm surface.", safety: true}, "Close your eyes."]
    hold: 5s
"""


def test_user_routines_without_short_forms_keep_their_cautions_in_full(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(USER_ROUTINE, encoding="utf-8")
    routine = load_routine(path)
    assert_every_caution_in_both(routine)
    short, _ = _said(routine, "short")
    assert "Stop at once if anything hurts." in short and "Doctor first." in short
    assert "Put a cushion on the backrest." in short and "Lie on a firm surface." in short
    assert "Left foot flat." in short and "Right foot flat." in short
    assert "Sit down." not in short and "Close your eyes." not in short  # the summary stands in
    # The padding comes before the summary, as it did before sitting down.
    assert short.index("Put a cushion on the backrest.") < short.index("Lean back over the chair.")


_BEFORE_AND_AFTER = re.compile(r"stretch\w* before and after", re.IGNORECASE)


@pytest.mark.parametrize("rid", sorted(bundled()))
def test_a_routine_that_says_stretch_before_and_after_does_so(rid: str) -> None:
    routine = load_routine(bundled()[rid])
    advice = " ".join(c.say for c in routine.cautions)
    if not _BEFORE_AND_AFTER.search(advice):
        assert not any(_BEFORE_AND_AFTER.search(ex.summary or "") for ex in routine.exercises)
        return
    cracking = [i for i, ex in enumerate(routine.exercises) if ex.manipulation]
    assert cracking, rid
    first, last = routine.exercises[0], routine.exercises[-1]
    assert not first.manipulation and not last.manipulation, rid
    assert "stretch" in last.name.lower() or "stretch" in (last.summary or "").lower(), rid
    assert min(cracking) > 0 and max(cracking) < len(routine.exercises) - 1


def test_the_article_that_says_it_is_a_bundled_routine_that_follows_it() -> None:
    """The seed articles that advise stretching before and after cracking have a routine that
    carries the advice (so the test above checks it)."""
    seeds = Path("/work/shared/seeds")
    if not seeds.is_dir():
        pytest.skip("the source articles are not on this machine")
    advising = [p for p in seeds.glob("*.txt") if _BEFORE_AND_AFTER.search(p.read_text("utf-8"))]
    carrying = [rid for rid, path in bundled().items()
                if any(_BEFORE_AND_AFTER.search(c.say) for c in load_routine(path).cautions)]
    assert len(carrying) >= len(advising) >= 1
