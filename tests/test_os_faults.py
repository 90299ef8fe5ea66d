"""Every command x every file fault a user can meet: one sentence, exit 1 (fault) or 2 (mistake)."""

from __future__ import annotations

import contextlib
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import run_cli

ROUTINE = "title: Tiny\nexercises:\n  - name: Reach\n    hold: 1s\n"
LONG = "n" * 300

#: Every command, as a user would run it in a folder holding r.yaml. Those that write a file
#: name it under {out}: the conditions below decide what {out} is.
COMMANDS = {
    "list": ["list", "--estimate"],
    "list-rendered": ["list"],
    "show": ["show", "r.yaml"],
    "show-estimate": ["show", "r.yaml", "--estimate"],
    "export": ["export", "r.yaml", "-o", "{out}/t.mp3", "-q"],
    "export-transcript": ["export", "r.yaml", "-o", "{out}/t.mp3", "--transcript", "-q"],
    "export-split": ["export", "r.yaml", "--split", "-o", "{out}/parts", "-q"],
    # (the first exercise of each routine: the whole library took 12 s of CPU per case)
    "export-all": ["export", "--all", "{out}/all", "--only", "1", "-q"],
    "play": ["play", "r.yaml", "--audio", "none", "--pace", "0.25", "--events", "{out}/e.jsonl"],
    "validate": ["validate", "r.yaml"],
    "safety-answer": ["safety", "--answer", "chronic=no", "--answer", "diagnosis=no",
                      "--answer", "surgery=no", "--answer", "pregnant=no",
                      "--answer", "condition=no"],
    "safety-show": ["safety", "--show"],
    "history": ["history"],
    "voices": ["voices"],
}
#: Commands that keep something in the data folder (history, safety answers); the others, and
#: `safety --show` (unreadable answers count as not given), go on as if it were empty.
USES_DATA = {"show", "show-estimate", "export", "export-transcript", "export-split", "export-all",
             "play", "safety-answer", "history"}
WRITES = {"export", "export-transcript", "export-split", "export-all", "play"}


def _chattr_works(tmp: Path) -> bool:
    probe = tmp / "probe"
    probe.mkdir()
    try:
        done = subprocess.run(["chattr", "+i", str(probe)], capture_output=True)
    except OSError:
        return False
    if done.returncode != 0:
        return False
    try:
        (probe / "x").write_text("x")
    except OSError:
        return True
    finally:
        subprocess.run(["chattr", "-i", str(probe)], capture_output=True)
    return False  # root ignores it here: no read-only folder can be made


def _folder(tmp: Path, how: str) -> Path:
    """A folder path that fails the way `how` says."""
    if how == "under-a-file":  # ENOTDIR
        (tmp / "afile").write_text("not a folder")
        return tmp / "afile" / "sub"
    if how == "name-too-long":  # ENAMETOOLONG
        return tmp / LONG
    if how == "read-only":  # EPERM from an immutable folder (root ignores chmod)
        folder = tmp / "locked"
        folder.mkdir()
        subprocess.run(["chattr", "+i", str(folder)], check=True)
        return folder
    raise AssertionError(how)


#: condition -> (what it breaks, expected exit for a command that meets it)
CONDITIONS = {
    "data-under-a-file": ("data", "under-a-file", 1),
    "data-name-too-long": ("data", "name-too-long", 1),
    "data-read-only": ("data", "read-only", 1),
    "cache-under-a-file": ("cache", "under-a-file", 0),
    "cache-name-too-long": ("cache", "name-too-long", 0),
    "cache-read-only": ("cache", "read-only", 0),
    "out-under-a-file": ("out", "under-a-file", 2),
    "out-name-too-long": ("out", "name-too-long", 2),
    "out-read-only": ("out", "read-only", 1),
    "disk-full": ("fsize", "", 1),
}

#: The fast lane keeps one command per kind of file; the whole sweep runs with the slow tests.
FAST = {("export", "out"), ("history", "data")}
CASES = [pytest.param(c, k, marks=() if (c, CONDITIONS[k][0]) in FAST else pytest.mark.slow)
         for c in COMMANDS for k in CONDITIONS
         if not (CONDITIONS[k][0] in ("out", "fsize") and c not in WRITES)
         # a clean play runs in real time: only its failing starts are swept
         and not (c == "play" and CONDITIONS[k][2] == 0)]


