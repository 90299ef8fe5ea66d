"""Live play, headless: real espeak-ng speech on miniaudio's null device at real-time speed.

Tolerances: the null device asks for PERIOD_MS (10 ms) periods and takes them one or two
periods ahead of real time, so an onset stamped from its callbacks moves by up to 20 ms;
a command acts at the next period. 30 ms (three periods) covers both and nothing more."""

from __future__ import annotations

import array
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from voicecoach.cli.live_view import KeyParser, big_text, countdown_text
from voicecoach.errors import UserError
from voicecoach.live.player import (
    FADE_MS,
    MAX_GAIN_DB,
    PERIOD_MS,
    RESTART_GRACE,
    Mark,
    NoSoundDevice,
    Onset,
    Player,
    exercise_start,
    open_device,
    scale,
    sections,
)
from voicecoach.plan.timeline import MIN_GAP, PlanOptions
from voicecoach.routine.loader import load_routine

#: Onsets are stamped by the audio thread on the wall clock: three device periods, and as much
#: again for a callback that runs late on a loaded 2-core machine (31 ms was seen there).
TOL = 6 * PERIOD_MS / 1000
RATE = 22050
FADE = RATE * FADE_MS // 1000

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


@pytest.fixture(scope="module")
def routine_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("play") / "tiny.yaml"
    path.write_text(ROUTINE, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def prepared(routine_path: Path):  # type: ignore[no-untyped-def]
    from voicecoach.audio.prepare import prepare
    from voicecoach.speech import VoiceSettings, get_engine
    from voicecoach.storage.cache import ClipCache

    made = prepare(load_routine(routine_path), PlanOptions(lead_in=0.0), engine=get_engine(None),
                   settings=VoiceSettings(), cache=ClipCache())
    yield made
    made.close()


def onsets(player: Player) -> list[Onset]:
    return [r for r in list(player.log) if isinstance(r, Onset)]


def marks(player: Player, kind: str) -> list[Mark]:
    return [r for r in list(player.log) if isinstance(r, Mark) and r.kind == kind]


def wait_until(check: Callable[[], object], timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.005)


def samples(pcm: bytes) -> array.array[int]:
    out = array.array("h")
    out.frombytes(pcm)
    return out


def timeline(prepared, start: int = 0) -> bytes:  # type: ignore[no-untyped-def]
    return b"".join(prepared.stream(start))


def section_start(prepared, n: int) -> int:  # type: ignore[no-untyped-def]
    return sections(prepared.plan)[n].start


# --- timing -------------------------------------------------------------------------------------


@pytest.mark.slow  # real-time playback
def test_a_pause_shifts_the_rest_of_the_timeline_by_its_length(prepared) -> None:  # type: ignore[no-untyped-def]
    start = section_start(prepared, 1)
    taken: list[bytes] = []
    player = Player(prepared, audio="none", start=start, tap=taken.append)
    player.start()
    try:
        wait_until(lambda: onsets(player))
        time.sleep(0.2)  # in the middle of "Arms up."
        paused_at = time.monotonic()
        player.pause()
        time.sleep(0.6)
        resumed_at = time.monotonic()
        player.resume()
        wait_until(lambda: len(onsets(player)) >= 3)
        player.stop()
        result = player.wait(10)
    finally:
        player.close()
    assert result is not None
    first, *later = onsets(player)
    assert abs(result.paused - (resumed_at - paused_at)) <= TOL
    assert later
    for cue in later:
        shift = (cue.actual - first.actual) - (cue.planned - first.planned)
        assert abs(shift - result.paused) <= TOL, cue
        # The player's own expectation already includes the pause.
        assert abs(cue.actual - cue.expected) <= TOL
    # What the device got: the stream up to the pause, silence, the stream again from there.
    out, ref = samples(b"".join(taken)), samples(timeline(prepared, start))
    cut = round(marks(player, "pause")[0].position * RATE) - start
    gap = round(result.paused * RATE)
    assert out[: cut - FADE] == ref[: cut - FADE]
    assert not any(out[cut : cut + gap])
    assert out[cut + gap + FADE : cut + gap + RATE] == ref[cut + FADE : cut + RATE]
    assert any(ref[cut - FADE : cut]), "the pause should cut into speech"


@pytest.mark.slow  # real-time playback
def test_skip_lands_on_the_next_exercise_and_back_restarts_it(prepared) -> None:  # type: ignore[no-untyped-def]
    plan, parts = prepared.plan, sections(prepared.plan)
    first_cue = {s.start: next(i for i, e in enumerate(plan.events) if e.start == s.start)
                 for s in parts}
    taken: list[bytes] = []
    player = Player(prepared, audio="none", tap=taken.append)

    def landing(command: Callable[[], None]) -> Onset:
        """The first cue after the seek that `command` causes."""
        seeks = len(marks(player, "seek"))
        command()
        wait_until(lambda: len(marks(player, "seek")) > seeks)
        seek = marks(player, "seek")[-1]
        wait_until(lambda: onsets(player)[-1].actual >= seek.actual)
        return next(o for o in onsets(player) if o.actual >= seek.actual)

    player.start()
    try:
        wait_until(lambda: onsets(player))
        player.next_exercise()
        wait_until(lambda: len(onsets(player)) >= 2)
        landed = onsets(player)[1]
        assert landed.index == first_cue[parts[1].start]
        assert round(landed.planned * RATE) == parts[1].start
        assert round(marks(player, "seek")[0].position * RATE) == parts[1].start
        time.sleep(RESTART_GRACE + 0.2)
        assert landing(player.previous_exercise).index == first_cue[parts[1].start]  # restart
        # Again, just after that exercise's start: the one before.
        assert landing(player.previous_exercise).index == 0
        for _ in range(len(parts)):  # pressed past the last exercise: its closing words
            player.next_exercise()
        wait_until(lambda: onsets(player)[-1].event.kind.value == "finish")
        assert round(marks(player, "seek")[-1].position * RATE) == plan.events[-1].start
        player.stop()
        result = player.wait(10)
    finally:
        player.close()
    assert result is not None and not result.completed
    assert result.exercises_completed == ()  # nothing was played through
    # The device got the landing cue's own samples (after the few-ms fade in).
    clip = timeline(prepared, parts[1].start)[FADE * 2 : (FADE + RATE // 5) * 2]
    assert clip in b"".join(taken)


@pytest.mark.slow  # real-time playback
def test_repeat_inserts_the_last_cue_without_overlap(prepared) -> None:  # type: ignore[no-untyped-def]
    plan = prepared.plan
    start = section_start(prepared, 1)
    gap = MIN_GAP
    player = Player(prepared, audio="none", start=start)
    player.start()
    try:
        wait_until(lambda: onsets(player))
        player.repeat_last_cue()  # while "Arms up." is being said: repeated after it
        wait_until(lambda: len(onsets(player)) >= 3)
        said, again, hold = onsets(player)[:3]
        player.repeat_last_cue()  # during the hold's silence: at once, the hold just waits
        wait_until(lambda: len(onsets(player)) >= 5)
        hold_again, rest = onsets(player)[3:5]
        player.stop()
        player.wait(10)
    finally:
        player.close()
    spoken = plan.seconds(said.event.speech)
    assert again.repeat and again.index == said.index
    assert abs(again.actual - (said.actual + spoken)) <= TOL  # right after it, not over it
    inserted = spoken + gap
    assert abs((hold.actual - said.actual) - (hold.planned - said.planned + inserted)) <= TOL
    assert hold_again.repeat and hold_again.event.kind.value == "hold"
    assert hold_again.actual >= hold.actual + plan.seconds(hold.event.speech) - TOL
    # The hold is not restarted: the rest comes later by exactly the repeat's length.
    inserted_hold = plan.seconds(hold.event.speech) + gap
    assert abs((rest.actual - hold.actual) - (rest.planned - hold.planned + inserted_hold)) <= TOL


@pytest.mark.slow  # real-time playback
def test_volume_scales_the_samples_and_never_clips(prepared) -> None:  # type: ignore[no-untyped-def]
    start = section_start(prepared, 1)
    taken: list[bytes] = []
    player = Player(prepared, audio="none", start=start, tap=taken.append)
    player.start()
    try:
        wait_until(lambda: onsets(player))
        player.volume_down()
        player.volume_down()
        assert player.state().gain_db == -6
        time.sleep(1.4)
        for _ in range(4):
            player.volume_up()
        wait_until(lambda: len(onsets(player)) >= 2)  # the hold cue, at +6 dB
        time.sleep(0.8)
        player.stop()
        player.wait(10)
    finally:
        player.close()
    out = samples(b"".join(taken))
    ref = samples(timeline(prepared, start))[: len(out)]
    out = out[: len(ref) - FADE]  # the stop fades out

    def longest_match(gain: float) -> tuple[int, int]:
        """The longest run of frames equal to ref x gain (saturated): (start, length)."""
        best, run_start, best_start = 0, 0, 0
        for j, (o, r) in enumerate(zip(out, ref, strict=False)):
            if o != max(-32768, min(32767, round(r * gain))):
                run_start = j + 1
            elif j + 1 - run_start > best:
                best, best_start = j + 1 - run_start, run_start
        return best_start, best

    quiet_at, quiet_len = longest_match(10 ** (-6 / 20))
    loud_at, loud_len = longest_match(10 ** (MAX_GAIN_DB / 20))
    assert quiet_len > RATE and loud_len > RATE // 2
    assert quiet_at < loud_at
    assert player.state().gain_db == MAX_GAIN_DB, "+ stops at the headroom left by levelling"
    assert max(abs(o) for o in out) < 32767, "+ must never clip"
    assert all((o >= 0) == (r >= 0) or o == 0 for o, r in zip(out, ref, strict=False)), \
        "a sample wrapped around"


class SlowStream:
    """A prepared session whose stream takes 30 ms per chunk: slower than a device period, as
    mixing music may be. The player must read ahead, not make the device wait."""

    def __init__(self, prepared) -> None:  # type: ignore[no-untyped-def]
        self.plan, self.clips, self._prepared = prepared.plan, prepared.clips, prepared

    def stream(self, start: int = 0, end: int | None = None):  # type: ignore[no-untyped-def]
        for chunk in self._prepared.stream(start, end):
            time.sleep(0.03)
            yield chunk


@pytest.mark.slow  # real-time playback
def test_a_slow_stream_is_read_ahead_and_a_seek_waits_for_it(prepared) -> None:  # type: ignore[no-untyped-def]
    start = section_start(prepared, 1)
    player = Player(SlowStream(prepared), audio="none", start=start)  # type: ignore[arg-type]
    player.start()
    try:
        wait_until(lambda: len(onsets(player)) >= 2)
        player.next_exercise()
        wait_until(lambda: marks(player, "seek") and onsets(player)[-1].actual
                   >= marks(player, "seek")[0].actual)
        player.stop()
        player.wait(10)
    finally:
        player.close()
    first, second, landed = onsets(player)[:3]
    assert abs((second.actual - first.actual) - (second.planned - first.planned)) <= TOL
    assert round(landed.planned * RATE) == section_start(prepared, 2)
    # The new place's first chunk was not ready at once: the device got silence meanwhile,
    # and the timeline waited instead of skipping ahead.
    seek, stall = marks(player, "seek")[0], marks(player, "stall")[0]
    assert stall.position == seek.position
    assert landed.actual - seek.actual >= 0.03 - TOL
    assert landed.expected is not None and abs(landed.actual - landed.expected) <= TOL


def test_scale_ramps_and_clamps() -> None:
    pcm = array.array("h", [20000, -20000, 1000, -1000]).tobytes()
    assert samples(scale(pcm, 2.0, 2.0)).tolist() == [32767, -32768, 2000, -2000]
    assert samples(scale(pcm, 0.0, 1.0)).tolist() == [5000, -10000, 750, -1000]
    assert scale(pcm, 1.0, 1.0) == pcm


@pytest.mark.slow  # real-time playback
def test_stop_leaves_no_thread_behind(prepared) -> None:  # type: ignore[no-untyped-def]
    def os_threads() -> int:
        return len(os.listdir("/proc/self/task")) if os.path.isdir("/proc/self/task") else 0

    def children() -> set[str]:
        found: set[str] = set()
        if os.path.isdir("/proc/self/task"):
            for task in os.listdir("/proc/self/task"):
                with open(f"/proc/self/task/{task}/children") as f:
                    found |= set(f.read().split())
        return found

    threads, native, kids = set(threading.enumerate()), os_threads(), children()
    player = Player(prepared, audio="none")
    player.start()
    wait_until(lambda: onsets(player))
    assert os_threads() > native  # the device's own thread
    player.stop()
    result = player.wait(10)
    assert result is not None and not result.completed
    assert set(threading.enumerate()) == threads
    # A joined thread's OS thread ends a moment after join() returns; on a loaded 2-core machine
    # that moment has been seen to pass 1 s. A thread left behind never ends at all.
    wait_until(lambda: os_threads() == native, timeout=15.0)
    assert children() == kids


# --- the command line ---------------------------------------------------------------------------


@pytest.mark.slow  # real-time playback
def test_play_without_a_terminal_prints_cues_and_writes_events(
    prepared, routine_path: Path, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    events = tmp_path / "events.jsonl"
    cmd = [sys.executable, "-m", "voicecoach", "play", str(routine_path), "--audio", "none",
           "--from", "3", "--events", str(events)]
    # Keys on a pipe are never read: the "q" must not stop it.
    done = subprocess.run(cmd, input="q n \n", capture_output=True, text=True, timeout=60,
                          env={**os.environ, "VOICECOACH_DATA_DIR": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    import json

    lines = [json.loads(line) for line in events.read_text(encoding="utf-8").splitlines()]
    cues = [line for line in lines if line["type"] == "cue"]
    # --from 3 is a session of the third exercise on, opened by the start cue and the cautions.
    from voicecoach.audio.prepare import timed_plan
    from voicecoach.speech import VoiceSettings, get_engine
    from voicecoach.storage.cache import ClipCache

    plan = timed_plan(load_routine(routine_path), PlanOptions(lead_in=0.0, only=("3",)),
                      engine=get_engine(None), settings=VoiceSettings(), cache=ClipCache())
    want = [e for e in plan.events if e.text]
    assert [e.kind.value for e in want[:3]] == ["start", "caution", "caution"]
    assert want[2].text == "Stop if it hurts." and want[3].exercise == "Twist"
    assert [c["text"] for c in cues] == [e.text for e in want]
    assert [round(c["planned"] * RATE) for c in cues] == [e.start for e in want]
    for cue in cues:
        # Against the player's own expectation, which moves on by any stall it logged (the
        # feeder behind on a loaded machine); and never ahead of the plan.
        assert abs(cue["error_ms"]) <= TOL * 1000, cue
        elapsed = cue["actual"] - cues[0]["actual"]
        assert elapsed >= cue["planned"] - cues[0]["planned"] - TOL, cue
    assert lines[-1]["type"] == "end"
    printed = done.stdout.splitlines()
    assert len(printed) == len(want)
    assert [line.split("  ")[-1].strip() for line in printed] == [e.text for e in want]
    assert done.stderr.strip() == "Done: Tiny, 1 exercise."
    from voicecoach.safety.history import History

    (session,) = History(tmp_path).sessions()
    assert (session.kind, session.routine, session.completed) == ("live", "tiny", True)


def test_no_sound_device_is_one_line(routine_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    try:
        open_device("alsa", RATE).close()
    except NoSoundDevice as exc:
        assert "no alsa sound device" in exc.line()
    else:
        pytest.skip("this machine has an ALSA sound device")
    assert capfd.readouterr() == ("", "")  # ALSA's own noise never reaches the terminal
    done = subprocess.run([sys.executable, "-m", "voicecoach", "play", str(routine_path),
                           "--audio", "alsa"], capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "error: no alsa sound device (try `--audio none` to run silently, "
        "or `voicecoach export` to make an MP3)"
    ]
    assert done.stdout == ""


@pytest.mark.slow  # real-time playback
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX pseudo-terminal")
@pytest.mark.parametrize("how", ["q", "ctrl-c", "hangup"])
def test_keys_in_a_terminal_and_the_terminal_is_restored(
    routine_path: Path, tmp_path: Path, how: str
) -> None:
    import fcntl
    import pty
    import select
    import struct
    import termios

    from voicecoach.safety.rules import QUESTIONS, save_screening

    # Answered before, so the first-session questions are not asked here.
    save_screening({q.key: False for q in QUESTIONS}, folder=tmp_path)
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 90, 0, 0))
    before = termios.tcgetattr(slave)
    proc = subprocess.Popen(
        [sys.executable, "-m", "voicecoach", "play", str(routine_path), "--audio", "none",
         "--from", "2"], stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
        # As a terminal starts it: SIGHUP not ignored, whatever an earlier test in this worker
        # left (an ignored SIGHUP is inherited, and means nohup: play then rightly carries on).
        preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_DFL),
        env={**os.environ, "TERM": "xterm-256color", "VOICECOACH_DATA_DIR": str(tmp_path)},
    )
    screen = bytearray()

    def read_until(wanted: bytes, timeout: float = 20.0) -> None:
        end = time.monotonic() + timeout
        while wanted not in screen and time.monotonic() < end:
            if select.select([master], [], [], 0.05)[0]:
                try:
                    screen.extend(os.read(master, 65536))
                except OSError:
                    return

    try:
        read_until(b"KNEES IN")
        os.write(master, b"\x1b[C")  # right arrow: the next exercise
        read_until(b"TWIST")
        os.write(master, b" ")
        read_until(b"PAUSED")
        if how == "q":
            os.write(master, b"q")
        elif how == "ctrl-c":
            os.killpg(proc.pid, signal.SIGINT)
        else:  # the terminal window closed: a hangup, and nothing can be written there any more
            os.killpg(proc.pid, signal.SIGHUP)
            os.close(master)
            master = -1
        code = proc.wait(20)
        if master >= 0:
            read_until(b"Stopped at", 2.0)
            after = termios.tcgetattr(slave)  # a hung-up terminal has no settings to read
    finally:
        if proc.poll() is None:
            proc.kill()
        if master >= 0:
            os.close(master)
        os.close(slave)
    text = screen.decode("utf-8", "replace")
    assert code == {"q": 0, "ctrl-c": 130, "hangup": 129}[how]
    assert "KNEES IN" in text and "TWIST" in text and "PAUSED" in text
    assert "Traceback" not in text
    if how != "hangup":
        assert after == before
        assert "Stopped at" in text and "in Twist" in text
    from voicecoach.safety.history import History

    (session,) = History(tmp_path).sessions()
    assert (session.kind, session.completed, session.stopped_at) == ("live", False, "Twist")


def test_from_names_an_exercise_in_the_session(prepared, routine_path: Path) -> None:  # type: ignore[no-untyped-def]
    routine = load_routine(routine_path)
    parts = sections(prepared.plan)
    assert exercise_start(prepared.plan, routine, "knees in") == parts[2].start
    assert exercise_start(prepared.plan, routine, "3") == parts[3].start
    with pytest.raises(UserError, match="no exercise named"):
        exercise_start(prepared.plan, routine, "plank")


# --- the terminal side --------------------------------------------------------------------------


def test_key_parser_reads_keys_and_arrow_sequences() -> None:
    keys = KeyParser()
    assert keys.feed(b" nprq+-") == ["toggle_pause", "next_exercise", "previous_exercise",
                                      "repeat_last_cue", "quit", "volume_up", "volume_down"]
    assert keys.feed(b"\x1b[C\x1b[D\x1bOC\x1bOD") == ["next_exercise", "previous_exercise"] * 2
    assert keys.feed(b"\x1b[1;5C") == ["next_exercise"]  # Ctrl+right
    assert keys.feed(b"\x1b[A\x1b[5~x") == []  # up, page up, unbound keys: nothing
    assert keys.feed(b"\x1b") == [] and keys.feed(b"[") == [] and keys.feed(b"D") == [
        "previous_exercise"]  # a sequence split across reads
    assert keys.feed(b"\x1b") == []
    keys.flush()  # a lone Escape: forgotten
    assert keys.feed(b"n") == ["next_exercise"]
    assert keys.feed(b"\x03") == ["quit"]
    windows = KeyParser(windows=True)
    assert windows.feed(b"\xe0M\x00K\xe0H q") == ["next_exercise", "previous_exercise",
                                                 "toggle_pause", "quit"]


def test_big_countdown_digits() -> None:
    assert countdown_text(2.3) == "3" and countdown_text(0.0) == "0"
    assert countdown_text(75) == "1:15"
    rows = big_text("10").splitlines()
    assert len(rows) == 5 and all("██" in row for row in rows)
