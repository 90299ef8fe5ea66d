"""How an exported session sounds: loudness, true peak, even cues, chimes, and the music bed.

Real espeak-ng speech, real ffmpeg; every level is measured on the written MP3 with ffmpeg's
own ebur128 filter (the reference the target is defined by), never with voicecoach's model.
"""

from __future__ import annotations

import itertools
import json
import math
import random
import re
import subprocess
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from helpers import run_cli
from voicecoach.audio.ffmpeg import ffmpeg_exe
from voicecoach.audio.options import SoundOptions
from voicecoach.audio.prepare import prepare
from voicecoach.audio.tones import TONES
from voicecoach.plan.timeline import (
    CHIME_GUARD,
    ChimeKind,
    PlanOptions,
    build_plan,
    estimate_speech,
)
from voicecoach.routine.model import Routine
from voicecoach.speech import VoiceSettings, get_engine
from voicecoach.storage.cache import ClipCache

#: One worker runs this module (pytest-xdist's loadgroup): its exports (module-scoped) are made
#: once.
pytestmark = pytest.mark.xdist_group("sound")

RATE = 22050

#: Short and long cues side by side: "Go." next to a two-line sentence.
ROUTINE = """\
title: Sound check
cautions: ["Stop at once if anything hurts, and never force a movement into pain."]
defaults: {rest: 8s, countdown: 3}
exercises:
  - name: Knee hug
    setup:
      - Lie on your back on the mat, bend both knees and hug them gently toward your chest.
      - say: Go.
        wait: 1s
    hold: 20s
  - name: Twist
    sides: [left, right]
    setup: ["Drop both knees to the {side}."]
    hold: 12s
    then: [{say: Up., hold: 4s}]
"""

#: The music: a steady 55 Hz tone (below the voice, so it can be measured under speech) over
#: quiet pink noise; 9 seconds, so it loops several times.
MUSIC_TONE = 55.0


def _ffmpeg(*args: str, data: bytes | None = None) -> str:
    done = subprocess.run([ffmpeg_exe(), "-nostdin", "-hide_banner", "-nostats", *args],
                          input=data, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()[-500:]
    return done.stderr.decode()


def ebur128(*source: str, data: bytes | None = None) -> tuple[float, float]:
    """(integrated LUFS, true peak dBTP) by ffmpeg's ebur128 filter."""
    err = _ffmpeg(*source, "-af", "ebur128=peak=true", "-f", "null", "-", data=data)
    summary = err[err.rfind("Summary:"):]
    loud = float(re.search(r"I:\s+(-?[\d.]+) LUFS", summary)[1])
    peak = float(re.search(r"Peak:\s+(-?[\d.]+|-inf) dBFS", summary)[1])
    return loud, peak


def pcm_loudness(samples: np.ndarray) -> float:
    return ebur128("-f", "s16le", "-ar", str(RATE), "-ac", "1", "-i", "pipe:0",
                   data=samples.astype("<i2").tobytes())[0]


def decode(path: Path) -> np.ndarray:
    done = subprocess.run([ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-i", str(path),
                           "-f", "s16le", "-ac", "1", "-ar", str(RATE), "-"],
                          capture_output=True, check=True)
    return np.frombuffer(done.stdout, "<i2").astype(np.float64)


def tone_amplitude(x: np.ndarray, freq: float) -> float:
    """Amplitude of a sine at freq in x (least squares on sine and cosine)."""
    t = np.arange(len(x)) / RATE
    basis = np.stack([np.sin(2 * np.pi * freq * t), np.cos(2 * np.pi * freq * t)], axis=1)
    coef, *_ = np.linalg.lstsq(basis, x, rcond=None)
    return float(np.hypot(*coef))


def band_share(x: np.ndarray, freq: float, width: float = 40.0) -> float:
    """Share of x's energy within +-width Hz of freq."""
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x)))) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / RATE)
    return float(spectrum[np.abs(freqs - freq) < width].sum() / max(spectrum.sum(), 1e-12))


def dbfs(x: np.ndarray) -> float:
    power = float(np.mean(x * x)) if len(x) else 0.0
    return 10 * math.log10(power / 32768**2) if power else -math.inf


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("sound")
    (where / "r.yaml").write_text(ROUTINE, encoding="utf-8")
    _ffmpeg("-f", "lavfi", "-i", f"sine=frequency={MUSIC_TONE}:sample_rate=44100:duration=9",
            "-f", "lavfi", "-i", "anoisesrc=color=pink:amplitude=0.05:sample_rate=44100:duration=9",
            "-filter_complex", "[0][1]amerge=inputs=2,pan=mono|c0=0.5*c0+c1",
            "-c:a", "libmp3lame", "-b:a", "128k", "-y", str(where / "music.mp3"))
    return where


