"""No output overwrites an input or another output: every export's files are checked before work."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.helpers import decoded, run_cli

from voicecoach.audio.pcm import SAMPLE_RATE

ROUTINE = "title: Tiny\nexercises:\n  - name: Reach\n    hold: 1s\n"


def _cli(folder: Path, *args: str, **kw) -> subprocess.CompletedProcess[bytes]:  # type: ignore[no-untyped-def]
    return subprocess.run([sys.executable, "-m", "voicecoach", *args], capture_output=True,
                          cwd=folder, timeout=180, **kw)


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest()
                                         if p.is_file() and not p.is_symlink() else "dir")
            for p in sorted(folder.rglob("*"))}


def _music(folder: Path) -> Path:
    # A real audio file, made by the same ffmpeg voicecoach uses. Called again over an existing
    # song.mp3 (to make the next one): ffmpeg 4.2 (imageio-ffmpeg 0.5) asks first, then exits 1.
    from voicecoach.audio.ffmpeg import ffmpeg_exe

    path = folder / "song.mp3"
    subprocess.run([ffmpeg_exe(), "-nostdin", "-y", "-loglevel", "error", "-f", "lavfi", "-i",
                    "sine=frequency=440:duration=2", "-c:a", "libmp3lame", str(path)], check=True)
    return path


#: (set-up in the folder, export arguments): each one would destroy an input or collide.
MISTAKES = {
    "track-over-routine": (None, ["r.yaml", "-o", "r.yaml"]),
    "track-over-routine-by-symlink": ("symlink", ["r.yaml", "-o", "link.mp3"]),
    "track-over-routine-by-hard-link": ("hardlink", ["r.yaml", "-o", "hard.mp3"]),
    "track-over-routine-via-dotdot": ("sub", ["r.yaml", "-o", "sub/../r.yaml"]),
    "track-over-music": ("music", ["r.yaml", "--music", "song.mp3", "-o", "song.mp3"]),
    "track-over-music-by-symlink": ("music-link",
                                    ["r.yaml", "--music", "song.mp3", "-o", "s2.mp3"]),
    "all-over-music": ("music", ["--all", ".", "--music", "five-minute-back.mp3"]),
    "split-part-over-music": ("music", ["r.yaml", "--split", "-o", "parts",
                                        "--music", "parts/01-introduction.mp3"]),
    "split-playlist-over-routine": ("routine-in-parts", ["parts/r.m3u", "--split", "-o", "parts"]),
    "transcript-over-routine": ("lrc-routine", ["t.lrc", "-o", "t.mp3", "--transcript"]),
    "suffix-wav": (None, ["r.yaml", "-o", "x.wav"]),
    "suffix-none": (None, ["r.yaml", "-o", "x"]),
    "track-is-a-folder": ("sub", ["r.yaml", "-o", "sub"]),
    "split-folder-is-a-file": (None, ["r.yaml", "--split", "-o", "r.yaml"]),
    "all-folder-is-a-file": (None, ["--all", "r.yaml"]),
    "under-a-file": (None, ["r.yaml", "-o", "r.yaml/x.mp3"]),
    "name-too-long": (None, ["r.yaml", "-o", "n" * 300 + ".mp3"]),
    "stdout-with-split": (None, ["r.yaml", "-o", "-", "--split"]),
    "stdout-with-transcript": (None, ["r.yaml", "-o", "-", "--transcript"]),
    "bitrate-too-high-for-22khz": (None, ["r.yaml", "-o", "x.mp3", "--bitrate", "320"]),
    "bitrate-between-steps": (None, ["r.yaml", "-o", "x.mp3", "--bitrate", "100"]),
}


def _prepare(folder: Path, setup: str | None) -> None:
    (folder / "r.yaml").write_text(ROUTINE)
    if setup == "symlink":
        (folder / "link.mp3").symlink_to("r.yaml")
    elif setup == "hardlink":
        os.link(folder / "r.yaml", folder / "hard.mp3")
    elif setup == "sub":
        (folder / "sub").mkdir()
    elif setup in ("music", "music-link"):
        _music(folder)
        (folder / "parts").mkdir()
        _music(folder).rename(folder / "parts" / "01-introduction.mp3")
        _music(folder).rename(folder / "five-minute-back.mp3")
        _music(folder)
        if setup == "music-link":
            (folder / "s2.mp3").symlink_to("song.mp3")
    elif setup == "routine-in-parts":
        (folder / "parts").mkdir()
        (folder / "parts" / "r.m3u").write_text(ROUTINE)
    elif setup == "lrc-routine":
        (folder / "t.lrc").write_text(ROUTINE)


FAST = {"track-over-routine", "track-over-routine-by-hard-link", "split-part-over-music",
        "under-a-file", "suffix-wav"}


@pytest.mark.parametrize(
    "case", [pytest.param(c, marks=() if c in FAST else pytest.mark.slow) for c in MISTAKES])
def test_an_export_that_would_overwrite_or_collide_is_refused_before_any_work(
    tmp_path: Path, case: str
) -> None:
    setup, args = MISTAKES[case]
    _prepare(tmp_path, setup)
    before = _snapshot(tmp_path)
    cache = tmp_path.parent / f"{tmp_path.name}-cache"
    done = run_cli("export", *args, "-q", cwd=tmp_path, env={"VOICECOACH_CACHE_DIR": str(cache)})
    stderr = done.stderr
    lines = [line for line in stderr.splitlines() if not line.startswith("note: ")]
    assert done.returncode == 2, f"{case}: exit {done.returncode}\n{stderr}"
    assert len(lines) == 1 and "internal error" not in stderr, f"{case}: {stderr}"
    assert _snapshot(tmp_path) == before, f"{case}: something was touched"
    # Refused before any speech was made: nothing reached the clip cache.
    assert not cache.exists() or not any(p.is_file() for p in cache.rglob("*")), \
        f"{case}: speech was made"


def test_case_folded_outputs_of_one_export_are_one_file(tmp_path: Path) -> None:
    """`--all` into a folder with two routines whose ids differ only in capitals would be one
    file on a phone's FAT card: the plan compares outputs case-folded."""
    from voicecoach.errors import UserError
    from voicecoach.export.outputs import OutputPlan

    plan = OutputPlan()
    plan.write("track", tmp_path / "Back.mp3", suffix=".mp3")
    plan.write("track", tmp_path / "back.mp3", suffix=".mp3")
    with pytest.raises(UserError, match="same file"):
        plan.check()


