"""Export end to end: real espeak-ng speech, real ffmpeg MP3, decoded and read back."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mutagen.id3 import ID3
from mutagen.mp3 import MP3, BitrateMode

from helpers import decoded, rms

#: One worker runs this module (pytest-xdist's loadgroup): its export (module-scoped) is made once.
pytestmark = pytest.mark.xdist_group("export")

ROUTINE = """\
title: Test back routine
source: A test article
description: Two short exercises.
cautions: ["Stop at once if anything hurts."]
defaults: {rest: 8s}
exercises:
  - name: Knees to chest
    setup: ["Lie on your back.", "Hug both knees."]
    hold: 20s
    then: [{say: "Now rock gently side to side.", hold: 6s}]
  - name: Twist
    sides: [left, right]
    setup: ["Drop both knees to the {side}."]
    hold: 8s
"""


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    folder = tmp_path_factory.mktemp("export")
    (folder / "routine.yaml").write_text(ROUTINE, encoding="utf-8")
    env = {**os.environ}
    cmd = [sys.executable, "-m", "voicecoach"]
    done = subprocess.run([*cmd, "export", "routine.yaml", "-o", "out.mp3", "--transcript",
                           "--json"],
                          cwd=folder, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    shown = subprocess.run([*cmd, "show", "routine.yaml", "--json"], cwd=folder,
                           capture_output=True, text=True, env=env, timeout=120)
    assert shown.returncode == 0, shown.stderr
    return {"folder": folder, "track": json.loads(done.stdout)[0], "plan": json.loads(shown.stdout),
            "stderr": done.stderr}


def test_length_matches_the_plan_within_50ms(exported: dict) -> None:
    path = exported["folder"] / "out.mp3"
    samples = decoded(path)
    assert abs(len(samples) / 22050 - exported["plan"]["duration"]) < 0.050
    assert abs(exported["track"]["duration"] - exported["plan"]["duration"]) < 0.001


def test_speech_where_cues_start_and_silence_inside_holds(exported: dict) -> None:
    samples = decoded(exported["folder"] / "out.mp3")
    events = exported["plan"]["events"]
    assert rms(samples, 0.0, 1.4) < -70, "the lead-in is silent"
    for event in events:
        if event["kind"] in {"instruction", "hold", "start", "caution"}:
            start = event["start"]
            assert rms(samples, start, start + 0.3) > -40, event
    holds = [e for e in events if e["kind"] == "hold"]
    assert holds
    for hold in holds:
        # The stretch between the hold cue's words and the next cue is silence.
        middle = hold["start"] + hold["duration"] * 0.75
        assert rms(samples, middle - 0.3, middle + 0.3) < -60, hold


def test_chapters_match_exercises_and_starts(exported: dict) -> None:
    path = exported["folder"] / "out.mp3"
    tags = ID3(path)
    assert tags.version[:2] == (2, 3)
    toc = tags.getall("CTOC")[0]
    chapters = {c.element_id: c for c in tags.getall("CHAP")}
    ordered = [chapters[i] for i in toc.child_element_ids]
    titles = [c.sub_frames["TIT2"].text[0] for c in ordered]
    assert titles == ["Introduction", "Knees to chest", "Twist"]
    events = exported["plan"]["events"]
    for chapter in ordered[1:]:
        title = chapter.sub_frames["TIT2"].text[0]
        first = next(e for e in events if e["exercise"] == title)
        assert abs(chapter.start_time / 1000 - first["start"]) < 0.100
    assert ordered[-1].end_time / 1000 == pytest.approx(exported["plan"]["duration"], abs=0.1)
    samples = decoded(path)
    for chapter in ordered[1:]:
        # A chapter opens on speech: the exercise's name.
        assert rms(samples, chapter.start_time / 1000, chapter.start_time / 1000 + 0.3) > -40


def test_tags_and_cbr(exported: dict) -> None:
    path = exported["folder"] / "out.mp3"
    tags = ID3(path)
    assert str(tags["TIT2"]) == "Test back routine"
    assert str(tags["TPE1"]) == "voicecoach"
    assert str(tags["TALB"]) == "Test back routine"
    assert str(tags["TRCK"]) == "1/1"
    assert re.fullmatch(r"\d{4}", str(tags.get("TYER") or tags.get("TDRC")))
    assert "A test article" in str(tags.getall("COMM")[0])
    info = MP3(path).info
    assert info.bitrate == 64000 and info.bitrate_mode == BitrateMode.CBR
    assert info.sample_rate == 22050 and info.channels == 1


def test_transcript_has_every_spoken_cue_at_its_time(exported: dict) -> None:
    lrc = (exported["folder"] / "out.lrc").read_text(encoding="utf-8").splitlines()
    lines = [re.match(r"\[(\d+):(\d+\.\d+)\](.*)", ln) for ln in lrc]
    cues = [(int(m[1]) * 60 + float(m[2]), m[3]) for m in lines if m]
    spoken = [(e["start"], e["text"]) for e in exported["plan"]["events"] if e["text"]]
    assert [t for _, t in cues] == [t for _, t in spoken]
    assert all(abs(a - b) <= 0.006 for (a, _), (b, _) in zip(cues, spoken, strict=True))


def test_last_line_names_file_length_and_size(tmp_path: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "r.yaml").write_text(ROUTINE, encoding="utf-8")
    done = run_cli("export", "r.yaml", "-o", "x.mp3", "--quiet")
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(r"Wrote x\.mp3 \(\d+:\d\d\.\d, \d+\.\d MB, 3 chapters\)\n", done.stdout)
    assert done.stderr == ""


def test_only_skip_pace_and_lead_in(tmp_path: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "r.yaml").write_text(ROUTINE, encoding="utf-8")
    done = run_cli("export", "r.yaml", "-o", "o.mp3", "--only", "twist", "--pace", "0.5",
                   "--lead-in", "3", "--json")
    assert done.returncode == 0, done.stderr
    track = json.loads(done.stdout)[0]
    assert [c["title"] for c in track["chapters"]] == ["Introduction", "Twist"]
    samples = decoded(tmp_path / "o.mp3")
    assert rms(samples, 0, 2.9) < -70 and rms(samples, 3.0, 3.3) > -40
    shown = json.loads(run_cli("show", "r.yaml", "--json", "--only", "twist", "--pace", "0.5",
                               "--lead-in", "3").stdout)
    holds = [e for e in shown["events"] if e["kind"] == "hold"]
    assert all("4 seconds" in h["text"] for h in holds)
    assert abs(len(samples) / 22050 - shown["duration"]) < 0.05


def test_split_writes_one_track_per_exercise_and_a_playlist(tmp_path: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "r.yaml").write_text(ROUTINE, encoding="utf-8")
    done = run_cli("export", "r.yaml", "--split", "-o", "parts", "--json", "--transcript")
    assert done.returncode == 0, done.stderr
    names = sorted(p.name for p in (tmp_path / "parts").iterdir() if p.suffix != ".lrc")
    assert names == ["01-introduction.mp3", "02-knees-to-chest.mp3", "03-twist.mp3", "r.m3u"]
    twist = (tmp_path / "parts" / "03-twist.lrc").read_text(encoding="utf-8").splitlines()
    assert twist[3] == "[00:00.00]Twist."  # times start again at each part
    playlist = (tmp_path / "parts" / "r.m3u").read_text().splitlines()
    assert playlist[0] == "#EXTM3U" and [ln for ln in playlist if ln.endswith(".mp3")] == names[:3]
    shown = json.loads(run_cli("show", "r.yaml", "--json").stdout)
    total = sum(len(decoded(tmp_path / "parts" / n)) for n in names[:3]) / 22050
    assert abs(total - shown["duration"]) < 0.05 * 3
    tags = ID3(tmp_path / "parts" / "03-twist.mp3")
    assert str(tags["TRCK"]) == "3/3" and str(tags["TIT2"]) == "Twist"


def test_failed_encode_leaves_previous_file_and_no_temporary(tmp_path: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "r.yaml").write_text(ROUTINE, encoding="utf-8")
    (tmp_path / "out.mp3").write_bytes(b"previous complete file")
    broken = tmp_path / "ffmpeg"
    # A stand-in that passes the version probe, then fails mid-track like a crashing encoder.
    broken.write_text(
        f"#!/bin/sh\nif [ \"$4\" = -version ]; then exec {_real_ffmpeg()} \"$@\"; fi\n"
        "head -c 100000 >/dev/null; echo 'Error while encoding: simulated crash' >&2; exit 1\n"
    )
    broken.chmod(0o755)
    done = run_cli("export", "r.yaml", "-o", "out.mp3", env={"VOICECOACH_FFMPEG": str(broken)})
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "simulated crash" in done.stderr
    assert "Traceback" not in done.stderr
    assert (tmp_path / "out.mp3").read_bytes() == b"previous complete file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ffmpeg", "out.mp3", "r.yaml"]


@pytest.mark.slow  # a signal into a real export: the fault tests' lane
def test_ctrl_c_leaves_nothing_partial(tmp_path: Path) -> None:
    long = ROUTINE.replace("hold: 20s", "hold: 3h").replace("defaults: {rest: 8s}",
                                                             "defaults: {rest: 8s}\n")
    (tmp_path / "r.yaml").write_text(long, encoding="utf-8")
    proc = subprocess.Popen([sys.executable, "-m", "voicecoach", "export", "r.yaml", "-o", "o.mp3"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not any(p.name.startswith(".o.mp3.") for p in tmp_path.iterdir()):
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.002)
    # The moment the temporary appears: a stitched track of hours is written in a fraction of a
    # second, so a later signal could find it done (then the file is the whole new track).
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and err.splitlines()[-1] == "stopped", err
    left = sorted(p.name for p in tmp_path.iterdir())
    if left != ["r.yaml"]:
        assert left == ["o.mp3", "r.yaml"] and "Wrote" in out, (left, out)
        assert MP3(tmp_path / "o.mp3").info.length > 3 * 3600, "a partial track"


def test_show_times_match_export_with_voice_options(tmp_path: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "r.yaml").write_text(ROUTINE, encoding="utf-8")
    opts = ["--rate", "220", "--voice", "en-gb"]
    track = json.loads(run_cli("export", "r.yaml", "-o", "f.mp3", "--json", *opts).stdout)[0]
    plan = json.loads(run_cli("show", "r.yaml", "--json", *opts).stdout)
    slow = json.loads(run_cli("show", "r.yaml", "--json", "--rate", "120").stdout)
    assert slow["duration"] > plan["duration"]
    assert track["duration"] == plan["duration"]
    assert abs(len(decoded(tmp_path / "f.mp3")) / 22050 - plan["duration"]) < 0.05


@pytest.mark.slow  # every bundled routine, spoken and encoded (the fast lane exports others)
def test_export_all_writes_every_bundled_routine(tmp_path: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    listed = json.loads(run_cli("list", "--json").stdout)
    done = run_cli("export", "--all", "tracks", "--bitrate", "32", "--json", timeout=300)
    assert done.returncode == 0, done.stderr
    names = sorted(p.name for p in (tmp_path / "tracks").iterdir())
    assert names == sorted(f"{r['id']}.mp3" for r in listed)
    assert all(re.fullmatch(r"[a-z0-9-]+\.mp3", n) for n in names)


def _real_ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()
