"""Benchmark `voicecoach serve`: time to the first audio byte, and memory while serving.

Run: .venv/bin/python scripts/bench_serve.py [--tracks 10] [--clients 5]
A real server process in fresh data and track folders (the clip cache is the usual one, so speech
already rendered is reused, as for a user). Reports:
  - the routine list of the bundled library: first request, and later ones (files kept while
    unchanged);
  - time to first audio byte of an uncached track (made on demand: speech, levelling, encoding)
    and of the same track cached, and their ratio;
  - the server's resident memory (VmRSS, and its high-water mark VmHWM) after it started, after
    making the tracks, and after serving every track whole to each of N concurrent clients
    (with Range requests, as phones do).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: N-1 short routines of different lengths (N distinct tracks with five-minute-back).
SMALL = """\
title: Bench {n}
exercises:
  - name: Neck turn {n}
    setup: [Turn your head to the left.]
    hold: {hold}s
  - name: Shoulder roll {n}
    setup: [Roll your shoulders back.]
    hold: {hold}s
"""


def _mem(pid: int) -> tuple[float, float]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return (int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024)


def _first_byte(url: str) -> float:
    """Seconds from asking the page's API for a routine to the first byte of its audio."""
    start = time.perf_counter()
    with urllib.request.urlopen(url, timeout=600) as answer:
        track = json.load(answer)["track"]
    request = urllib.request.Request(track, headers={"Range": "bytes=0-"})
    with urllib.request.urlopen(request, timeout=600) as answer:
        answer.read(1)
    return time.perf_counter() - start


def _fetch_all(track: str) -> int:
    """The whole track in 256 KB Range requests, as a phone's player fetches it."""
    size, got = None, 0
    while size is None or got < size:
        request = urllib.request.Request(track, headers={"Range": f"bytes={got}-{got + 262143}"})
        with urllib.request.urlopen(request, timeout=600) as answer:
            size = int(answer.headers["Content-Range"].rsplit("/", 1)[1])
            got += len(answer.read())
    return got


def _list_times(env: dict[str, str]) -> None:
    """The routine list of the bundled library: the first request (every file read), then
    each later one (files unchanged: only today's decisions are made again)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "voicecoach", "serve", "--host", "127.0.0.1", "--port", "0",
         "--json"], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        url = json.loads(proc.stdout.readline())["url"] + "api/routines"
        times = []
        for _ in range(21):
            start = time.perf_counter()
            with urllib.request.urlopen(url, timeout=600) as answer:
                count = len(json.load(answer)["routines"])
            times.append(time.perf_counter() - start)
        later = sorted(times[1:])[10]
        print(f"routine list, bundled library ({count} routines): first {times[0] * 1000:.0f} ms,"
              f" later {later * 1000:.0f} ms (median of 20), ratio {times[0] / later:.0f}x")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=10)
    parser.add_argument("--clients", type=int, default=5)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="voicecoach-bench-serve-"))
    folder = home / "routines"
    folder.mkdir()
    for n in range(args.tracks - 1):
        (folder / f"bench-{n}.yaml").write_text(SMALL.format(n=n, hold=20 + 5 * n))
    shutil.copy(ROOT / "routines" / "five-minute-back.yaml", folder)
    env = {**os.environ, "VOICECOACH_DATA_DIR": str(home / "data"),
           "VOICECOACH_TRACKS_DIR": str(home / "tracks")}
    subprocess.run([sys.executable, "-m", "voicecoach", "safety", *(
        f"--answer={k}=no" for k in ("chronic", "diagnosis", "surgery", "pregnant", "condition"))],
        env=env, check=True, capture_output=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "voicecoach", "serve", "--host", "127.0.0.1", "--port", "0",
         "--json", "--no-library", "--routines", str(folder)],
        stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        url = json.loads(proc.stdout.readline())["url"]
        started = _mem(proc.pid)
        _list_times(env)
        ids = sorted(p.stem for p in folder.glob("*.yaml"))
        uncached = _first_byte(f"{url}api/routines/five-minute-back")
        cached = min(_first_byte(f"{url}api/routines/five-minute-back") for _ in range(5))
        print(f"first audio byte, five-minute-back (5.5 min): uncached {uncached:.2f} s, "
              f"cached {cached * 1000:.0f} ms (best of 5), ratio {uncached / cached:.0f}x")
        tracks = []
        for rid in ids:
            with urllib.request.urlopen(f"{url}api/routines/{rid}", timeout=600) as answer:
                tracks.append(json.load(answer)["track"])
        made = _mem(proc.pid)
        served = [0] * args.clients

        def client(k: int) -> None:
            for track in tracks:
                served[k] += _fetch_all(track)

        threads = [threading.Thread(target=client, args=(k,)) for k in range(args.clients)]
        begin = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        took = time.perf_counter() - begin
        after = _mem(proc.pid)
        total = sum(served) / 1e6
        print(f"served {len(tracks)} tracks whole to {args.clients} clients at once: "
              f"{total:.1f} MB in {took:.1f} s ({total / took:.0f} MB/s)")
        print(f"server memory (RSS / peak): started {started[0]:.0f} / {started[1]:.0f} MB, "
              f"after making {len(tracks)} tracks {made[0]:.0f} / {made[1]:.0f} MB, after "
              f"serving {after[0]:.0f} / {after[1]:.0f} MB (serving added "
              f"{after[0] - made[0]:+.0f} MB)")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
