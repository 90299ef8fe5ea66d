"""The live transport on its own: synthetic frames and a fake clock, no sound device, no real
time. Each timeline frame carries its own index, so the output says exactly what was played."""

from __future__ import annotations

import array
import itertools
import random

import pytest

from voicecoach.live.transport import (
    FADE_MS,
    RESTART_GRACE,
    Mark,
    Onset,
    Skip,
    Transport,
    sections,
)
from voicecoach.plan.timeline import MIN_GAP, Plan, PlanOptions, build_plan
from voicecoach.routine.loader import load_routine

ROUTINE = """\
title: Tiny
cautions: ["Stop if it hurts."]
defaults: {rest: 2s, countdown: 0, step_pause: 0.5s}
exercises:
  - name: Arms up
    hold: 2s
  - name: Knees in
    hold: 2s
  - name: Twist
    hold: 2s
"""
#: Every sample of a repeated clip has this value; timeline frames are 1..20000.
CLIP = -7
PERIOD = 220  # frames per fill: 10 ms at 22.05 kHz, as the device asks


def frame_value(i: int) -> int:
    return 1 + i % 20000


def run_of(start: int, n: int) -> bytes:
    """Timeline frames [start, start + n) as played at full level."""
    return array.array("h", (frame_value(i) for i in range(start, start + n))).tobytes()


class Frames:
    """A timeline source whose frame i has the value frame_value(i)."""

    def __init__(self, total: int, chunk: int = 1000) -> None:
        self.total, self.chunk, self.pos, self.restarts = total, chunk, 0, [0]

    def take(self) -> bytes | None:
        n = min(self.chunk, self.total - self.pos)
        out = array.array("h", (frame_value(i) for i in range(self.pos, self.pos + n)))
        self.pos += n
        return out.tobytes()

    def restart(self, start: int) -> None:
        self.pos = start
        self.restarts.append(start)


class Rig:
    """A transport, its source, a fake clock and everything it played."""

    def __init__(self, plan: Plan) -> None:
        self.plan, self.now, self.out = plan, 1000.0, array.array("h")
        clips = {e.text: array.array("h", [CLIP] * e.speech).tobytes()
                 for e in plan.events if e.text}
        self.source = Frames(plan.total)
        self.ended = False
        self.t = Transport(plan, clips, self.source, on_end=lambda: setattr(self, "ended", True))

    def play(self, seconds: float | None = None) -> None:
        """Fill like a device for `seconds` (None: until the session ends)."""
        left = None if seconds is None else round(seconds * self.plan.rate)
        while not self.t.done and (left is None or left > 0):
            n = PERIOD if left is None else min(PERIOD, left)
            pcm = self.t.fill(n, self.now)
            # The device gets exactly what it asked for, whatever the transport is doing: a
            # short buffer would shift every later cue against the clock.
            assert len(pcm) == 2 * n, (len(pcm), n, self.t.position)
            self.out.frombytes(pcm)
            self.now += n / self.plan.rate
            if left is not None:
                left -= n

    def marks(self, kind: str) -> list[Mark]:
        return [r for r in self.t.log if isinstance(r, Mark) and r.kind == kind]

    def onsets(self, repeat: bool = False) -> list[Onset]:
        return [r for r in self.t.log if isinstance(r, Onset) and r.repeat is repeat]


@pytest.fixture(scope="module")
def plan(tmp_path_factory: pytest.TempPathFactory) -> Plan:
    path = tmp_path_factory.mktemp("transport") / "tiny.yaml"
    path.write_text(ROUTINE, encoding="utf-8")
    return build_plan(load_routine(path), PlanOptions(lead_in=0.5))  # estimated clip lengths


def test_untouched_it_plays_the_timeline_exactly_and_logs_every_onset(plan: Plan) -> None:
    rig = Rig(plan)
    rig.play()
    assert list(rig.out[: plan.total]) == [frame_value(i) for i in range(plan.total)]
    assert not any(rig.out[plan.total:])
    spoken = [i for i, e in enumerate(plan.events) if e.text]
    assert [o.index for o in rig.onsets()] == spoken
    for onset in rig.onsets():  # on a steady clock every cue is exactly on time
        assert onset.actual == pytest.approx(onset.expected, abs=1e-9)
        assert onset.actual - 1000.0 == pytest.approx(onset.planned, abs=1e-9)
    assert [m.kind for m in rig.t.log if isinstance(m, Mark)] == ["end"] and rig.ended
    result = rig.t.result()
    assert result.completed and result.exercises_completed == ("Arms up", "Knees in", "Twist")


