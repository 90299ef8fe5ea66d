"""What is written is right for every reader: chapters in time order for ffmpeg, mutagen and an
.m4b conversion, and texts printed as written (no doubled punctuation), over every bundled
routine."""

from __future__ import annotations

import itertools
import json
import re
import subprocess
from pathlib import Path

import imageio_ffmpeg
import pytest
from mutagen.id3 import ID3

from helpers import run_cli
from voicecoach.export.tags import Chapter, TrackTags, write_tags
from voicecoach.plan.timeline import PlanOptions, build_plan
from voicecoach.routine.library import bundled
from voicecoach.routine.loader import load_routine

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()
_CHAPTER = re.compile(r"Chapter #\d+:\d+: start (-?[\d.]+), end (-?[\d.]+)")


def ffmpeg_chapters(path: Path) -> list[tuple[float, float, str]]:
    """(start, end, title) as `ffmpeg -i` lists them: in the order they are stored."""
    err = subprocess.run([FFMPEG, "-hide_banner", "-i", str(path)], capture_output=True,
                         text=True).stderr
    lines, out = err.splitlines(), []
    for i, line in enumerate(lines):
        if m := _CHAPTER.search(line):
            title = next((ln.split(":", 1)[1].strip() for ln in lines[i + 1:i + 4]
                          if ln.strip().startswith("title")), "")
            out.append((float(m[1]), float(m[2]), title))
    return out


def assert_readable_in_order(path: Path, titles: list[str], tmp: Path) -> None:
    """Every reader sees the chapters in time order, each longer than zero, with its title."""
    def check(chapters: list[tuple[float, float, str]], reader: str) -> None:
        assert [c[2] for c in chapters] == titles, f"{reader}: {path.name}"
        for (s0, e0, _), (s1, _, _) in itertools.pairwise(chapters):
            assert s0 < e0 <= s1 + 0.001, f"{reader}: {path.name} {chapters}"
        assert chapters[-1][0] < chapters[-1][1], f"{reader}: {path.name}"

    check(ffmpeg_chapters(path), "ffmpeg")
    stored = ID3(path).getall("CHAP")  # mutagen keeps frames in file order
    check([(c.start_time / 1000, c.end_time / 1000, c.sub_frames["TIT2"].text[0]) for c in stored],
          "mutagen")
    m4b = tmp / (path.stem + ".m4b")
    # The chapters are the container's: ALAC writes the same .m4b chapter list as AAC at a
    # quarter of the cost (AAC took most of this test's time).
    subprocess.run([FFMPEG, "-v", "error", "-y", "-i", str(path), "-map", "0:a", "-c:a", "alac",
                    str(m4b)], check=True, capture_output=True)
    check(ffmpeg_chapters(m4b), "m4b")


def test_chapters_are_stored_in_time_order_whatever_their_title_lengths(tmp_path: Path) -> None:
    """mutagen alone writes frames by size; titles of falling length came out reversed."""
    track = tmp_path / "t.mp3"
    subprocess.run([FFMPEG, "-v", "error", "-f", "lavfi", "-i", "anullsrc=r=22050:cl=mono",
                    "-t", "12", "-c:a", "libmp3lame", "-b:a", "32k", str(track)], check=True)
    titles = ["A much longer introduction title", "Middle one", "Short", "X"]
    chapters = tuple(Chapter(t, i * 3000, (i + 1) * 3000) for i, t in enumerate(titles))
    write_tags(track, TrackTags(title="t", album="a", year=2026, chapters=chapters))
    assert_readable_in_order(track, titles, tmp_path)


@pytest.mark.slow
@pytest.mark.long
def test_every_bundled_routine_and_split_part_reads_back_in_order(tmp_path: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    done = run_cli("export", "--all", "tracks", "--bitrate", "32", "--json", timeout=600)
    assert done.returncode == 0, done.stderr
    for track in json.loads(done.stdout):
        path = (Path(track["path"]) if Path(track["path"]).is_absolute()
                else tmp_path / track["path"])
        assert_readable_in_order(path, [c["title"] for c in track["chapters"]], tmp_path)
    done = run_cli("export", "back-crack-worksheet", "--split", "-o", "parts", "--bitrate", "32",
                   "--json")
    assert done.returncode == 0, done.stderr
    parts = [p for p in json.loads(done.stdout)]
    assert len(parts) > 2
    for part in parts:
        path = Path(part["path"]) if Path(part["path"]).is_absolute() else tmp_path / part["path"]
        titles = [c["title"] for c in part["chapters"]]
        if len(titles) > 1:
            assert_readable_in_order(path, titles, tmp_path)


#: A routine whose every name and title already ends a sentence, using every kind of cue.
PUNCTUATED = """\
title: Feeling stiff?
source: An article.
cautions: [{say: "Stop if it hurts!", short: "Careful!"}, "Go slowly."]
defaults: {rest: 6s, countdown: 3, halfway_after: 10s}
exercises:
  - name: Twist.
    sides: [left, right]
    sets: 2
    summary: Knees to the {side}.
    setup: ["Lie down.", "Drop your knees to the {side}."]
    hold: 12s
    then: [{say: "Rock gently!", hold: 4s}]
  - name: Breathe?
    caution: Keep it soft.
    manipulation: true
    limits: {wait: 1h, note: "Once an hour, at most."}
    hold: 20s
    breathing: {inhale: 3s, exhale: 3s}
  - name: Curl ups!
    reps: 3
    each_rep: [{say: "Up!", seconds: 2s, breath: in}, {say: "Down?", seconds: 2s}]
  - name: Count…
    reps: 3
"""
#: Doubled sentence marks ("Twist..", "Feeling stiff?.") but not an ellipsis ("...").
_DOUBLED = re.compile(r"[!?\u2026]\.|(?<!\.)\.\.(?!\.)")


def _plans(routine):  # type: ignore[no-untyped-def]
    for detail in ("full", "short"):
        left = ((routine.exercises[-1].name, "you did it an hour ago."),)
        yield build_plan(routine, PlanOptions(detail=detail, left_out=left))
        yield build_plan(routine, PlanOptions(detail=detail))


@pytest.mark.parametrize("which", [*sorted(bundled()), "punctuated"])
def test_texts_are_printed_as_written_without_a_doubled_full_stop(
    which: str, tmp_path: Path
) -> None:
    if which == "punctuated":
        (tmp_path / "p.yaml").write_text(PUNCTUATED, encoding="utf-8")
        routine = load_routine(tmp_path / "p.yaml")
    else:
        routine = load_routine(bundled()[which])
    kinds = set()
    for plan in _plans(routine):
        for event in plan.events:
            kinds.add(event.kind)
            assert not _DOUBLED.search(event.text), f"{event.kind.value}: {event.text!r}"
        names = [e.text for e in plan.events if e.exercise and e.text.startswith(e.exercise[:-1])]
        for ex in plan.exercises:
            assert any(t == ex or t == ex + "." for t in names), ex
    if which == "punctuated":
        from voicecoach.plan.timeline import Kind

        assert kinds == set(Kind), set(Kind) - kinds
        assert {"Twist.", "Breathe?", "Curl ups!", "Count…"} <= {
            e.text for e in build_plan(routine).events}
        shown = run_cli("show", "p.yaml", cwd=tmp_path)
        assert shown.returncode == 0, shown.stderr
        assert "Feeling stiff?" in shown.stdout and not _DOUBLED.search(shown.stdout)
