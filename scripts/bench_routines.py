"""Routines of a chosen length for benchmarks: a realistic mix of holds, sides, sets, reps,
breathing."""

from __future__ import annotations

from pathlib import Path

import yaml

from voicecoach.plan.timeline import PlanOptions, build_plan
from voicecoach.routine.loader import load_routine

_KINDS = [
    {"setup": ["Lie on your back on the mat.", "Bend your knees, feet flat."], "hold": "45s"},
    {"sides": ["left", "right"], "setup": ["Drop both knees to the {side}."], "hold": "30s"},
    {"reps": 10, "tempo": "3s", "sets": 3, "rest_between_sets": "20s",
     "setup": ["Lie back over the foam roller."]},
    {"hold": "60s", "breathing": {"inhale": "4s", "exhale": "6s"},
     "setup": ["Sit back on your heels and reach forward."]},
    {"reps": 5, "each_rep": [
        {"say": "Breathe in and arch your back.", "seconds": 4, "breath": "in"},
        {"say": "Hold it there.", "seconds": 5},
        {"say": "Breathe out and round your spine.", "seconds": 4, "breath": "out"}]},
]


def routine_data(count: int) -> dict[str, object]:
    exercises = []
    for i in range(count):
        ex = {"name": f"Exercise {i + 1}", **_KINDS[i % len(_KINDS)]}
        if i % 3 == 0:
            ex["then"] = [{"say": "Now rock gently from side to side.", "hold": "10s"}]
        exercises.append(ex)
    return {"title": f"Benchmark routine of {count} exercises",
            "cautions": ["Stop at once if anything hurts."], "exercises": exercises}


def write_routine(path: Path, minutes: float) -> Path:
    """The shortest routine of this mix that lasts at least `minutes`."""
    count = 1
    while True:
        path.write_text(yaml.safe_dump(routine_data(count), sort_keys=False), encoding="utf-8")
        if build_plan(load_routine(path), PlanOptions()).duration >= minutes * 60:
            return path
        count += 1
