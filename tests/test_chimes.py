"""Chime placement on its own: a pure pass from timed events and blocks to chimes, no speech."""

from __future__ import annotations

import random

from voicecoach.plan.timeline import (
    CHIME_GUARD,
    CHIME_SECONDS,
    TICK_SECONDS,
    Block,
    Chime,
    ChimeKind,
    Event,
    Kind,
    place_chimes,
)

#: A round rate keeps the arithmetic readable: a frame is a millisecond.
RATE = 1000
GUARD, CHIME, TICK = round(CHIME_GUARD * RATE), round(CHIME_SECONDS * RATE), round(
    TICK_SECONDS * RATE)


def hold(start: int, speech: int, length: int) -> tuple[list[Event], Block]:
    """A hold block: its cue at `start`, `speech` frames long, silence to `length`."""
    event = Event(Kind.HOLD, "Hold.", "A", start, length, speech)
    return [event], Block("hold", start, start + speech, start + length)


def test_a_hold_gets_a_start_and_an_end_chime_in_its_silence() -> None:
    events, block = hold(0, 1000, 10_000)
    chimes = place_chimes(events, [block], RATE, chimes=True, ticks=False, countdown=3)
    assert chimes == (Chime(ChimeKind.HOLD_START, 1000 + GUARD, CHIME),
                      Chime(ChimeKind.HOLD_END, 10_000 - GUARD - CHIME, CHIME))


def test_a_rest_gets_only_its_end_chime() -> None:
    events = [Event(Kind.REST, "Rest.", None, 0, 5000, 800)]
    chimes = place_chimes(events, [Block("rest", 0, 800, 5000)], RATE, chimes=True, ticks=False,
                          countdown=3)
    assert chimes == (Chime(ChimeKind.REST_END, 5000 - GUARD - CHIME, CHIME),)


def test_no_chime_where_speech_leaves_no_room() -> None:
    events, block = hold(0, 1000, 10_000)
    # A cue ends just before the end chime would start, closer than the guard: it is left out.
    cue = Event(Kind.COUNTDOWN, "one", "A", 9000, 1000, 9600 - GUARD // 2 - 9000)
    chimes = place_chimes([*events, cue], [block], RATE, chimes=True, ticks=False, countdown=3)
    assert [c.kind for c in chimes] == [ChimeKind.HOLD_START]
    # Nor does a chime run past the plan's end.
    short = [Event(Kind.HOLD, "Hold.", "A", 0, 1000, 500)]
    assert place_chimes(short, [Block("hold", 0, 500, 1000)], RATE, chimes=True, ticks=False,
                        countdown=0) == (Chime(ChimeKind.HOLD_START, 500 + GUARD, CHIME),)


def test_ticks_on_each_second_or_half_a_second_after_a_spoken_number() -> None:
    events, block = hold(0, 1000, 10_000)
    silent = place_chimes(events, [block], RATE, chimes=False, ticks=True, countdown=3)
    assert [(c.kind, c.start) for c in silent] == [(ChimeKind.TICK, t) for t in (7000, 8000, 9000)]
    numbers = [Event(Kind.COUNTDOWN, n, "A", at, 1000, 300)
               for n, at in (("three", 7000), ("two", 8000), ("one", 9000))]
    spoken = place_chimes([*events, *numbers], [block], RATE, chimes=False, ticks=True,
                          countdown=3)
    assert [c.start for c in spoken] == [7500, 8500, 9500]


def test_off_means_none_and_the_inputs_are_left_as_they_were() -> None:
    events, block = hold(0, 1000, 10_000)
    assert place_chimes(events, [block], RATE, chimes=False, ticks=False, countdown=3) == ()
    before = list(events)
    place_chimes(events, [block], RATE, chimes=True, ticks=True, countdown=3)
    assert events == before


def test_random_plans_keep_every_chime_in_silence(seed: int) -> None:
    """Many random layouts of cues and blocks: every chime lies inside the plan, keeps the guard
    from all speech and half of it from other chimes, and they come in time order."""
    rng = random.Random(seed)
    for trial in range(300):
        events: list[Event] = []
        blocks: list[Block] = []
        at = rng.randrange(0, 2000)
        for _ in range(rng.randrange(1, 8)):
            speech = rng.randrange(0, 2500)
            length = speech + rng.randrange(0, 12_000)
            if rng.random() < 0.6:
                blocks.append(Block(rng.choice(["hold", "rest"]), at, at + speech, at + length))
            events.append(Event(Kind.HOLD, "x", None, at, length, speech))
            # Inner cues at random moments after it, as a block's breaths and countdown are:
            # speech never overlaps speech.
            free = at + speech
            for _ in range(rng.randrange(0, 4)):
                inner = free + rng.randrange(0, 3000)
                said = rng.randrange(1, 800)
                if inner + said > at + length:
                    break
                events.append(Event(Kind.BREATH, "y", None, inner, 0, said))
                free = inner + said
            at += length
        events.sort(key=lambda e: e.start)
        events.append(Event(Kind.FINISH, "z", None, at, 500, 400))
        chimes = place_chimes(events, blocks, RATE, chimes=rng.random() < 0.8,
                              ticks=rng.random() < 0.5, countdown=rng.randrange(0, 5))
        speech_spans = [(e.start, e.start + e.speech) for e in events if e.speech]
        assert list(chimes) == sorted(chimes, key=lambda c: c.start), (seed, trial)
        for i, c in enumerate(chimes):
            assert c.start >= 0 and c.end <= events[-1].end, (seed, trial, c)
            assert all(c.end + GUARD <= s or e + GUARD <= c.start for s, e in speech_spans), (
                seed, trial, c)
            assert all(c.end + GUARD // 2 <= d.start or d.end + GUARD // 2 <= c.start
                       for d in chimes[i + 1:]), (seed, trial, c)
