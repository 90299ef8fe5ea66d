"""Benchmark live play on miniaudio's null device, in real time: cue onset error, drift, start-up.

Runs the real command (`voicecoach play ROUTINE --audio none --events FILE`) on a routine of at
least --minutes minutes (default 10; the run takes that long), from a warm clip cache, and reads
the events file. Not a test: it prints figures and whether they meet the targets.

Onset error of cue i = (actual_i - actual_0) - (planned_i - planned_0): the plan anchored at the
first cue's onset. `actual` is when the device took the cue's first frame (monotonic clock), so
the figures include the null device's habit of taking one or two 10 ms periods ahead of time.
Start-up = first cue's `actual` minus the moment this script started the process (CLOCK_MONOTONIC
is shared by all processes), so it includes Python's start, imports, prepare and the device.

    .venv/bin/python scripts/bench_live.py [--minutes 10] [--startup-runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_routines import write_routine

TARGETS = {"p99_ms": 20.0, "drift_ms": 50.0, "startup_s": 0.5}


def command() -> list[str]:
    script = Path(sys.executable).with_name("voicecoach")
    return [str(script)] if script.exists() else [sys.executable, "-m", "voicecoach"]


def play(routine: Path, events: Path, env: dict[str, str], stop_after_first: bool) -> float:
    """Run `play`; return the process start time (monotonic)."""
    args = [*command(), "play", str(routine), "--audio", "none", "--events", str(events)]
    started = time.monotonic()
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=env, text=True)
    if stop_after_first:
        while proc.poll() is None and not (events.exists() and events.read_text().strip()):
            time.sleep(0.01)
        proc.terminate()
    _, err = proc.communicate()
    if stop_after_first and proc.returncode not in (0, 143, -15):
        raise SystemExit(f"play failed ({proc.returncode}): {err.strip()}")
    if not stop_after_first and proc.returncode != 0:
        raise SystemExit(f"play failed ({proc.returncode}): {err.strip()}")
    return started


def cues(events: Path) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in events.read_text(encoding="utf-8").splitlines()]
    return [line for line in lines if line["type"] == "cue" and not line["repeat"]]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--startup-runs", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="voicecoach-bench-live-"))
    # Private cache and history: the bench neither uses nor records the user's sessions.
    env = {**os.environ, "VOICECOACH_CACHE_DIR": str(work / "cache"),
           "VOICECOACH_DATA_DIR": str(work / "data")}
    try:
        routine = write_routine(work / "bench.yaml", args.minutes)
        # Warm the caches as a second session would find them: one start, not timed.
        play(routine, work / "warm.jsonl", env, stop_after_first=True)

        startups = []
        for i in range(args.startup_runs):
            events = work / f"startup-{i}.jsonl"
            started = play(routine, events, env, stop_after_first=True)
            startups.append(float(cues(events)[0]["actual"]) - started)

        events = work / "session.jsonl"
        cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = play(routine, events, env, stop_after_first=False)
        wall = time.monotonic() - started
        cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        report(cues(events), started, startups, wall,
               (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def report(found: list[dict], started: float, startups: list[float], wall: float,
           cpu: float) -> None:
    first = found[0]
    errors = [((float(c["actual"]) - float(first["actual"]))
               - (float(c["planned"]) - float(first["planned"]))) * 1000 for c in found]
    size = [abs(e) for e in errors]
    latency = statistics.median(errors)  # the device's constant lead, not an onset error
    jitter = [abs(e - latency) for e in errors]
    drift = errors[-1]
    duration = float(found[-1]["planned"])
    startup = float(first["actual"]) - started
    figures = {"p99_ms": percentile(size, 0.99), "drift_ms": abs(drift),
               "startup_s": max([startup, *startups])}
    print(f"routine: {duration / 60:.1f} min of plan, {len(found)} cues, "
          f"run took {wall:.1f} s wall, {cpu:.1f} s CPU ({100 * cpu / wall:.1f}% of one core)")
    print(f"onset error vs plan (anchored at the first cue), |ms|: p50 {percentile(size, 0.5):.1f}"
          f"  p99 {figures['p99_ms']:.1f}  max {max(size):.1f}")
    print(f"  signed: median {latency:+.1f} ms (device takes frames ahead), "
          f"min {min(errors):+.1f}, max {max(errors):+.1f}")
    print(f"  around the median (jitter), |ms|: p50 {percentile(jitter, 0.5):.1f}"
          f"  p99 {percentile(jitter, 0.99):.1f}  max {max(jitter):.1f}")
    print(f"drift at the end (last cue, {duration:.0f} s in): {drift:+.1f} ms")
    print(f"start to first audio: {startup:.3f} s in this run; "
          f"{len(startups)} more starts: " + ", ".join(f"{s:.3f}" for s in startups) + " s")
    for name, limit in TARGETS.items():
        verdict = "ok" if figures[name] <= limit else "MISSED"
        print(f"target {name} <= {limit:g}: {figures[name]:.3f} {verdict}")


if __name__ == "__main__":
    main()