EXPORT_RUNS = {
    "plain": [],
    "bed": ["--music", "music.mp3"],
    "duck6": ["--music", "music.mp3", "--duck=-6", "--chimes", "off"],
    "quiet": ["--loudness", "-20"],  # --volume is refused for export: levelling sets the level
    "nochimes": ["--chimes", "off"],
}


class Exports(dict[str, Path]):
    """The routine exported plain, with music, at -20 LUFS, with a quiet voice, chimes off: each
    when a test first asks for it (the fast lane asks for fewer)."""

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.folder = folder

    def __missing__(self, name: str) -> Path:
        done = run_cli("export", "r.yaml", "-o", f"{name}.mp3", "--quiet", *EXPORT_RUNS[name],
                       cwd=self.folder)
        assert done.returncode == 0, done.stderr
        self[name] = self.folder / f"{name}.mp3"
        return self[name]


@pytest.fixture(scope="module")
def exports(folder: Path) -> dict[str, Path]:
    return Exports(folder)


@pytest.fixture(scope="module")
def plan(folder: Path) -> dict:
    shown = run_cli("show", "r.yaml", "--json", cwd=folder)
    assert shown.returncode == 0, shown.stderr
    return json.loads(shown.stdout)


def spans(plan: dict) -> list[tuple[float, float]]:
    return [(e["start"], e["start"] + e["speech"]) for e in plan["events"] if e["speech"] > 0]


# -- loudness ---------------------------------------------------------------------------------


#: The fast lane keeps one case of each sweep over the exports; the slow lane the others.
def _others_slow(*cases: tuple[str, ...] | str) -> list[object]:
    return [case if i == 0 else pytest.param(*(case if isinstance(case, tuple) else (case,)),
                                             marks=pytest.mark.slow)
            for i, case in enumerate(cases)]


@pytest.mark.parametrize(("name", "target"), _others_slow(("plain", -16.0), ("bed", -16.0),
                                                          ("duck6", -16.0), ("quiet", -20.0)))
def test_track_meets_its_loudness_target_and_true_peak(exports: dict, name: str,
                                                       target: float) -> None:
    loudness, peak = ebur128("-i", str(exports[name]))
    assert abs(loudness - target) <= 1.0, (name, loudness)
    assert peak <= -1.0, (name, peak)


