"""Any terminal: every command under any encoding or locale, and output cut short by a closed
pipe."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROUTINE = "title: Café ✓ stretch\nexercises:\n  - name: Reach 🤗 ëast\n    hold: 1s\n"

#: Every command that prints, with non-ASCII text in what it prints where it can have any.
COMMANDS = {
    "list": ["list"],
    "list-estimate": ["list", "--estimate"],
    "show": ["show", "r.yaml"],
    "show-estimate": ["show", "r.yaml", "--estimate"],
    "show-json": ["show", "r.yaml", "--estimate", "--json"],
    "export": ["export", "r.yaml", "-o", "café ✓.mp3", "--transcript"],
    "export-json": ["export", "r.yaml", "-o", "café ✓.mp3", "--json", "-q"],
    "validate": ["validate", "r.yaml"],
    "validate-bad": ["validate", "bad ✓.yaml"],
    "unknown-routine": ["show", "nö-such-routïne"],
    "safety-show": ["safety", "--show"],
    "history": ["history"],
    "voices": ["voices"],
    "help": ["--help"],
}
EXPECTED = {"validate-bad": 2, "unknown-routine": 2}
TERMINALS = {
    "C-locale": {"LANG": "C", "LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"},
    "ascii": {"PYTHONIOENCODING": "ascii"},
    "latin-1": {"PYTHONIOENCODING": "latin-1"},
    "utf-8": {"PYTHONIOENCODING": "utf-8"},
}
SLOW = {"list", "export", "show"}  # these speak every cue


def _setup(folder: Path) -> None:
    (folder / "r.yaml").write_text(ROUTINE, encoding="utf-8")
    (folder / "bad ✓.yaml").write_text("title: Bäd\nexercises: [{name: Ünknown, hold: -1s}]\n",
                                       encoding="utf-8")


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("LANG", "LC_ALL", "LC_CTYPE", "PYTHONIOENCODING", "PYTHONUTF8")}
    return {**env, **extra}


@pytest.mark.parametrize(("command", "terminal"), [
    # The fast lane keeps latin-1 (the one that crashed); the whole sweep runs with the slow tests.
    pytest.param(c, t, marks=pytest.mark.slow if c in SLOW or t != "latin-1" else ())
    for c in COMMANDS for t in TERMINALS])
def test_every_command_prints_on_every_terminal_encoding(
    tmp_path: Path, command: str, terminal: str
) -> None:
    _setup(tmp_path)
    done = subprocess.run([sys.executable, "-m", "voicecoach", *COMMANDS[command]],
                          capture_output=True, cwd=tmp_path, env=_env(TERMINALS[terminal]),
                          timeout=180)
    report = (f"{command} on {terminal}: exit {done.returncode}\n"
              f"{done.stderr.decode(errors='replace')}")
    assert b"Traceback" not in done.stderr, report
    assert b"internal error" not in done.stderr, report
    assert done.returncode == EXPECTED.get(command, 0), report
    assert done.stdout.strip() or done.stderr.strip(), report
    if command in ("show-estimate", "validate-bad", "unknown-routine"):
        # What the encoding cannot show is replaced (or, where click finds a misconfigured
        # ASCII stream, sent as UTF-8), and the rest is all there.
        shown = (done.stdout + done.stderr).decode("latin-1")
        assert any(word in shown for word in ("stretch", "bad", "routine")), report


PIPED = {
    "list-estimate": ["list", "--estimate"],
    "show-estimate": ["show", "r.yaml", "--estimate"],
    "show-json": ["show", "r.yaml", "--estimate", "--json"],
    "validate": ["validate", "r.yaml", "r.yaml"],
    "safety-show": ["safety", "--show"],
    "history": ["history"],
    "voices": ["voices"],
    "help": ["--help"],
    "export-json": ["export", "r.yaml", "-o", "x.mp3", "--json", "-q"],
    "export-stdout": ["export", "r.yaml", "-o", "-", "-q"],
}


#: Closed-pipe runs: a listing and JSON in the fast lane; the rest of the sweep in the slow.
PIPED_FAST = {"voices", "show-json"}


@pytest.mark.parametrize("command", [
    pytest.param(c, marks=() if c in PIPED_FAST else pytest.mark.slow) for c in PIPED
])
def test_output_cut_short_by_a_closed_pipe_exits_quietly_with_0(
    tmp_path: Path, command: str
) -> None:
    """`voicecoach voices | head -1`: the reader has gone before the command writes; a Unix
    tool stops quietly. The read end is closed first, so every run meets the closed pipe."""
    _setup(tmp_path)
    read, write = os.pipe()
    os.close(read)
    try:
        done = subprocess.run([sys.executable, "-m", "voicecoach", *PIPED[command]],
                              stdout=write, stderr=subprocess.PIPE, cwd=tmp_path,
                              env=_env({}), timeout=180)
    finally:
        os.close(write)
    stderr = done.stderr.decode(errors="replace")
    assert done.returncode == 0, f"{command}: exit {done.returncode}\n{stderr}"
    assert stderr.strip() == "", f"{command}: {stderr}"


#: Closed-stream runs: a mistake and JSON in the fast lane; the rest of the sweep, with the
#: commands that speak and the MP3-to-stdout refusal, in the slow.
CLOSED = {"validate-bad", "show-json"}


@pytest.mark.parametrize("closed", ["stdout", "stderr", "both"])
@pytest.mark.parametrize("command", [
    pytest.param(c, marks=() if c in CLOSED else pytest.mark.slow)
    for c in [*COMMANDS, "export-stdout"]])
def test_a_closed_standard_stream_is_no_traceback(tmp_path: Path, command: str,
                                                  closed: str) -> None:
    """`voicecoach list >&-`: Python starts with that stream as None. The command still does
    its work (what it prints goes nowhere) and exits as it would, never with a traceback; the
    MP3 of `-o -`, whose only place is standard output, is refused (exit 2)."""
    _setup(tmp_path)
    args = PIPED["export-stdout"] if command == "export-stdout" else COMMANDS[command]
    shut = {"stdout": ">&-", "stderr": "2>&-", "both": ">&- 2>&-"}[closed]
    # The shell closes the stream; stderr is kept in a file where it is not the closed one.
    err = tmp_path / "err.txt"
    keep = "" if closed != "stdout" else f" 2>{shlex.quote(str(err))}"
    if command == "export-stdout" and closed == "stderr":
        keep = " >out.mp3"  # stdout open: the MP3 goes there
    line = " ".join(shlex.quote(a) for a in [sys.executable, "-m", "voicecoach", *args])
    done = subprocess.run(["sh", "-c", f"{line} {shut}{keep}"], cwd=tmp_path, env=_env({}),
                          timeout=180)
    want = EXPECTED.get(command, 0)
    if command == "export-stdout":
        want = 0 if closed == "stderr" else 2
    stderr = err.read_text(encoding="utf-8", errors="replace") if err.exists() else ""
    assert done.returncode == want, (command, closed, done.returncode, stderr)
    assert "Traceback" not in stderr and "internal error" not in stderr, stderr
    if command == "export":
        assert (tmp_path / "café ✓.mp3").stat().st_size > 10_000  # the work was done