def test_pause_holds_the_timeline_and_resume_goes_on_where_it_stopped(plan: Plan) -> None:
    rig = Rig(plan)
    rig.play(1.0)
    rig.t.pause()
    rig.play(0.1)  # the fade out
    held = rig.t.position
    rig.play(3.0)
    assert rig.t.position == held and rig.t.state().paused
    assert rig.marks("pause") and not rig.marks("resume")
    rig.t.resume()
    rig.play()
    assert len(rig.marks("resume")) == 1
    # Silence while paused, then the timeline again from where it stopped.
    played = rig.out.tobytes()
    assert played[2 * (held - 2200): 2 * (held - 200)] == run_of(held - 2200, 2000)
    resumed_at = played.find(run_of(held + 200, 2000), 2 * held) // 2
    paused_frames = resumed_at - 200 - held
    assert paused_frames == pytest.approx(3.0 * plan.rate, abs=0.1 * plan.rate + PERIOD)
    assert not any(rig.out[held + 2 * PERIOD: resumed_at - 2 * PERIOD])  # silence meanwhile
    slack = 2 * FADE_MS / 1000 + PERIOD / plan.rate
    assert rig.t.result().paused == pytest.approx(3.0 + 0.1, abs=slack)
    shift = rig.marks("resume")[0].actual - rig.marks("pause")[0].actual
    for onset in rig.onsets():
        assert onset.actual == pytest.approx(onset.expected, abs=1e-9)
        if onset.planned > held / plan.rate:  # later cues moved by the pause, earlier did not
            assert onset.actual - 1000.0 - onset.planned == pytest.approx(shift, abs=0.02)


def test_next_and_back_seek_to_exercise_starts(plan: Plan) -> None:
    starts = [s.start for s in sections(plan)]
    rig = Rig(plan)
    rig.play(0.2)
    before = len(rig.out)
    rig.t.next_exercise()
    rig.play(0.1)
    assert rig.marks("seek")[-1].position == pytest.approx(starts[1] / plan.rate)
    assert rig.source.restarts[-1] == starts[1]
    # After the fade out, the device gets the next exercise's own frames.
    assert rig.out.tobytes().find(run_of(starts[1] + 200, 500), 2 * before) > 0
    rig.t.previous_exercise()  # within the grace: the exercise before (the introduction)
    rig.play(0.1)
    assert rig.source.restarts[-1] == starts[0]
    rig.t.next_exercise()
    rig.play(RESTART_GRACE + 0.5)
    rig.t.previous_exercise()  # later than the grace: the same exercise again
    rig.play(0.1)
    assert rig.source.restarts[-1] == starts[1]
    assert not rig.onsets(repeat=True)
    rig.play()
    assert rig.t.result().completed


def test_repeat_inserts_the_cue_and_the_timeline_waits(plan: Plan) -> None:
    first = next(e for e in plan.events if e.text)
    rig = Rig(plan)
    rig.play((first.start + first.speech) / plan.rate + 0.1)  # after the first cue, before the next
    before = rig.t.position
    rig.t.repeat_last_cue()
    rig.play(0.05)
    (again,) = rig.onsets(repeat=True)
    assert again.event == first and again.expected is None
    rig.play(first.speech / plan.rate)
    assert rig.t.position - before < PERIOD * 6  # the timeline waited for the clip
    rig.play()
    assert list(rig.out).count(CLIP) == first.speech
    gap = round(MIN_GAP * plan.rate)
    assert len(rig.out) >= plan.total + first.speech + gap
    assert [v for v in rig.out if v > 0] == [frame_value(i) for i in range(plan.total)]