def test_every_cue_is_about_equally_loud(exports: dict, plan: dict) -> None:
    # Each distinct cue as heard in the MP3, looped to 3 s (a single word is shorter than one
    # 400 ms gating block) and measured by ebur128. One LU is about the smallest loudness step
    # people notice; "Go." and a 15-word sentence must stay within a 2 LU band.
    samples = decode(exports["plain"])
    seen: dict[str, float] = {}
    for event in plan["events"]:
        if event["speech"] and event["text"] not in seen:
            lo, hi = round(event["start"] * RATE), round((event["start"] + event["speech"]) * RATE)
            cue = samples[lo:hi]
            seen[event["text"]] = pcm_loudness(np.tile(cue, -(-3 * RATE // len(cue))))
    assert any(len(t.split()) == 1 for t in seen) and any(len(t.split()) > 12 for t in seen)
    spread = max(seen.values()) - min(seen.values())
    assert spread <= 2.0, {t[:20]: round(v, 1) for t, v in seen.items()}


def test_quiet_voice_is_levelled_like_a_normal_one(exports: dict) -> None:
    quiet = decode(exports["quiet"])
    assert ebur128("-i", str(exports["quiet"]))[0] == pytest.approx(-20.0, abs=1.0)
    assert np.abs(quiet).max() < 32000


@pytest.mark.parametrize("name", _others_slow("plain", "bed", "quiet"))
def test_no_cue_is_clipped(exports: dict, name: str) -> None:
    samples = decode(exports[name])
    hot = np.abs(samples) >= 32000
    runs = np.convolve(hot.astype(int), np.ones(2, dtype=int), mode="valid")
    assert not (runs >= 2).any(), f"{int(hot.sum())} samples at full scale"


# -- chimes -----------------------------------------------------------------------------------


def test_chimes_sound_where_planned_and_only_in_silence(exports: dict, plan: dict) -> None:
    chimes = plan["chimes"]
    assert {c["kind"] for c in chimes} == {"hold-start", "hold-end", "rest-end"}
    holds = [e for e in plan["events"] if e["kind"] == "hold"]
    # Every hold has its start chime (holds in `then` too: "Up." here, once per side).
    assert sum(c["kind"] == "hold-start" for c in chimes) == len(holds) + 2
    spoken = spans(plan)
    for chime in chimes:
        a, b = chime["start"], chime["start"] + chime["duration"]
        for s, e in spoken:
            assert b + CHIME_GUARD - 0.001 <= s or e + CHIME_GUARD - 0.001 <= a, (chime, s, e)
    samples = decode(exports["plain"])
    silent = decode(exports["nochimes"])
    for chime in chimes:
        lo = round(chime["start"] * RATE)
        hi = lo + round(chime["duration"] * RATE)
        window = samples[lo:hi]
        notes = [note[0] for note in TONES[ChimeKind(chime["kind"])]]
        assert dbfs(window) > -45, chime
        # Its own notes, not speech: nearly all of the window's energy is at their pitches.
        assert sum(band_share(window, f) for f in notes) > 0.8, chime
        # Only the encoder's smear (an MP3 frame is 52 ms) just before and after it, where the
        # plan keeps silence: no cue there ...
        guard = round(0.09 * RATE)
        assert dbfs(samples[lo - guard : lo - 200]) < -45, chime
        assert dbfs(samples[hi + 200 : hi + guard]) < -45, chime
        # ... and without chimes the same place is silence.
        assert dbfs(silent[lo:hi]) < -60, chime


def test_chimes_change_no_timing_and_leave_room_for_the_first_breath() -> None:
    base = {"title": "T", "exercises": [
        {"name": "A", "setup": ["Sit."], "hold": "20s"},
        {"name": "B", "sides": ["left", "right"], "hold": "8s", "then": [{"say": "Rock.",
                                                                         "hold": "5s"}]},
    ], "defaults": {"rest": "6s"}}
    on = build_plan(Routine.model_validate(base), PlanOptions(chimes=True))
    off = build_plan(Routine.model_validate(base), PlanOptions(chimes=False))
    assert on.events == off.events and not off.chimes
    kinds = [c.kind for c in on.chimes]
    # A; B left and right, each with its follow-up hold.
    assert kinds.count(ChimeKind.HOLD_START) == 5 and kinds.count(ChimeKind.HOLD_END) == 5
    assert kinds.count(ChimeKind.REST_END) == 1
    gap = round(CHIME_GUARD * RATE)
    speech = [(e.start, e.start + e.speech) for e in on.events if e.speech]
    for chime in on.chimes:
        assert all(chime.end + gap <= s or e + gap <= chime.start for s, e in speech)
    # The routine's own switch, and the first breath making room for the start chime.
    quiet = Routine.model_validate({**base, "defaults": {"chimes": False}})
    assert not build_plan(quiet).chimes
    assert build_plan(quiet, PlanOptions(chimes=True)).chimes
    breathing = Routine.model_validate({"title": "T", "exercises": [
        {"name": "A", "hold": "40s", "breathing": {"inhale": "4s", "exhale": "4s"}}]})
    plan = build_plan(breathing, measure=estimate_speech())
    hold = next(e for e in plan.events if e.kind.value == "hold")
    start = next(c for c in plan.chimes if c.kind == ChimeKind.HOLD_START)
    assert hold.start + hold.speech + gap <= start.start
    assert start.end + gap <= hold.end  # the first breath follows the chime


def test_countdown_ticks_are_an_option() -> None:
    routine = Routine.model_validate({"title": "T", "exercises": [{"name": "A", "hold": "12s"}],
                                      "defaults": {"countdown_ticks": True}})
    # Numbers as long as espeak says them (0.3 s); a longer word leaves no room for its tick.
    plan = build_plan(routine, measure=lambda text: round(0.3 * RATE))
    hold = next(e for e in plan.events if e.kind.value == "hold")
    end = next(e for e in plan.events if e.kind.value == "countdown" and e.text == "one").end
    ticks = [c.start for c in plan.chimes if c.kind == ChimeKind.TICK]
    # One a second, half a second after each spoken number (the number is on the second).
    assert [end - t for t in ticks] == [round(2.5 * RATE), round(1.5 * RATE), round(0.5 * RATE)]
    assert hold.start < ticks[0]
    assert not [c for c in build_plan(routine, PlanOptions(countdown_ticks=False)).chimes
                if c.kind == ChimeKind.TICK]
    silent = Routine.model_validate({"title": "T", "exercises": [{"name": "A", "hold": "12s"}],
                                     "defaults": {"countdown_ticks": True,
                                                  "cues": {"countdown": False}}})
    ticks = [c.start for c in build_plan(silent).chimes if c.kind == ChimeKind.TICK]
    last = build_plan(silent).events[-2].end  # the hold's end (before the finish)
    assert [last - t for t in ticks] == [3 * RATE, 2 * RATE, RATE]


# -- music ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "duck"), _others_slow(("bed", -12.0), ("duck6", -6.0)))
def test_music_ducks_under_every_cue_by_the_duck(exports: dict, plan: dict, name: str,
                                                 duck: float) -> None:
    samples = decode(exports[name])
    spoken = spans(plan)
    under = []
    for s, e in spoken:
        if e - s >= 0.6:
            under.append(tone_amplitude(samples[round((s + 0.05) * RATE):round((e - 0.05) * RATE)],
                                        MUSIC_TONE))
    between = []
    for (_, e), (s, _) in itertools.pairwise(spoken):
        lo, hi = e + 0.3, s - 0.3  # clear of the ramps
        if hi - lo >= 1.0 and lo > 4 and hi < plan["duration"] - 6:  # and of the fades
            between.append(tone_amplitude(samples[round(lo * RATE):round(hi * RATE)], MUSIC_TONE))
    assert len(under) >= 5 and len(between) >= 5
    measured = 20 * math.log10(np.median(under) / np.median(between))
    assert abs(measured - duck) <= 1.0, measured
    # Every cue, not just most: each one is at least 2/3 of the duck down.
    assert max(under) < np.median(between) * 10 ** (duck * 0.66 / 20)


def test_music_fades_in_and_out(exports: dict, plan: dict) -> None:
    samples = decode(exports["bed"])
    first = spans(plan)[0][0]
    start = tone_amplitude(samples[: round(0.3 * RATE)], MUSIC_TONE)
    later = tone_amplitude(samples[round(1.0 * RATE): round(min(first, 1.4) * RATE)], MUSIC_TONE)
    assert start < later * 0.5
    assert dbfs(samples[-round(0.05 * RATE):]) < -40


@pytest.mark.parametrize("content", [None, b"\x00garbage" * 300])
def test_missing_or_undecodable_music_is_one_line_exit_2(tmp_path: Path, run_cli,  # type: ignore[no-untyped-def]
                                                         content: bytes | None) -> None:
    (tmp_path / "r.yaml").write_text(ROUTINE, encoding="utf-8")
    if content is not None:
        (tmp_path / "song.mp3").write_bytes(content)
    done = run_cli("export", "r.yaml", "-o", "o.mp3", "--music", "song.mp3")
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "song.mp3" in done.stderr
    assert not (tmp_path / "o.mp3").exists()


def test_out_of_range_options_are_refused(tmp_path: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "r.yaml").write_text(ROUTINE, encoding="utf-8")
    for args in (["--loudness", "-5"], ["--duck", "6"]):
        done = run_cli("export", "r.yaml", "-o", "o.mp3", *args)
        assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr


# -- the stream -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def long_session(folder: Path):  # type: ignore[no-untyped-def]
    """24 minutes of long holds with the music bed: few clips, long stream."""
    routine = Routine.model_validate({"title": "Long", "exercises": [
        {"name": f"Stretch {i}", "hold": "2m"} for i in range(1, 12)]})
    prepared = prepare(routine, PlanOptions(), engine=get_engine(None), settings=VoiceSettings(),
                       cache=ClipCache(), sound=SoundOptions(music=folder / "music.mp3"))
    yield prepared
    prepared.close()


@pytest.mark.slow  # a giant input: 24 minutes streamed
def test_streaming_a_long_session_with_music_keeps_memory_flat(long_session) -> None:  # type: ignore[no-untyped-def]
    assert long_session.plan.duration > 20 * 60
    # Clips are levelled on background threads; let that finish first, so what is traced is
    # the stream alone, whatever the cache held when this test started.
    for text in long_session.clips:
        long_session.clips[text]
    tracemalloc.start()
    try:
        frames = 0
        for chunk in long_session.stream():
            frames += len(chunk) // 2
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert frames == long_session.plan.total
    # 24 minutes of PCM is 63 MB; the stream holds a few chunks of it at a time.
    assert peak < 12e6, peak


def test_a_stream_started_anywhere_is_the_same_audio(long_session) -> None:  # type: ignore[no-untyped-def]
    total = long_session.plan.total
    rng = random.Random(7)
    starts = [rng.randrange(total - RATE * 30) for _ in range(4)]
    for start in starts:
        end = start + rng.randrange(1, RATE * 20)
        whole = b"".join(long_session.stream(start - start % 32768, end))
        part = b"".join(long_session.stream(start, end))
        assert part == whole[(start % 32768) * 2 :]
