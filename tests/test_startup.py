"""Commands import only what they use: help, an up-to-date export and a warm stitched export."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

#: Heavy packages no command below needs: numpy (mixing), the server, live play, the speech
#: engine's second backend. An unchanged export also needs no tags writer nor help formatter.
HEAVY = {"numpy", "starlette", "uvicorn", "miniaudio", "pyttsx3", "pydub"}

ROUTINE = """\
title: Startup check
exercises:
  - name: Knee hug
    setup: ["Lie on your back and hug both knees."]
    hold: 5s
  - name: Twist
    setup: ["Drop both knees to the left."]
    hold: 5s
"""


def _imports(args: list[str], cwd: Path) -> tuple[set[str], str]:
    """The top-level packages a command imports (from -X importtime) and its stdout."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "voicecoach", *args],
                          cwd=cwd, capture_output=True, text=True, env=dict(os.environ),
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    names = {line.rsplit("|", 1)[1].strip().split(".")[0]
             for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert "voicecoach" in names  # the output was read right
    return names, done.stdout


def test_help_imports_no_routine_model_nor_audio(tmp_path: Path) -> None:
    names, out = _imports(["--help"], tmp_path)
    assert "export" in out
    assert not names & (HEAVY | {"pydantic", "mutagen", "yaml"}), names & (HEAVY | {"pydantic"})


def test_warm_and_unchanged_exports_import_no_numpy(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(ROUTINE, encoding="utf-8")
    export = ["export", "r.yaml", "-o", "r.mp3", "--quiet"]
    subprocess.run([sys.executable, "-m", "voicecoach", *export], cwd=tmp_path, check=True,
                   capture_output=True, timeout=300)
    # Warm and stitched: every piece's frames are cached, so no clip is read or levelled.
    names, out = _imports([*export, "--force"], tmp_path)
    assert "Wrote" in out
    assert not names & HEAVY, names & HEAVY
    names, out = _imports(export, tmp_path)
    assert out.startswith("up to date:")
    assert not names & (HEAVY | {"mutagen", "rich"}), names & (HEAVY | {"mutagen", "rich"})


#: What an answer from the remembered check must not load: the command line's parser and
#: formatter, the routine model and its YAML reader, the tags library.
NOT_FOR_AN_UNCHANGED_EXPORT = HEAVY | {"pydantic", "typer", "rich", "yaml", "mutagen", "click"}


def _run(args: list[str], cwd: Path) -> str:
    done = subprocess.run([sys.executable, "-m", "voicecoach", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_an_unchanged_export_is_answered_before_the_command_line_loads(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(ROUTINE, encoding="utf-8")
    for extra in ([], ["--json"]):
        export = ["export", "r.yaml", "-o", "r.mp3", *extra]
        first = _run(export, tmp_path)  # writes, or finds it up to date the full way
        names, again = _imports(export, tmp_path)
        assert again == _run(export, tmp_path)
        assert not names & NOT_FOR_AN_UNCHANGED_EXPORT, names & NOT_FOR_AN_UNCHANGED_EXPORT
        if extra:  # the same shape as the full way's answer: the first run found it up to date
            assert again == first
        else:
            assert again.startswith("up to date: r.mp3 (")
    names, out = _imports(["export", "r.yaml", "-o", "r.mp3", "--force"], tmp_path)
    assert out.startswith("Wrote r.mp3"), out


@pytest.mark.slow  # export processes onto /dev/full, by both paths: an error-path sweep
@pytest.mark.parametrize("way", ["remembered", "--force"])
def test_an_answer_that_cannot_be_written_is_one_line(tmp_path: Path, way: str) -> None:
    """stdout on a full disk: the remembered answer fails as the full way does, in one line."""
    (tmp_path / "r.yaml").write_text(ROUTINE, encoding="utf-8")
    export = ["export", "r.yaml", "-o", "r.mp3", "--transcript"]
    _run(export, tmp_path)
    _run(export, tmp_path)  # now remembered
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-m", "voicecoach", *export,
                               *(["--force"] if way == "--force" else [])],
                              cwd=tmp_path, stdout=full, stderr=subprocess.PIPE, text=True)
    assert done.returncode == 1, done.stderr
    assert done.stderr.count("\n") == 1 and "disk full" in done.stderr, done.stderr


def _flip(path: Path, at: int) -> None:
    """Change one byte in place and put the times back: only ctime tells."""
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[at] ^= 0x01
    with path.open("r+b") as f:
        f.write(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


@pytest.mark.slow  # a sweep: an export process per kind of change
def test_every_kind_of_change_still_rebuilds(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Each change after the answer was remembered: the routine's text (same length), options,
    the voice, the track's audio bytes and its tags (times put back), and the transcript. The
    file changes meet a memo aged past the racy window, so its stat identities alone must see
    them (the digest is made to fail in-process to prove it)."""
    from voicecoach.coach import memo
    from voicecoach.export import freshness

    routine = tmp_path / "r.yaml"
    routine.write_text(ROUTINE, encoding="utf-8")
    base = ["export", "r.yaml", "-o", "r.mp3", "--transcript"]
    _run(base, tmp_path)
    assert _run(base, tmp_path).startswith("up to date:")

    def rebuilds(change, args=base) -> None:  # type: ignore[no-untyped-def]
        change()
        out = _run(args, tmp_path)
        assert out.startswith("Wrote r.mp3"), out
        assert _run(args, tmp_path).startswith("up to date:")  # and is remembered again

    rebuilds(lambda: routine.write_text(ROUTINE.replace("left", "rite"), encoding="utf-8"))
    for option in (["--pace", "1.2"], ["--rate", "150"], ["--bitrate", "48"],
                   ["--lead-in", "2"], ["--detail", "short"], ["--chimes", "off"],
                   ["--voice", "en-gb"]):
        rebuilds(lambda: None, [*base, *option])
    mp3, lrc = tmp_path / "r.mp3", tmp_path / "r.lrc"
    _run(base, tmp_path)
    monkeypatch.chdir(tmp_path)

    def no_digest(*_: object) -> bool:
        raise AssertionError("digested")

    def by_stat_alone(change) -> None:  # type: ignore[no-untyped-def]
        _run(base, tmp_path)
        name = memo.request(base)
        assert name is not None
        record = memo._read(name)
        assert record is not None
        record["checked_ns"] = time.time_ns() + 2 * memo.RACY_NS  # as if long since checked
        memo._write(name, record)
        with monkeypatch.context() as patch:
            patch.setattr(freshness, "is_fresh", no_digest)
            assert memo.replay(base) is not None
            change()
            assert memo.replay(base) is None
        out = _run(base, tmp_path)
        assert out.startswith("Wrote r.mp3"), out

    by_stat_alone(lambda: _flip(mp3, mp3.stat().st_size - 100))  # the audio
    by_stat_alone(lambda: _flip(mp3, 30))  # inside the tag
    by_stat_alone(lambda: _flip(lrc, 5))
    by_stat_alone(lambda: lrc.unlink())


def _forged(tmp_path: Path, monkeypatch, change) -> str | None:  # type: ignore[no-untyped-def]
    """The answer the remembered check gives after `change(record)` edits its memo."""
    from voicecoach.coach import memo

    monkeypatch.chdir(tmp_path)
    args = ["export", "r.yaml", "-o", "r.mp3"]
    name = memo.request(args)
    assert name is not None
    record = memo._read(name)
    assert record is not None
    kept = json.loads(json.dumps(record))
    change(record)
    memo._write(name, record)
    try:
        return memo.replay(args)
    finally:
        memo._write(name, kept)


@pytest.mark.slow  # the memo's edge cases: the fast lane keeps its main path (above)
def test_racy_files_are_checked_by_their_bytes(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """An edit in the same timestamp tick as the check keeps every stat field (forged here):
    a file changed within RACY_NS of the check is digested, so the edit is caught. Once the
    file is older than that, a change that keeps every stat field (a bit flipped on the disk
    under the file system) is not: docs/reliability.md says so, and this pins it."""
    from voicecoach.coach import memo

    (tmp_path / "r.yaml").write_text(ROUTINE, encoding="utf-8")
    _run(["export", "r.yaml", "-o", "r.mp3"], tmp_path)
    said = _run(["export", "r.yaml", "-o", "r.mp3"], tmp_path)
    mp3 = tmp_path / "r.mp3"
    _flip(mp3, mp3.stat().st_size - 100)

    def same_stat(record, checked: int) -> None:  # type: ignore[no-untyped-def]
        record["outputs"][0][2][0] = memo.stat_id(mp3)
        record["checked_ns"] = checked

    now = mp3.stat().st_ctime_ns
    assert _forged(tmp_path, monkeypatch, lambda r: same_stat(r, now)) is None
    assert _forged(tmp_path, monkeypatch,
                   lambda r: same_stat(r, now + 2 * memo.RACY_NS)) == (said, "")


@pytest.mark.slow  # the memo's edge cases: the fast lane keeps its main path (above)
def test_history_and_engine_files_are_part_of_the_check(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "r.yaml").write_text(ROUTINE, encoding="utf-8")
    _run(["export", "r.yaml", "-o", "r.mp3"], tmp_path)
    said = _run(["export", "r.yaml", "-o", "r.mp3"], tmp_path)
    assert _forged(tmp_path, monkeypatch, lambda r: None) == (said, "")
    # Familiarity reads the count of live sessions: another count, another key.
    assert _forged(tmp_path, monkeypatch,
                   lambda r: r["sessions"].update(r=r["sessions"]["r"] + 1)) is None
    # espeak-ng's library and data, by stat identity (an upgrade replaces them).
    assert _forged(tmp_path, monkeypatch, lambda r: r["engine"][0][1].__setitem__(1, 0)) is None


@pytest.mark.slow  # the whole library exported (the fast lane's unchanged exports are above)
def test_export_all_unchanged_repeats_its_notices_without_loading_the_model(tmp_path: Path) -> None:
    """`export --all` with the screening unanswered tells a note per cracking routine: the
    answer from memory tells them too, on stderr, as the full run does."""
    export = ["export", "--all", "tracks", "--only", "1"]
    full = subprocess.run([sys.executable, "-m", "voicecoach", *export], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)
    assert full.returncode == 0, full.stderr[-2000:]
    again = subprocess.run([sys.executable, "-X", "importtime", "-m", "voicecoach", *export],
                           cwd=tmp_path, capture_output=True, text=True, timeout=600)
    names = {line.rsplit("|", 1)[1].strip().split(".")[0]
             for line in again.stderr.splitlines() if line.startswith("import time:")}
    assert not names & NOT_FOR_AN_UNCHANGED_EXPORT, names & NOT_FOR_AN_UNCHANGED_EXPORT
    told = [line for line in again.stderr.splitlines() if not line.startswith("import time:")]
    assert told == [line for line in full.stderr.splitlines()]
    assert again.stdout == full.stdout.replace("Wrote ", "up to date: ")