# The fast lane plays 5 random command sequences; the full suite 20.
@pytest.mark.parametrize("trials", [5, pytest.param(20, marks=pytest.mark.slow)])
def test_random_commands_keep_the_invariants(plan: Plan, seed: int, trials: int) -> None:
    rng = random.Random(seed)
    for trial in range(trials):
        rig = Rig(plan)
        paused = False
        for _ in range(rng.randint(1, 12)):
            rig.play(rng.uniform(0.0, 1.5))
            command = rng.choice(["pause", "resume", "next", "back", "repeat", "gain"])
            if command == "pause":
                rig.t.pause()
                paused = True
            elif command == "resume":
                rig.t.resume()
                paused = False
            elif command == "next":
                rig.t.next_exercise()
            elif command == "back":
                rig.t.previous_exercise()
            elif command == "repeat":
                rig.t.repeat_last_cue()
            else:
                rig.t.set_gain(rng.uniform(-40, 10))
            assert 0 <= rig.t.position <= plan.total, (seed, trial)
        if paused:
            rig.t.resume()
        rig.play(60)
        assert rig.t.done and rig.t.result().completed, (seed, trial)
        # A cue cut by a fade (a pause or seek mid-word) may start up to a fade and a period
        # from where the anchor puts it; never more.
        slack = 2 * FADE_MS / 1000 + PERIOD / plan.rate
        for onset in rig.onsets():
            assert onset.expected is not None
            assert onset.actual == pytest.approx(onset.expected, abs=slack), (seed, trial)
        kinds = [m.kind for m in rig.t.log if isinstance(m, Mark) and m.kind in ("pause", "resume")]
        assert all(a != b for a, b in itertools.pairwise(kinds)), (seed, trial, kinds)


def test_stamps_never_go_back_when_the_device_asks_ahead(plan: Plan, seed: int) -> None:
    """A loaded device calls late for a big buffer, then early for the next: a seek's landing
    cue must not be stamped before the seek (CI once saw back-then-back land 'before' its seek)."""
    rng = random.Random(seed)
    for trial in range(8):
        rig = Rig(plan)
        now = 1000.0
        while not rig.t.done:
            n = rng.choice([PERIOD, PERIOD, 2 * PERIOD, 10 * PERIOD])
            roll = rng.random()
            if roll < 0.03:
                rig.t.next_exercise()
            elif roll < 0.06:
                rig.t.previous_exercise()
            elif roll < 0.08:
                rig.t.toggle_pause()
            elif roll < 0.10:
                rig.t.resume()
            rig.t.fill(n, now)
            # The next call comes anywhere from two periods early to a period late.
            now += (n + rng.uniform(-2 * PERIOD, PERIOD)) / plan.rate
        stamps = [r.actual for r in rig.t.log]
        assert stamps == sorted(stamps), (seed, trial)


def test_every_skip_is_an_event_with_where_it_came_from_and_went(plan: Plan, seed: int) -> None:
    """n and p at many random moments (bursts too): each jump they cause is logged as one
    `skip` (direction, from, to) right before its `seek`, which keeps its old shape."""
    rng = random.Random(seed)
    names = [s.name for s in sections(plan)]
    starts = [s.start for s in sections(plan)]
    for run in range(15):
        rig = Rig(plan)
        presses = 0
        while not rig.t.done and presses < 12:
            rig.play(rng.uniform(0.0, 3.0))
            for _ in range(rng.choice([1, 1, 1, 2, 3])):
                if rig.t.done:
                    break
                rng.choice([rig.t.next_exercise, rig.t.previous_exercise])()
                presses += 1
        rig.play()
        log = rig.t.log
        seeks = [i for i, r in enumerate(log) if isinstance(r, Mark) and r.kind == "seek"]
        skips = [i for i, r in enumerate(log) if isinstance(r, Skip)]
        assert [i + 1 for i in skips] == seeks, f"run {run}, seed {seed}"
        for i in skips:
            skip, seek = log[i], log[i + 1]
            assert isinstance(skip, Skip) and skip.direction in {"next", "previous"}
            assert skip.from_ in names and (skip.to in names or skip.to == "end")
            assert skip.position == seek.position
            if skip.to != "end":
                assert round(seek.position * plan.rate) == starts[names.index(skip.to)]
            assert set(skip.as_json()) == {"type", "direction", "from", "to", "position", "actual"}
            assert set(seek.as_json()) == {"type", "position", "actual"}  # unchanged for readers
