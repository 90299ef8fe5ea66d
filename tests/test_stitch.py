"""Frame-stitched exports, decoded: the live stream's sound, exact length, chapters on frames,
loudness, click-free joins, and the encoder path's equal; a changed cue costs one encode."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import mutagen.id3
import mutagen.mp3
import numpy as np
import pytest

from voicecoach import coach
from voicecoach.audio.ffmpeg import decode_pcm, ffmpeg_exe
from voicecoach.export import stitch
from voicecoach.export.tracks import ExportOptions, export_track
from voicecoach.plan.timeline import GRID

#: One worker runs this module (pytest-xdist's loadgroup): the five routines' exports and streams
#: (module-scoped) are made once.
pytestmark = pytest.mark.xdist_group("stitch")

ROUTINES = sorted(Path("routines").glob("*.yaml"))
SHIFT = stitch.ENCODER_DELAY + stitch.DECODER_DELAY  # a frame's first sample, in track time


class Made:
    """One bundled routine prepared once, exported stitched, decoded, with the live stream."""

    def __init__(self, path: Path, folder: Path) -> None:
        self.routine = coach.load(path)
        self.session = coach.prepare(self.routine, coach.Settings())
        self.audio = self.session.audio
        self.plan = self.audio.plan
        self.mp3 = folder / f"{path.stem}.mp3"
        self.track = export_track(self.routine, self.audio, self.mp3, ExportOptions())
        self.decoded = _samples(decode_pcm(self.mp3))
        self.live = _samples(b"".join(self.audio.stream(0)))


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Made]]:
    folder = tmp_path_factory.mktemp("stitched")
    out = {p.stem: Made(p, folder) for p in ROUTINES}
    yield out
    for one in out.values():
        one.session.close()


def _samples(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, "<i2").astype(np.float64)


def snr(got: np.ndarray, want: np.ndarray) -> float:
    n = min(len(got), len(want))
    err = got[:n] - want[:n]
    return float(10 * np.log10((want[:n] ** 2).sum() / max((err**2).sum(), 1e-9)))


def ebur128(path: Path) -> tuple[float, float]:
    done = subprocess.run([ffmpeg_exe(), "-nostdin", "-hide_banner", "-nostats", "-i", str(path),
                           "-af", "ebur128=peak=true", "-f", "null", "-"],
                          capture_output=True, text=True, timeout=120)
    summary = done.stderr[done.stderr.rfind("Summary:"):]
    loud = re.search(r"I:\s+(-?[\d.]+) LUFS", summary)
    peak = re.search(r"Peak:\s+(-?[\d.]+|-inf) dBFS", summary)
    assert loud and peak, done.stderr[-500:]
    return float(loud[1]), float(peak[1])


NAMES = [p.stem for p in ROUTINES]


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_stitched_track_decodes_to_the_live_stream_at_the_plans_length(
        made: dict[str, Made], name: str) -> None:
    one = made[name]
    assert abs(len(one.decoded) - one.plan.total) <= GRID, (len(one.decoded), one.plan.total)
    info = mutagen.mp3.MP3(one.mp3).info
    assert abs(round(info.length * one.plan.rate) - one.plan.total) <= GRID
    assert info.bitrate_mode == mutagen.mp3.BitrateMode.CBR
    # The codec's error only: the encoder path measured 19-20 dB on these routines.
    assert snr(one.decoded, one.live) > 15.0, name


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_chapters_are_the_plans_exercise_starts_on_frame_boundaries(
        made: dict[str, Made], name: str) -> None:
    one = made[name]
    chapters = mutagen.id3.ID3(one.mp3).getall("CHAP")  # in the order the file holds them
    starts = [c.start_time for c in chapters]
    planned = one.plan.chapters()
    assert starts == sorted(starts)
    assert starts == [round(s * 1000 / one.plan.rate) for _, s, _ in planned]
    assert all(s % GRID == 0 for _, s, _ in planned)
    probed = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(one.mp3)],
                            capture_output=True, text=True).stderr
    seen = [float(m) for m in re.findall(r"Chapter #\d+:\d+: start (\d+\.\d+)", probed)]
    assert seen == pytest.approx([s / one.plan.rate for _, s, _ in planned], abs=0.002)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_stitched_track_meets_the_loudness_target(made: dict[str, Made], name: str) -> None:
    loudness, peak = ebur128(made[name].mp3)
    assert abs(loudness + 16.0) <= 1.0, loudness
    assert peak <= -1.0, peak


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_no_join_steps_more_than_the_sound_around_it(made: dict[str, Made], name: str) -> None:
    """At every frame where a piece begins or ends, the step from one sample to the next is no
    larger than the largest step within 50 ms around it (a click would stand out)."""
    one = made[name]
    coder = stitch.FrameCache(one.audio.cache, ExportOptions().bitrate, one.plan.rate)
    placed, _ = stitch.place(one.plan, one.audio.clips, one.audio.mixer.chimes, coder)
    assert coder.encodes == 0  # the export cached every piece
    x = one.decoded
    half = round(0.05 * one.plan.rate / 2)
    steps = np.abs(np.diff(x))
    joins = [j * GRID - SHIFT for at, enc in placed for j in (at, at + enc.count)]
    assert len(joins) >= 2 * len(one.plan.spoken_texts())
    for t in joins:
        if not half < t < len(x) - half:
            continue
        around = np.concatenate([steps[t - half : t - 2], steps[t + 1 : t + half]])
        assert steps[t - 1] <= max(around.max(), 1.0), (t, steps[t - 1], around.max())


@pytest.mark.slow
def test_stitching_sounds_as_the_encoder_path_does(made: dict[str, Made], tmp_path: Path) -> None:
    one = made[NAMES[0]]
    whole = tmp_path / "encoded.mp3"
    export_track(one.routine, one.audio, whole, ExportOptions(stitch=False))
    encoded = _samples(decode_pcm(whole))
    assert len(encoded) == len(one.decoded) == one.plan.total
    # Both decode to the live stream within the codec's error, and to each other.
    assert snr(one.decoded, one.live) > snr(encoded, one.live) - 1.0
    assert snr(one.decoded, encoded) > 15.0


@pytest.mark.slow
def test_a_changed_cue_encodes_only_its_own_pieces(made: dict[str, Made], tmp_path: Path) -> None:
    one = made[NAMES[0]]
    first = one.routine.exercises[0]
    step = first.setup[0].model_copy(update={"say": first.setup[0].say + " Slowly now."})
    changed = one.routine.model_copy(update={"exercises": [
        first.model_copy(update={"setup": [step, *first.setup[1:]]}), *one.routine.exercises[1:]]})
    with coach.prepare(changed, coach.Settings()) as session:
        audio = session.audio
        new = {t for t in audio.plan.spoken_texts() if t not in set(one.plan.spoken_texts())}
        assert new
        touched = {p.parts for p in stitch.pieces(audio.plan)
                   if any(src in new for _, src in p.parts)}
        done = stitch.write_stitched(audio.plan, audio.clips, audio.mixer.chimes,
                                     tmp_path / "changed.mp3", bitrate=ExportOptions().bitrate,
                                     cache=audio.cache)
    assert 1 <= done.encodes <= len(touched), (done.encodes, len(touched))
