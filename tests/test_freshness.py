"""Exports that are up to date do no work; anything that changes the track, or a file that is not
whole, makes them rebuild. Real speech, real ffmpeg, real history."""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from voicecoach import coach
from voicecoach.errors import UserError
from voicecoach.export import freshness
from voicecoach.safety.history import History, SessionRecord

ROUTINE = """\
title: Fresh routine
cautions: ["Stop at once if anything hurts."]
defaults: {rest: 4s, familiar_after: 1}
exercises:
  - name: Knees to chest
    setup: ["Lie on your back.", "Hug both knees."]
    hold: 6s
  - name: Twist
    sides: [left, right]
    setup: ["Drop both knees to the {side}."]
    hold: 4s
  - name: Gentle crack
    manipulation: true
    setup: ["Roll slowly."]
    hold: 3s
"""


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.stat().st_size)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _clips(cache: Path) -> dict[str, tuple[int, int]]:
    return {name: stat for name, stat in _snapshot(cache).items()
            if not name.startswith("up-to-date/")}


def _broken_ffmpeg(folder: Path) -> Path:
    """An ffmpeg that fails loudly: a run that encodes anything cannot succeed with it."""
    broken = folder / "ffmpeg"
    broken.write_text("#!/bin/sh\necho 'encoder must not run' >&2\nexit 1\n")
    broken.chmod(0o755)
    return broken


def test_unchanged_reexport_does_no_work_and_force_rebuilds(tmp_path: Path, run_cli) -> None:
    (tmp_path / "r.yaml").write_text(ROUTINE, encoding="utf-8")
    cache, out = tmp_path / "cache", tmp_path / "out"
    env = {"VOICECOACH_CACHE_DIR": str(cache)}
    broken = _broken_ffmpeg(tmp_path)
    for dest, args in (("out/t.mp3", ("--transcript",)),
                       ("out/parts", ("--split", "--transcript"))):
        command = ("export", "r.yaml", "-o", dest, "--detail", "full", *args)
        made = run_cli(*command, "--quiet", env=env)
        assert made.returncode == 0, made.stderr
        # The remembered answers (voicecoach.coach.memo) live in the cache too: not speech.
        written, clips = _snapshot(out), _clips(cache)
        assert clips, "the first export should have cached its speech"
        # No speech (the clip cache is untouched) and no encode (this ffmpeg would fail).
        again = run_cli(*command, env={**env, "VOICECOACH_FFMPEG": str(broken)})
        assert again.returncode == 0, again.stderr
        assert again.stdout.startswith(f"up to date: {dest}")
        assert _clips(cache) == clips
        assert _snapshot(out) == written
        forced = run_cli(*command, "--force", env=env)
        assert forced.returncode == 0, forced.stderr
        assert "Wrote" in forced.stdout and "up to date" not in forced.stdout
        # What is there is named as when it was made: every part, transcript and playlist.
        assert again.stdout == forced.stdout.replace("Wrote ", "up to date: ")
        rewritten = {name for name, stat in _snapshot(out).items() if written.get(name) != stat}
        mine = Path(dest).relative_to("out").as_posix()
        assert {n for n in written if n.startswith(mine) and n.endswith(".mp3")} <= rewritten


#: Plain routines (no familiarity: exporting one records it, which must not change its key).
SHAPE_ROUTINES = {
    "alpha": "title: Alpha\nexercises:\n  - {name: Reach, setup: [\"Reach up.\"], hold: 2s}\n",
    "bravo": "title: Bravo\nexercises:\n  - {name: Bend, setup: [\"Bend.\"], hold: 2s}\n"
             "  - {name: Fold, setup: [\"Fold.\"], hold: 3s}\n",
    "charlie": "title: Charlie\nexercises:\n  - {name: Sway, setup: [\"Sway.\"], hold: 2s}\n",
}
#: Each case: the routine argument (None: --all into out/), the output, its options.
SHAPE_CASES = {
    "plain": ("r.yaml", "out/t.mp3", ()),
    "transcript": ("r.yaml", "out/t.mp3", ("--transcript",)),
    "split": ("r.yaml", "out/parts", ("--split",)),
    "split-transcript": ("r.yaml", "out/parts", ("--split", "--transcript")),
    "all": (None, "out", ("--transcript",)),
}


