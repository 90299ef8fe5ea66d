"""Each command plans once: one plan timed from the speech, and at most one estimated from text
(it names an export's outputs before speech is made, and sizes the progress bar)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import voicecoach.plan.timeline as timeline
from voicecoach import coach
from voicecoach.cli.run import app

TINY = """\
title: Tiny plans
cautions: ["Stop if it hurts."]
defaults: {rest: 1s, countdown: 0, step_pause: 0.5s}
exercises:
  - name: Arms up
    hold: 1s
  - name: Knees in
    hold: 1s
"""


class _StopsAtOnce(coach.Player):  # type: ignore[misc]
    """A real player on the null device that the listener stops as soon as it starts: the
    count is of what `play` does before it plays, not of real-time playback."""

    def start(self) -> None:
        super().start()
        self.stop()


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every build_plan call, as "timed" (clip lengths measured) or "estimate" (from text)."""
    real, calls = timeline.build_plan, []

    def counted(routine, options=None, measure=None):  # type: ignore[no-untyped-def]
        calls.append("estimate" if measure is None else "timed")
        return real(routine, options, measure)

    # Modules that take the name at import: imported first, so none takes the wrapper itself.
    import voicecoach.audio.prepare
    import voicecoach.plan.compose  # noqa: F401

    for name, module in list(sys.modules.items()):
        if name.startswith("voicecoach") and hasattr(module, "build_plan"):
            monkeypatch.setattr(module, "build_plan", counted)
    monkeypatch.setattr(coach, "Player", _StopsAtOnce)
    return calls


@pytest.mark.parametrize(("args", "expected"), [
    (["show"], ["timed"]),
    (["show", "--for", "play"], ["timed"]),
    (["show", "--estimate"], ["estimate"]),
    # The estimate names the track and its chapters before any speech; the bar reuses it.
    (["export", "-o", "{tmp}/out.mp3"], ["estimate", "timed"]),
    (["export", "--split", "-o", "{tmp}/split"], ["estimate", "timed"]),
    # The estimate sizes the progress bar while the cues are spoken.
    (["play", "--audio", "none"], ["estimate", "timed"]),
])
def test_a_command_plans_once(builds: list[str], tmp_path: Path, args: list[str],
                              expected: list[str]) -> None:
    routine = tmp_path / "tiny-plans.yaml"
    routine.write_text(TINY, encoding="utf-8")
    command, *rest = (a.replace("{tmp}", str(tmp_path)) for a in args)
    result = CliRunner().invoke(app, [command, str(routine), *rest])
    assert result.exit_code == 0, result.output
    assert sorted(builds) == sorted(expected), builds


def test_an_export_job_estimate_is_the_plan_that_sizes_its_bar(
    builds: list[str], tmp_path: Path
) -> None:
    """Through the API: plan_exports estimates once, export (with a bar) times once."""
    routine = tmp_path / "tiny-plans.yaml"
    routine.write_text(TINY, encoding="utf-8")

    class Bar:
        def __init__(self) -> None:
            self.totals: list[float] = []

        def stage(self, label: str, total: float) -> None:
            self.totals.append(total)

        def advance(self, amount: float) -> None: ...

        def set(self, done: float) -> None: ...

    settings = coach.Settings()
    [job] = coach.plan_exports([(routine, tmp_path / "t.mp3")], settings)
    assert builds == ["estimate"]
    bar = Bar()
    coach.export(job, settings, progress=bar)
    assert builds == ["estimate", "timed"]
    assert bar.totals[0] == len(job.estimate.spoken_texts())
