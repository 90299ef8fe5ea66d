"""docs/api.md's examples run as written: real speech, real ffmpeg, real history."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from helpers import decoded

DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
TITLES = re.findall(r"^## (.+)$", DOC.read_text(encoding="utf-8"), re.M)


def test_every_section_has_one_example() -> None:
    assert len(BLOCKS) == len(TITLES) >= 5


@pytest.fixture
def run_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("VOICECOACH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)

    def run(title: str) -> dict[str, object]:
        namespace: dict[str, object] = {"__name__": "api_example"}
        exec(compile(BLOCKS[TITLES.index(title)], f"{DOC}:{title}", "exec"), namespace)
        return namespace

    return run


def test_load(run_example) -> None:  # type: ignore[no-untyped-def]
    found = run_example("Load a routine")
    assert found["routine"].id == "five-minute-back"  # type: ignore[attr-defined]


def test_plan_as_data(run_example) -> None:  # type: ignore[no-untyped-def]
    found = run_example("Get its plan as data")
    data, plan = found["data"], found["plan"]
    assert data["duration"] == round(plan.duration, 3) > 60  # type: ignore[index, attr-defined]
    # The export lead-in (1.5 s), on the MP3 frame grid.
    assert data["events"][0]["start"] == 1.515  # type: ignore[index]


@pytest.mark.slow
def test_export(run_example) -> None:  # type: ignore[no-untyped-def]
    found = run_example("Export a track")
    track = found["track"]
    assert abs(len(decoded(track.path)) / 22050 - track.duration) < 0.05  # type: ignore[attr-defined]
    assert track.chapters  # type: ignore[attr-defined]
    from voicecoach import coach

    (past,) = coach.history()
    assert past.kind == "export" and past.completed


def test_live_session_and_history(run_example) -> None:  # type: ignore[no-untyped-def]
    found = run_example("Open a live session")
    assert len(found["first_second"]) > 0  # type: ignore[arg-type]
    assert found["result"] is not None and not found["result"].completed  # type: ignore[attr-defined]
    shown = run_example("Read history")
    (past,) = shown["coach"].history()  # type: ignore[attr-defined]
    assert past.kind == "live" and past.routine == "five-minute-back"