@pytest.mark.parametrize("case", sorted(SHAPE_CASES))
def test_up_to_date_json_is_the_json_of_the_made_files(
    case: str, tmp_path: Path, run_cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--json` is one shape whether a file is made now or already there: same keys, same
    values read back from disk (duration from TLEN, within its 1 ms), same order."""
    from voicecoach.routine import library

    routine, dest, options = SHAPE_CASES[case]
    (tmp_path / "r.yaml").write_text(SHAPE_ROUTINES["bravo"], encoding="utf-8")
    bundle = tmp_path / "bundle"  # --all exports "the bundled routines": these, here
    bundle.mkdir()
    for name, text in SHAPE_ROUTINES.items():
        (bundle / f"{name}.yaml").write_text(text, encoding="utf-8")
    monkeypatch.setattr(library, "bundled_dir", lambda: bundle)
    command = ("export", *((routine, "-o", dest) if routine else ("--all", dest)), *options,
               "--json")
    made = _json(run_cli(*command))
    again = _json(run_cli(*command, env={"VOICECOACH_FFMPEG": str(_broken_ffmpeg(tmp_path))}))
    assert [m["up_to_date"] for m in made] == [False] * len(made)
    assert [a["up_to_date"] for a in again] == [True] * len(again)
    _assert_same_files(made, again)
    if case == "all":
        # One made among up-to-date ones keeps routine order (the made one was listed last).
        (tmp_path / dest / "bravo.mp3").unlink()
        mixed = _json(run_cli(*command))
        assert [m["up_to_date"] for m in mixed] == [True, False, True]
        _assert_same_files(made, mixed)
    if case.startswith("split"):
        parts = sorted(str(p) for p in Path(tmp_path / dest).glob("*.mp3"))
        assert [str(tmp_path / a["path"]) for a in again] == parts  # every part, not the folder
    if case == "plain":
        from mutagen.id3 import ID3

        tags = ID3(tmp_path / dest)
        chapters = sorted(tags.getall("CHAP"), key=lambda c: c.start_time)
        assert [(c["start"] * 1000, c["end"] * 1000, c["title"]) for c in again[0]["chapters"]] == [
            (c.start_time, c.end_time, str(c.sub_frames["TIT2"])) for c in chapters]
        assert again[0]["duration"] == int(str(tags["TLEN"])) / 1000


def _json(done: subprocess.CompletedProcess[str]) -> list[dict[str, object]]:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _assert_same_files(made: list[dict[str, object]], again: list[dict[str, object]]) -> None:
    keys = ["path", "duration", "size", "chapters", "extras", "up_to_date"]
    assert [list(item) for item in again] == [keys] * len(made)
    assert [list(item) for item in made] == [keys] * len(made)
    for first, second in zip(made, again, strict=True):
        assert abs(float(first["duration"]) - float(second["duration"])) <= 0.001, (first, second)  # type: ignore[arg-type]
        rest = [k for k in keys if k not in ("duration", "up_to_date")]
        assert {k: second[k] for k in rest} == {k: first[k] for k in rest}


@pytest.fixture
def job_of(tmp_path: Path):  # type: ignore[no-untyped-def]
    """The export job of the test routine with settings, as `export` would plan it. The routine's
    id is its own: history (shared by a worker's tests) holds no session of it."""
    source = tmp_path / f"fresh-{uuid.uuid4().hex[:8]}.yaml"

    def make(settings: coach.Settings, *, split: bool = False, text: str = ROUTINE,
             dest: str = "out.mp3") -> coach.ExportJob:
        source.write_text(text, encoding="utf-8")
        [job] = coach.plan_exports([(source, tmp_path / dest)], settings, split=split)
        return job

    return make


BASE = coach.Settings(detail="full")
#: Settings fields that cannot change the audio or tags: whether clips are cached, and the
#: transcript (its digest, not the key, vouches for the .lrc).
NOT_IN_KEY = {"cache", "transcript"}
#: Settings an export refuses to change (every cue is levelled, so volume is live play's).
REFUSED = {"volume"}


def _changed(field: dataclasses.Field, tmp_path: Path) -> object:  # type: ignore[type-arg]
    if field.name == "music":
        song = tmp_path / "song.mp3"
        song.write_bytes(b"any bytes: the key reads the content, not the sound")
        return song
    return {"engine": "pyttsx3", "voice": "en-us", "rate": 200, "volume": 0.5, "pace": 1.5,
            "only": ("twist",), "skip": ("twist",), "detail": "short", "lead_in": 0.5,
            "chimes": False, "ticks": True, "duck": -6.0, "loudness": -20.0,
            "bitrate": 96, "stitch": False}[field.name]


def test_every_setting_that_changes_the_track_changes_the_key(job_of, tmp_path: Path) -> None:
    base = job_of(BASE).key
    for field in dataclasses.fields(coach.Settings):
        if field.name in NOT_IN_KEY:
            assert job_of(dataclasses.replace(BASE, **{field.name: not getattr(BASE, field.name)})
                          ).key == base, field.name
            continue
        if field.name == "engine":
            continue  # only one espeak-based engine per process: see the engine version test
        if field.name in REFUSED:
            with pytest.raises(UserError):
                job_of(dataclasses.replace(BASE, **{field.name: _changed(field, tmp_path)}))
            continue
        changed = dataclasses.replace(BASE, **{field.name: _changed(field, tmp_path)})
        assert job_of(changed).key != base, field.name
    # The music bed's content, not its name.
    song = tmp_path / "song.mp3"
    with_music = job_of(dataclasses.replace(BASE, music=song)).key
    song.write_bytes(song.read_bytes() + b"!")
    assert job_of(dataclasses.replace(BASE, music=song)).key != with_music
    # The routine's text, the format (split parts), the output's kind.
    assert job_of(BASE, text=ROUTINE.replace("Hug both", "Hold both")).key != base
    assert job_of(BASE, split=True, dest="parts").key != base


def test_engine_version_and_voicecoach_format_are_in_the_key(job_of, monkeypatch) -> None:
    base = job_of(BASE).key
    engine = coach.speech(BASE).engine
    monkeypatch.setattr(engine, "version", engine.version + "-next")
    assert job_of(BASE).key != base
    monkeypatch.undo()
    monkeypatch.setattr(freshness, "FORMAT", freshness.FORMAT + 1)
    assert job_of(BASE).key != base


def test_todays_familiarity_and_screening_answers_are_in_the_key(
    job_of, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What is spoken changes without any option changing: the routine grew familiar (it is
    then spoken in short), or the screening answers leave the manipulation out."""
    monkeypatch.setenv("VOICECOACH_DATA_DIR", str(tmp_path / "data"))  # history and answers
    all_no = [f"{q.key}=no" for q in coach.QUESTIONS]
    coach.screening(all_no)
    settings = coach.Settings()  # detail decided by familiarity
    first = job_of(settings)
    coach.export(first, settings)
    assert coach.is_fresh(first)
    routine = first.decision.routine
    History().record(SessionRecord(routine=routine.id, title=routine.title, kind="live",
                                   started=time.time() - 60, ended=time.time(), completed=True,
                                   position=60.0, exercises_done=("Twist",)))
    second = job_of(settings)  # one session done: familiar_after is 1, so now short
    assert second.decision.options.detail == "short" != first.decision.options.detail
    assert second.key != first.key and not coach.is_fresh(second)
    coach.screening(["chronic=yes"])  # merged with the stored answers
    third = job_of(settings)
    assert third.decision.options.left_out and not second.decision.options.left_out
    assert third.key != second.key


def test_a_damaged_or_foreign_file_is_never_trusted(job_of, tmp_path: Path) -> None:
    settings = dataclasses.replace(BASE, transcript=True)
    job = job_of(settings)
    coach.export(job, settings)
    track, lrc = job.dest, job.dest.with_suffix(".lrc")
    good, good_lrc = track.read_bytes(), lrc.read_bytes()
    assert coach.is_fresh(job)
    rng = random.Random(int(os.environ["VOICECOACH_TEST_SEED"]))
    tag_end = freshness._id3_size(good)
    at = rng.randrange(tag_end, len(good))
    flipped = bytearray(good)
    flipped[at] ^= 0x01
    damages = {
        "truncated": good[: rng.randrange(tag_end, len(good))],
        f"one bit flipped at {at}": bytes(flipped),
        "tag only": good[:tag_end],
        "empty": b"",
        "another track's tag on this audio": good[:tag_end] + good[tag_end:][::-1],
        "untagged audio": good[tag_end:],
    }
    for what, data in damages.items():
        track.write_bytes(data)
        assert not coach.is_fresh(job), what
    track.write_bytes(good)
    for what, text in {"edited": good_lrc + b"[99:00.00]x\n", "missing": None}.items():
        if text is None:
            lrc.unlink()
        else:
            lrc.write_bytes(text)
        assert not coach.is_fresh(job), f"transcript {what}"
    lrc.write_bytes(good_lrc)
    assert coach.is_fresh(job)
    # A foreign MP3 (ffmpeg's own, no key): rebuilt, and then fresh.
    from voicecoach.audio.ffmpeg import ffmpeg_exe

    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i",
                    "sine=frequency=440:duration=1", "-ar", "22050", str(track)], check=True)
    assert not coach.is_fresh(job)
    coach.export(job, settings)
    assert coach.is_fresh(job)


def test_split_parts_are_fresh_only_as_a_whole(job_of) -> None:
    settings = dataclasses.replace(BASE, transcript=True)
    job = job_of(settings, split=True, dest="parts")
    coach.export(job, settings, split=True)
    assert coach.is_fresh(job)
    playlist = next(job.dest.glob("*.m3u"))
    kept = playlist.read_bytes()
    playlist.write_bytes(kept.replace(b"#EXTM3U", b"#EXTM3U\n#edited"))
    assert not coach.is_fresh(job)
    playlist.write_bytes(kept)
    assert coach.is_fresh(job)
    # One part of the set in another's place (copied over it, or two swapped): not that part.
    parts = sorted(job.dest.glob("*.mp3"))
    assert len(parts) > 2
    originals = {p: p.read_bytes() for p in parts}
    for a, b in itertools.permutations(parts, 2):
        a.write_bytes(originals[b])
        assert not coach.is_fresh(job), (a.name, b.name)
        a.write_bytes(originals[a])
    assert coach.is_fresh(job)
    last = parts[-1]
    last.unlink()
    assert not coach.is_fresh(job)


@pytest.mark.slow
def test_an_interrupted_export_never_leaves_a_key_that_lies(tmp_path: Path, seed: int) -> None:
    """Export over a track made with other options and stop it at random moments: the files
    left are the old track (its old key), or the new one whole; a file holding the new key is
    always fresh."""
    (tmp_path / "r.yaml").write_text(ROUTINE, encoding="utf-8")
    cmd = [sys.executable, "-m", "voicecoach", "export", "r.yaml", "-o", "out.mp3",
           "--transcript", "--detail", "full", "--quiet"]
    assert subprocess.run([*cmd, "--pace", "1.2"], cwd=tmp_path, timeout=120).returncode == 0
    new = dataclasses.replace(BASE, transcript=True)
    [job] = coach.plan_exports([(tmp_path / "r.yaml", tmp_path / "out.mp3")], new)
    rng = random.Random(seed)
    for _ in range(4):
        proc = subprocess.Popen([*cmd, "--force"], cwd=tmp_path, stderr=subprocess.PIPE)
        moment = rng.uniform(0.2, 3.0)
        time.sleep(moment)
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
        tags = freshness._txxx((tmp_path / "out.mp3").read_bytes())
        if tags.get(freshness.KEY_TAG) == job.key:
            assert freshness.is_fresh(job.dest, job.key), (
                f"seed {seed}, SIGINT at {moment:.2f} s: the key claims audio the file lacks")


def _regions(data: bytes) -> dict[str, tuple[int, int]]:
    """Named byte ranges of an exported MP3: the tag header, each frame (header and body), the
    check frame's digest and its list of companions, the audio."""
    regions = {"tag header": (0, 10)}
    for number, (name, start, body) in enumerate(freshness._frames(data)):
        regions[f"frame {number} {name.decode()} {body[:24]!r}"] = (start - 10, start + len(body))
    at, _ = freshness._check(data)
    regions["check digest"] = (at, at + 32)
    end = next(start + len(body) for _, start, body in freshness._frames(data)
               if start <= at < start + len(body))
    regions["check companions"] = (at + 32, end)
    regions["audio"] = (freshness._id3_size(data), len(data))
    return regions


def _sweep(job: coach.ExportJob, rng: random.Random, seed: int) -> int:
    """Flip one byte at a time, in every region of every file the job wrote (several random
    offsets each, plus random offsets anywhere), and check the job is then never fresh."""
    files = sorted({p for track, companions in job.files for p in (track, *companions)})
    flips = 0
    for path in files:
        good = path.read_bytes()
        if path.suffix == ".mp3":
            ranges = list(_regions(good).items())
        else:
            ranges = [(path.suffix, (0, len(good)))]
        ranges += [("anywhere", (0, len(good)))] * 8
        for what, (start, end) in ranges:
            for _ in range(3):
                at, bit = rng.randrange(start, end), rng.randrange(1, 256)
                damaged = bytearray(good)
                damaged[at] ^= bit
                path.write_bytes(damaged)
                assert not coach.is_fresh(job), (
                    f"seed {seed}: {path.name} byte {at} ({what}) ^ {bit:#x} still fresh")
                flips += 1
        path.write_bytes(good)
        assert coach.is_fresh(job), f"seed {seed}: {path.name} restored is not fresh"
    return flips


@pytest.mark.parametrize("split", [False, True], ids=["track", "split"])
def test_every_byte_of_every_file_is_checked(job_of, seed: int, split: bool) -> None:
    """Chapters, titles, the year, TLEN, the key, the check's own value, the audio, the .lrc,
    the .m3u: one flipped byte anywhere makes the export not fresh; only the bytes as written
    are."""
    settings = dataclasses.replace(BASE, transcript=True)
    job = job_of(settings, split=split, dest="parts" if split else "out.mp3")
    coach.export(job, settings, split=split)
    assert coach.is_fresh(job)
    flips = _sweep(job, random.Random(f"{seed}-{split}"), seed)
    assert flips > 100
    # Frames in another order: the same frames, not the same file.
    track = job.files[0][0]
    good = track.read_bytes()
    (_, a, body_a), (_, b, body_b) = list(freshness._frames(good))[:2]
    first, second = good[a - 10:a + len(body_a)], good[b - 10:b + len(body_b)]
    track.write_bytes(good[:a - 10] + second + first + good[b + len(body_b):])
    assert not coach.is_fresh(job)
    track.write_bytes(good)
    assert coach.is_fresh(job)


def _frame(data: bytes, name: bytes, within: bytes = b"") -> tuple[int, bytes]:
    return next((start, body) for n, start, body in freshness._frames(data)
                if n == name and within in body)


def test_a_damaged_tag_is_rebuilt_by_export(tmp_path: Path, run_cli) -> None:
    """The audit's cases through the command: a chapter's start time, a chapter's title, the
    year of a --split part. Each is rebuilt, and then holds what a clean export holds."""
    (tmp_path / "r.yaml").write_text(ROUTINE, encoding="utf-8")
    for dest, args in (("t.mp3", ()), ("parts", ("--split",))):
        command = ("export", "r.yaml", "-o", dest, "--detail", "full", *args)
        assert run_cli(*command).returncode == 0
        track = tmp_path / dest if not args else sorted((tmp_path / dest).glob("*.mp3"))[1]
        clean = track.read_bytes()
        if args:
            start, body = _frame(clean, b"TDRC")
            damages = {"year": (start + body.index(b"\xff\xfe") + 2, b"1")}
        else:
            start, body = _frame(clean, b"CHAP", b"chp1\0")
            title = body.index(b"TIT2") + 11  # the title's first byte after its encoding
            damages = {"chp1 start": (start + 5, b"\0\0\0\1"),
                       "chp1 title": (start + title + 4, b"Z")}
        for what, (at, patch) in damages.items():
            damaged = bytearray(clean)
            damaged[at:at + len(patch)] = patch
            assert damaged != clean, what
            track.write_bytes(damaged)
            again = run_cli(*command)
            assert again.returncode == 0, again.stderr
            assert "up to date" not in again.stdout, f"{dest}: {what}"
            rebuilt = track.read_bytes()
            tag = freshness._id3_size(clean)
            assert rebuilt[tag:] == clean[tag:], f"{dest}: {what}"
            assert rebuilt == clean, f"{dest}: {what}"
            assert run_cli(*command).stdout.startswith(f"up to date: {dest}")
