"""Faults never cost the user a file: interruption, full disks, damaged caches, broken engines,
concurrent exports and hostile names. Each test runs the real CLI in a subprocess."""

from __future__ import annotations

import json
import os
import random
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mutagen.id3 import ID3

from helpers import decoded
from voicecoach.cache import ClipCache

ROUTINE = """\
title: Fault test
exercises:
  - name: Knees to chest
    setup: ["Lie on your back.", "Hug both knees."]
    hold: 1m
  - name: Twist
    sides: [left, right]
    setup: ["Drop both knees to the {side}."]
    hold: 1m
"""
SEED = int(os.environ.get("VOICECOACH_FAULT_SEED", time.time_ns() % 2**32))
PART = ".voicecoach-part"


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "voicecoach", *args]


def leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if PART in p.name]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A routine, a warm cache, and the expected plan length of its export."""
    folder = tmp_path_factory.mktemp("faults")
    (folder / "r.yaml").write_text(ROUTINE, encoding="utf-8")
    shown = subprocess.run(cli("show", "r.yaml", "--json"), cwd=folder, capture_output=True,
                           text=True, check=True)
    return {"folder": folder, "duration": json.loads(shown.stdout)["duration"]}


def is_complete(path: Path, duration: float) -> bool:
    return abs(len(decoded(path)) / 22050 - duration) < 0.05 and "TIT2" in ID3(path)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_exports_leave_the_old_file_or_a_complete_new_one(workdir: dict, signum: int) -> None:
    folder: Path = workdir["folder"]  # type: ignore[assignment]
    dest = folder / f"out-{signum}.mp3"
    previous = b"ID3 previous complete track"
    rng = random.Random(SEED + signum)
    outcomes = {"old": 0, "new": 0}
    for attempt in range(20):
        dest.write_bytes(previous)
        moment = rng.uniform(0.05, 1.2)
        proc = subprocess.Popen(cli("export", "r.yaml", "-o", dest.name, "--quiet"), cwd=folder,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(moment)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
        where = f"seed {SEED}, attempt {attempt}, {moment:.2f}s, rc {proc.returncode}: {err!r}"
        assert "Traceback" not in err, where
        assert not leftovers(folder), where
        if dest.read_bytes() == previous:
            outcomes["old"] += 1
            assert proc.returncode in (130, 143, -signum), where
        else:
            outcomes["new"] += 1
            assert is_complete(dest, workdir["duration"]), where  # type: ignore[arg-type]
    assert outcomes["old"] > 0, outcomes


def test_sigkill_never_leaves_a_partial_file_and_the_next_run_cleans_up(workdir: dict) -> None:
    folder: Path = workdir["folder"]  # type: ignore[assignment]
    dest = folder / "killed.mp3"
    rng = random.Random(SEED)
    stale_seen = 0
    for attempt in range(8):
        if dest.exists():
            dest.unlink()
        moment = rng.uniform(0.0, 0.2)
        proc = subprocess.Popen(cli("export", "r.yaml", "-o", dest.name, "--quiet"), cwd=folder,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if attempt % 2:
            time.sleep(0.2 + 4 * moment)  # anywhere from start-up to the end
        else:  # while the track is being encoded
            deadline = time.monotonic() + 30
            while not leftovers(folder) and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.002)
            time.sleep(moment)
        proc.kill()
        proc.wait()
        where = f"seed {SEED}, attempt {attempt}, {moment:.2f}s"
        assert not dest.exists() or is_complete(dest, workdir["duration"]), where  # type: ignore[arg-type]
        stale_seen += bool(leftovers(folder))
    done = subprocess.run(cli("export", "r.yaml", "-o", dest.name, "--quiet"), cwd=folder,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert not leftovers(folder)
    assert is_complete(dest, workdir["duration"])  # type: ignore[arg-type]
    assert stale_seen, "no kill landed mid-encode; the clean-up was not exercised"


def _limit_file_size(limit: int):  # type: ignore[no-untyped-def]
    def apply() -> None:
        # A full disk, as the process sees it: writes past `limit` fail with EFBIG.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


@pytest.mark.parametrize("limit", [200_000, 1_300_000], ids=["while-spooling", "while-encoding"])
def test_a_full_disk_gives_one_clear_error_and_nothing_partial(workdir: dict, limit: int) -> None:
    folder: Path = workdir["folder"]  # type: ignore[assignment]
    dest = folder / f"full-{limit}.mp3"
    proc = subprocess.run(cli("export", "r.yaml", "-o", dest.name), cwd=folder,
                          capture_output=True, text=True, preexec_fn=_limit_file_size(limit))
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.count("\n") == 1 and "disk full" in proc.stderr, proc.stderr
    assert not dest.exists() and not leftovers(folder)
    cache = ClipCache(Path(os.environ["VOICECOACH_CACHE_DIR"]))
    for entry in Path(os.environ["VOICECOACH_CACHE_DIR"]).rglob("*"):
        if entry.is_file() and PART not in entry.name and not entry.name.startswith("."):
            assert cache.get(entry.stem) is not None, entry
    again = subprocess.run(cli("export", "r.yaml", "-o", dest.name), cwd=folder,
                           capture_output=True, text=True)
    assert again.returncode == 0 and is_complete(dest, workdir["duration"])  # type: ignore[arg-type]


def test_a_damaged_cache_is_detected_and_repaired(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(ROUTINE, encoding="utf-8")
    env = {**os.environ, "VOICECOACH_CACHE_DIR": str(tmp_path / "cache")}
    first = subprocess.run(cli("export", "r.yaml", "-o", "a.mp3", "--json"), cwd=tmp_path,
                           env=env, capture_output=True, text=True, check=True)
    duration = json.loads(first.stdout)[0]["duration"]
    entries = sorted(p for p in (tmp_path / "cache").rglob("*") if p.is_file())
    assert len(entries) > 5
    rng = random.Random(SEED)
    damaged = rng.sample(entries, k=len(entries) // 2)
    for i, entry in enumerate(damaged):
        data = entry.read_bytes()
        if i % 3 == 0:
            entry.write_bytes(data[: rng.randrange(len(data))])
        elif i % 3 == 1:
            entry.write_bytes(os.urandom(len(data)))
        else:
            flip = bytearray(data)
            flip[rng.randrange(40, len(flip))] ^= 0xFF
            entry.write_bytes(bytes(flip))
    second = subprocess.run(cli("export", "r.yaml", "-o", "b.mp3", "--json"), cwd=tmp_path,
                            env=env, capture_output=True, text=True)
    assert second.returncode == 0, second.stderr
    # Speech rendered again may differ from the first rendering by a few samples a clip.
    again = json.loads(second.stdout)[0]["duration"]
    assert abs(again - duration) < 0.1
    assert is_complete(tmp_path / "b.mp3", again)
    # Repaired: a third export finds every entry it needs valid, so it writes nothing new.
    # (A damaged entry that no export reads any more may stay; it would be caught if read.)
    # (inode, size): a rewritten entry is a new file (written beside it, then renamed), while
    # reading one only touches its time (recently used).
    before = {p: (p.stat().st_ino, p.stat().st_size)
              for p in (tmp_path / "cache").rglob("*") if p.is_file()}
    third = subprocess.run(cli("export", "r.yaml", "-o", "c.mp3", "--json"), cwd=tmp_path,
                           env=env, capture_output=True, text=True)
    assert third.returncode == 0, third.stderr
    after = {p: (p.stat().st_ino, p.stat().st_size)
             for p in (tmp_path / "cache").rglob("*") if p.is_file()}
    assert after == before, f"the cache was still being repaired (seed {SEED})"
    assert json.loads(third.stdout)[0]["duration"] == json.loads(second.stdout)[0]["duration"]


@pytest.mark.parametrize("variable,value,words", [
    ("VOICECOACH_ESPEAK_DATA", "/nonexistent/espeak-ng-data", "voice data"),
    ("VOICECOACH_FFMPEG", "/nonexistent/ffmpeg", "ffmpeg"),
])
def test_broken_engines_give_one_clear_error(tmp_path: Path, variable: str, value: str, words: str) -> None:
    (tmp_path / "r.yaml").write_text(ROUTINE, encoding="utf-8")
    (tmp_path / "out.mp3").write_bytes(b"old")
    env = {**os.environ, variable: value, "VOICECOACH_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.run(cli("export", "r.yaml", "-o", "out.mp3"), cwd=tmp_path, env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.count("\n") == 1 and words in proc.stderr and "Traceback" not in proc.stderr
    assert (tmp_path / "out.mp3").read_bytes() == b"old" and not leftovers(tmp_path)


def test_two_exports_to_one_destination_give_one_complete_file(workdir: dict) -> None:
    folder: Path = workdir["folder"]  # type: ignore[assignment]
    dest = folder / "both.mp3"
    procs = [subprocess.Popen(cli("export", "r.yaml", "-o", dest.name, "--quiet", *extra),
                              cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for extra in ([], ["--bitrate", "96"])]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    assert is_complete(dest, workdir["duration"])  # type: ignore[arg-type]
    assert not leftovers(folder)


HOSTILE = """\
title: "../../etc/passwd \\x01\\x1b[31m ROUTINE"
exercises:
  - name: "../../../escape"
    hold: 2s
  - name: "a/b\\\\c:d*e?f<g>h|i"
    hold: 2s
  - name: "\\x07\\x08 bell and backspace"
    hold: 2s
  - name: "CON"
    hold: 2s
  - name: "{long}"
    hold: 2s
  - name: "..."
    hold: 2s
"""


def test_hostile_names_stay_inside_the_chosen_folder(tmp_path: Path) -> None:
    (tmp_path / "work").mkdir()
    routine = tmp_path / "work" / "..hostile..yaml"
    routine.write_text(HOSTILE.replace("{long}", "x" * 300), encoding="utf-8")
    before = set(tmp_path.rglob("*"))
    proc = subprocess.run(cli("export", routine.name, "--split", "-o", "out", "--json"),
                          cwd=tmp_path / "work", capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    written = set(tmp_path.rglob("*")) - before
    out = tmp_path / "work" / "out"
    assert written and all(p == out or p.parent == out for p in written), written
    for p in written - {out}:
        assert len(p.name) <= 80
        assert all(c.isalnum() or c in "-._" for c in p.name), p.name
        assert not p.name.startswith(".") and p.name.split(".")[0].lower() != "con"
