"""Commands import only what they use: help, an up-to-date export and a warm stitched export."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

#: Heavy packages no command below needs: numpy (mixing), the server, live play, the speech
#: engine's second backend. An unchanged export also needs no tags writer nor help formatter.
HEAVY = {"numpy", "starlette", "uvicorn", "miniaudio", "pyttsx3", "pydub"}

ROUTINE = """\
title: Startup check
exercises:
  - name: Knee hug
    setup: ["Lie on your back and hug both knees."]
    hold: 5s
  - name: Twist
    setup: ["Drop both knees to the left."]
    hold: 5s
"""


def _imports(args: list[str], cwd: Path) -> tuple[set[str], str]:
    """The top-level packages a command imports (from -X importtime) and its stdout."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "voicecoach", *args],
                          cwd=cwd, capture_output=True, text=True, env=dict(os.environ),
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    names = {line.rsplit("|", 1)[1].strip().split(".")[0]
             for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert "voicecoach" in names  # the output was read right
    return names, done.stdout


def test_help_imports_no_routine_model_nor_audio(tmp_path: Path) -> None:
    names, out = _imports(["--help"], tmp_path)
    assert "export" in out
    assert not names & (HEAVY | {"pydantic", "mutagen", "yaml"}), names & (HEAVY | {"pydantic"})


def test_warm_and_unchanged_exports_import_no_numpy(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(ROUTINE, encoding="utf-8")
    export = ["export", "r.yaml", "-o", "r.mp3", "--quiet"]
    subprocess.run([sys.executable, "-m", "voicecoach", *export], cwd=tmp_path, check=True,
                   capture_output=True, timeout=300)
    # Warm and stitched: every piece's frames are cached, so no clip is read or levelled.
    names, out = _imports([*export, "--force"], tmp_path)
    assert "Wrote" in out
    assert not names & HEAVY, names & HEAVY
    names, out = _imports(export, tmp_path)
    assert out.startswith("up to date:")
    assert not names & (HEAVY | {"mutagen", "rich"}), names & (HEAVY | {"mutagen", "rich"})