@pytest.mark.parametrize(("command", "condition"), CASES)
def test_every_command_meets_every_file_fault_with_one_sentence(
    tmp_path: Path, command: str, condition: str
) -> None:
    target, how, expected = CONDITIONS[condition]
    if how == "read-only" and not _chattr_works(tmp_path):
        pytest.skip("no way to make a folder read-only for root here (chattr +i)")
    (tmp_path / "r.yaml").write_text(ROUTINE)
    env = {**os.environ}
    env["VOICECOACH_DATA_DIR"] = str(tmp_path / "data")
    env["VOICECOACH_CACHE_DIR"] = str(tmp_path / "cache")
    out = tmp_path / "out"
    locked = []
    if target in ("data", "cache", "out"):
        folder = _folder(tmp_path, how)
        if how == "read-only":
            locked.append(folder)
        if target == "data":
            env["VOICECOACH_DATA_DIR"] = str(folder / "data") if how == "read-only" else str(folder)
        elif target == "cache":
            env["VOICECOACH_CACHE_DIR"] = (str(folder / "clips") if how == "read-only"
                                           else str(folder))
        else:
            out = folder
    args = [a.replace("{out}", str(out)) for a in COMMANDS[command]]
    limit = None
    if target == "fsize":
        limit = 40_000  # bytes: room for the history, not for the track

        def limit_size() -> None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    try:
        if limit:  # the file-size limit is the child's own
            done = subprocess.run(
                [sys.executable, "-m", "voicecoach", *args], capture_output=True, text=True,
                cwd=tmp_path, env=env, timeout=180, preexec_fn=limit_size,
            )
        else:
            done = run_cli(*args, cwd=tmp_path, env=env)
    finally:
        for folder in locked:
            subprocess.run(["chattr", "-i", str(folder)], check=False)
    touched = target != "data" or command in USES_DATA
    want = expected if touched else 0
    # Notes (e.g. a routine's cracking moves with no safety answers yet) may come first.
    lines = [line for line in done.stderr.splitlines() if not line.startswith("note: ")]
    report = f"{command} x {condition}: exit {done.returncode}\nstderr: {done.stderr[-2000:]}"
    assert "Traceback" not in done.stderr, report
    assert "internal error" not in done.stderr, report
    assert done.returncode == want, report
    if want:
        assert len(lines) == 1, report
        assert lines[0].strip(), report
    with contextlib.suppress(FileNotFoundError):
        leftovers = [p.name for p in (tmp_path / "out").rglob(".*voicecoach-part*")]
        assert not leftovers, report
    if target == "out":  # found before any work: not one cue was spoken into the cache
        assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()], report


@pytest.mark.parametrize("locked", ["track", "transcript"])
def test_a_destination_file_that_cannot_be_replaced_is_found_before_any_speech(
    tmp_path: Path, locked: str
) -> None:
    """An immutable track or transcript already at the destination: its folder can be written,
    so only the final rename would fail, after every cue was spoken (and, for the transcript,
    after the new track replaced the old one). Found first: exit 1, one line, nothing spoken,
    both files as they were."""
    if not _chattr_works(tmp_path):
        pytest.skip("no way to make a file immutable for root here (chattr +i)")
    (tmp_path / "r.yaml").write_text(ROUTINE)
    env = {"VOICECOACH_DATA_DIR": str(tmp_path / "data"),
           "VOICECOACH_CACHE_DIR": str(tmp_path / "cache")}
    assert run_cli("export", "r.yaml", "-o", "y.mp3", "--transcript", cwd=tmp_path,
                   env=env).returncode == 0
    (tmp_path / "r.yaml").write_text(ROUTINE.replace("title:", "title: New"))
    env["VOICECOACH_CACHE_DIR"] = str(tmp_path / "fresh-cache")
    before = {n: (tmp_path / n).read_bytes() for n in ("y.mp3", "y.lrc")}
    target = tmp_path / ("y.mp3" if locked == "track" else "y.lrc")
    subprocess.run(["chattr", "+i", str(target)], check=True)
    try:
        done = run_cli("export", "r.yaml", "-o", "y.mp3", "--transcript", cwd=tmp_path, env=env)
    finally:
        subprocess.run(["chattr", "-i", str(target)], check=False)
    lines = [line for line in done.stderr.splitlines() if not line.startswith("note: ")]
    assert done.returncode == 1 and len(lines) == 1 and target.name in lines[0], done.stderr
    assert {n: (tmp_path / n).read_bytes() for n in before} == before
    assert not [p for p in (tmp_path / "fresh-cache").rglob("*") if p.is_file()]