def test_dash_writes_a_complete_mp3_to_a_pipe(tmp_path: Path) -> None:
    """`-o -`: the MP3 (made seekable first, so it has its Xing header and chapters) goes to
    stdout; what came through the pipe decodes to the same samples as the file export."""
    _prepare(tmp_path, None)
    # A cache of its own: the two exports must speak from the same clips, which no other test's
    # process may replace in between (seen once in about ten fast-lane runs: 382 apart).
    env = {**os.environ, "VOICECOACH_CACHE_DIR": str(tmp_path / "cache")}
    piped = _cli(tmp_path, "export", "r.yaml", "-o", "-", "-q", env=env)
    assert piped.returncode == 0, piped.stderr.decode()
    assert piped.stderr.decode().startswith("Wrote MP3 to standard output")
    (tmp_path / "piped.mp3").write_bytes(piped.stdout)
    made = _cli(tmp_path, "export", "r.yaml", "-o", "file.mp3", "-q", env=env)
    assert made.returncode == 0, made.stderr.decode()
    from_pipe, from_file = decoded(tmp_path / "piped.mp3"), decoded(tmp_path / "file.mp3")
    assert len(from_pipe) == len(from_file) > SAMPLE_RATE
    assert max(abs(a - b) for a, b in zip(from_pipe, from_file, strict=True)) <= 2
    assert piped.stdout[:3] == b"ID3"  # the chapters came through too
    assert not list(tmp_path.glob(".*voicecoach-part*"))
