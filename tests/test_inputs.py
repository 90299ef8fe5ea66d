"""What a routine argument may be: a regular file of bounded size (never a pipe, FIFO or device,
which have no size to check and may never end), holding text without control characters (not
even as YAML escapes, which would reach the terminal, the .lrc, the playlist and the tags)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import run_cli
from voicecoach.errors import RoutineErrors
from voicecoach.routine.loader import load_routine

COMMANDS = [
    ["validate"],
    ["show"],
    ["show", "--estimate"],
    ["export", "-o", "{tmp}/x.mp3"],
    ["play", "--audio", "none"],
]


def _run(args: list[str], tmp: Path, stdin: int | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "voicecoach", *args], capture_output=True,
                          text=True, timeout=60, cwd=tmp, stdin=stdin)


KINDS = ["fifo", "device", "pipe"]


# Each a process of its own (a wait for ever must end in a timeout, not a hung test run): the fast
# lane meets every command once and every kind, the full suite every pair.
@pytest.mark.parametrize(("command", "kind"), [
    pytest.param(c, k, id=f"{' '.join(c[:2])}-{k}",
                 marks=() if i % len(KINDS) == j else pytest.mark.slow)
    for i, c in enumerate(COMMANDS) for j, k in enumerate(KINDS)])
def test_a_routine_that_is_not_a_regular_file_is_one_line_and_exit_2(
        kind: str, command: list[str], tmp_path: Path) -> None:
    stdin = None
    if kind == "fifo":
        source = tmp_path / "r.yaml"
        os.mkfifo(source)  # nobody ever writes to it: opening it would wait for ever
    elif kind == "device":
        source = Path("/dev/zero")  # endless: reading it would never stop growing
    else:
        read, write = os.pipe()
        os.write(write, b"title: A\nexercises:\n  - name: X\n    hold: 5s\n")
        os.close(write)
        source, stdin = Path("/dev/stdin"), read
    args = [a.replace("{tmp}", str(tmp_path)) for a in command]
    done = _run([args[0], str(source), *args[1:]], tmp_path, stdin)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "is not a regular file" in lines[0], done.stderr


#: Every C0 and C1 control but line feed and tab, and the characters that reorder text on screen.
CONTROLS = [c for c in range(0x20) if c not in (0x0A, 0x09)] + list(range(0x7F, 0xA0)) + [
    0x202A, 0x202B, 0x202C, 0x202D, 0x202E, 0x2066, 0x2067, 0x2068, 0x2069]


@pytest.mark.parametrize("field", ["title", "name", "step", "caution"])
def test_control_characters_written_as_escapes_are_refused_where_they_are(
        field: str, tmp_path: Path) -> None:
    for code in CONTROLS:
        escape = f"\\u{code:04x}"
        text = {"title": "Evil", "name": "Twist", "step": "Lie down.", "caution": "Go gently."}
        text[field] = f"a{escape}b"
        doc = (f'title: "{text["title"]}"\ncautions: ["{text["caution"]}"]\nexercises:\n'
               f'  - name: "{text["name"]}"\n    setup: ["{text["step"]}"]\n    hold: 5s\n')
        path = tmp_path / "r.yaml"
        path.write_text(doc, encoding="utf-8")
        with pytest.raises(RoutineErrors) as caught:
            load_routine(path)
        line = doc.splitlines().index(next(x for x in doc.splitlines() if escape in x)) + 1
        error = caught.value.errors[0]
        assert (error.lineno, f"U+{code:04X}") == (line, error.message.split()[2]), error.line()


def test_line_breaks_and_tabs_in_text_are_still_fine(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text('title: "A\\tB"\nexercises:\n  - name: X\n    setup: ["One.\\nTwo."]\n'
                    "    hold: 5s\n", encoding="utf-8")
    assert load_routine(path).title == "A\tB"


def test_the_events_file_of_play_must_be_jsonl(tmp_path: Path) -> None:
    keep = tmp_path / "music.mp3"
    keep.write_bytes(b"not to be overwritten")
    done = run_cli("play", "five-minute-back", "--audio", "none", "--events", str(keep),
                   cwd=tmp_path)
    assert done.returncode == 2 and keep.read_bytes() == b"not to be overwritten", done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


@pytest.mark.parametrize("dest", ["-", "x.txt", "folder", "a-file/x.yaml", "n" * 300 + ".yaml"])
def test_make_checks_its_output_before_any_work(dest: str, tmp_path: Path) -> None:
    (tmp_path / "folder.yaml").mkdir()
    (tmp_path / "a-file").write_text("keep", encoding="utf-8")
    dest = "folder.yaml" if dest == "folder" else dest
    before = sorted(p.name for p in tmp_path.iterdir())
    done = run_cli("make", "-o", dest, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def _bad_paths(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """Every way a path given to read can be wrong, and the words that must name it."""
    afile = tmp_path / "afile.txt"
    afile.write_text("x", encoding="utf-8")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    return {
        "missing": (tmp_path / "nope" / "x.mp3", "no such"),
        "under a file": (afile / "x.mp3", "is a file, not a folder"),
        "folder": (tmp_path, "is a folder"),
        "fifo": (fifo, "not a regular file"),
    }


@pytest.mark.parametrize("command", [
    ("export", "five-minute-back", "--music", "{p}", "-o", "out.mp3"),
    ("play", "five-minute-back", "--audio", "none", "--music", "{p}"),
    ("export", "{p}", "-o", "out.mp3"),
    ("show", "{p}"),
    ("validate", "{p}"),
], ids=lambda c: " ".join(c))
def test_a_path_to_read_says_what_is_wrong_with_it(
    command: tuple[str, ...], tmp_path: Path
) -> None:
    """Every file argument or option a command reads, given each kind of wrong path: one line
    that names the path and says which way it is wrong, exit 2, nothing written."""
    for kind, (path, words) in _bad_paths(tmp_path).items():
        args = [a.replace("{p}", str(path)) for a in command]
        done = run_cli(*args, cwd=tmp_path, env={"VOICECOACH_DATA_DIR": str(tmp_path / "d")})
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1, (kind, done.stderr)
        assert words in lines[0], (kind, lines[0])
        assert str(path) in lines[0] or path.name in lines[0], (kind, lines[0])
        assert not (tmp_path / "out.mp3").exists()


def test_serve_routines_must_be_a_folder_it_can_read(tmp_path: Path) -> None:
    paths = _bad_paths(tmp_path)
    for kind, (path, words) in paths.items():
        if kind == "folder":
            continue
        words = "not a folder" if kind == "fifo" else words
        done = run_cli("serve", "--routines", str(path), "--port", "0",
                       env={"VOICECOACH_DATA_DIR": str(tmp_path / "d")})
        assert done.returncode == 2 and words in done.stderr and str(path) in done.stderr, (
            kind, done.stderr)


def test_an_in_process_command_leaves_every_signal_as_it_found_it() -> None:
    """A command ends by ignoring the signals it handles; the test harness must put them back,
    or a SIGHUP left ignored is inherited by every later subprocess, which then (as under
    nohup) carries on through a hangup: CI once waited 20 s on such a play."""
    import signal

    from voicecoach import cancel

    before = {s: signal.getsignal(s) for s in cancel.EXIT_CODES}
    assert run_cli("--help").returncode == 0
    assert {s: signal.getsignal(s) for s in cancel.EXIT_CODES} == before
