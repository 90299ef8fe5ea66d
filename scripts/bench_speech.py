"""Time rendering N cues with each speech engine and print real-time factors."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from voicecoach.audio.pcm import SAMPLE_RATE, SAMPLE_WIDTH
from voicecoach.speech import VoiceSettings, engine_names, get_engine


def cues(n: int) -> list[str]:
    return [f"Exercise {i}: breathe in slowly and hold the stretch for {i % 30 + 5} seconds."
            for i in range(n)]  # fmt: skip


def measure(name: str, n: int) -> dict[str, float]:
    """Render n cues in this process (libespeak-ng allows one espeak engine per process)."""
    started = time.perf_counter()
    engine = get_engine(name)
    startup = time.perf_counter() - started
    started = time.perf_counter()
    samples = sum(len(engine.synthesize(t, VoiceSettings())) for t in cues(n)) // SAMPLE_WIDTH
    wall = time.perf_counter() - started
    audio = samples / SAMPLE_RATE
    return {"startup_s": startup, "audio_s": audio, "wall_s": wall, "x_realtime": audio / wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cues", type=int, default=200)
    parser.add_argument("--engine", help="measure one engine in this process (JSON out)")
    args = parser.parse_args()
    if args.engine:
        print(json.dumps(measure(args.engine, args.cues)))
        return
    print(f"{'engine':10} {'startup':>9} {'audio':>9} {'wall':>8} {'x real time':>12}")
    for name in engine_names():
        child = subprocess.run(
            [sys.executable, __file__, "--engine", name, "--cues", str(args.cues)],
            capture_output=True, text=True,
        )  # fmt: skip
        if child.returncode:
            print(f"{name:10} failed: {child.stderr.strip().splitlines()[-1:]}")
            continue
        r = json.loads(child.stdout)
        print(f"{name:10} {r['startup_s']:8.3f}s {r['audio_s']:8.1f}s {r['wall_s']:7.2f}s"
              f" {r['x_realtime']:11.0f}x")  # fmt: skip


if __name__ == "__main__":
    main()
