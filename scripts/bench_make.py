"""CPU cost of `voicecoach make` (today's session from the whole library), as a ratio to loading
the bundled library in the same run.

    .venv/bin/python scripts/bench_make.py [--requests 40] [--seed 12345] [--repeat 3]

Each request is a seeded random one (3-30 minutes, a focus or none, a mat and up to two more
things, gentle or not, a day of 2026) made with real espeak-ng clip lengths (the clip cache is
warmed first, so speech is measured, not rendered) on a fresh history. The reference is reading
and checking every bundled routine file (load_routine): work `make` does not repeat, so the
ratio moves only with make's own cost. Both are process CPU time; the best of --repeat counts.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
import tempfile
import time
from pathlib import Path

from voicecoach.coach import today
from voicecoach.plan.compose import Refusal, Request
from voicecoach.routine.library import bundled
from voicecoach.routine.loader import load_routine
from voicecoach.routine.model import Area
from voicecoach.safety.history import History
from voicecoach.safety.rules import Screening
from voicecoach.speech import VoiceSettings, get_engine
from voicecoach.storage.cache import ClipCache

GEAR = ["mat", "foam roller", "chair", "bed", "tennis ball", "wall", "towel"]


def requests(n: int, seed: int) -> list[Request]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        focus = tuple(rng.sample([a.value for a in Area], rng.randrange(0, 2)))
        gear = ("mat", *rng.sample(GEAR[1:], rng.randrange(0, 3)))
        day = dt.date(2026, 1, 1) + dt.timedelta(days=rng.randrange(365))
        out.append(Request(float(rng.randrange(3, 31)), day, focus=focus, equipment=gear,
                           gentle=rng.random() < 0.2))
    return out


def cpu(work) -> float:  # type: ignore[no-untyped-def]
    start = time.process_time()
    work()
    return time.process_time() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--seed", type=int, default=12345)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    measure = today.speech_measure(get_engine(None), VoiceSettings(), ClipCache())
    asked = requests(args.requests, args.seed)
    files = list(bundled().values())
    folder = Path(tempfile.mkdtemp(prefix="bench-make-"))
    made = refused = 0

    def make_all() -> None:
        nonlocal made, refused
        made = refused = 0
        for i, request in enumerate(asked):
            history = History(folder / f"h{time.monotonic_ns()}-{i}")
            moment = dt.datetime.combine(request.day, dt.time(12)).timestamp()
            try:
                today.make(request, measure, history=history, screening=Screening(), now=moment)
                made += 1
            except Refusal:
                refused += 1

    def load_reference() -> None:
        for path in files:
            load_routine(path)

    make_all()  # warms the clip cache and the kept library: speech is measured, not rendered
    load_reference()
    makes = min(cpu(make_all) for _ in range(args.repeat))
    loads = min(cpu(load_reference) for _ in range(args.repeat))
    per_make = makes / len(asked)
    print(f"make: {len(asked)} requests ({made} made, {refused} refused) in {makes:.2f} s CPU, "
          f"{per_make * 1000:.0f} ms each")
    print(f"reference: loading the {len(files)} bundled routines, {loads * 1000:.0f} ms")
    print(f"ratio: one make = {per_make / loads:.2f} library loads")
    return 0


if __name__ == "__main__":
    sys.exit(main())
