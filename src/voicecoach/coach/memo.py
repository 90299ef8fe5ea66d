"""An up-to-date export answered from a remembered check, before the command line is loaded.

Deciding `up to date` the full way costs the routine model, the planner, the speech engine and
a digest of every byte of the track (docs/reliability.md). Once an export command has found its
files up to date, or written them, it remembers, under its exact arguments, working folder and
environment: the content digest of every input file the key was made from (routine files, the
bundled library, screening answers, the music bed), the history's count of live sessions that
familiarity read, the speech engine's files by stat identity, the key, and each output file's
stat identity (dev, inode, size, mtime_ns, ctime_ns). The next identical command re-reads the
small inputs, stats the outputs and prints the remembered answer.

A stat identity vouches for a file's bytes only when the file was last changed well before the
check began (git's racy-clean rule, RACY_NS): a change in the same timestamp tick as the checked
version could keep every stat field; such a file has its bytes digested again
(voicecoach.export.freshness.is_fresh), and the memo is renewed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

FORMAT = 2
#: A file changed less than this before its check began is checked by its bytes: stat times
#: are coarse (a kernel tick; 2 s on FAT), and an edit in the same tick may keep them all.
RACY_NS = 3_000_000_000
#: The environment an export may depend on (data and cache folders, engine data, locale).
_ENV = ("VOICECOACH_", "ESPEAK", "LANG", "LC_", "XDG_", "HOME", "PYTHON", "APPDATA")
#: Arguments that make the command's answer something other than a file to check.
_NOT_REMEMBERED = {"-", "--output=-", "-o-", "today", "--help", "-h"}


def request(argv: Sequence[str]) -> str | None:
    """The name a command's memo is kept under, or None for a command never answered so
    (not an export, to standard output, `today`). --force is left out: it rebuilds and then
    remembers the answer the same command without it will get."""
    args = [a for a in argv if a != "--force"]
    if not args or args[0] != "export" or _NOT_REMEMBERED & set(args):
        return None
    from voicecoach import __version__

    env = sorted((k, v) for k, v in os.environ.items() if k.startswith(_ENV))
    return _digest(json.dumps([FORMAT, __version__, sys.executable, os.getcwd(), args, env])
                   .encode())


def stat_id(path: Path) -> list[int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def contents(paths: Sequence[Path]) -> dict[str, str | None]:
    """Each file's digest (None: not there, or a folder: the sorted names in it)."""
    found: dict[str, str | None] = {}
    for path in paths:
        try:
            if path.is_dir():
                found[str(path)] = _digest("\0".join(sorted(os.listdir(path))).encode())
            else:
                found[str(path)] = _file_digest(path)
        except FileNotFoundError:
            found[str(path)] = None
        except OSError:
            found[str(path)] = "unreadable"
    return found


def _file_digest(path: Path) -> str:
    """A regular file's digest, read in pieces; for anything else (a FIFO, a device: the export
    refuses those) only its kind: opened without blocking, and never read."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb", buffering=0) as file:
        kind = stat.S_IFMT(os.fstat(fd).st_mode)
        if kind != stat.S_IFREG:
            return f"not a regular file ({kind:o})"
        return hashlib.file_digest(file, lambda: hashlib.blake2b(digest_size=16)).hexdigest()


def remember(argv: Sequence[str], *, started_ns: int, inputs: Mapping[str, str | None],
             sessions: Mapping[str, int], engine: Sequence[Path], key: Sequence[str],
             files: Sequence[tuple[Path, Sequence[Path]]], said: str, told: str = "") -> None:
    """Keep what an export command found or made (see the module's docstring). `started_ns`:
    when the command began, before any file was checked or written. Never raises: without a
    memo the next run is only slower."""
    name = request(argv)
    if name is None:
        return
    outputs = [[str(track), [str(c) for c in companions],
                [stat_id(p) for p in (track, *companions)]] for track, companions in files]
    record = {"format": FORMAT, "request": name, "checked_ns": started_ns,
              "inputs": dict(inputs), "sessions": dict(sessions),
              "engine": [[str(p), stat_id(p)] for p in engine], "keys": list(key),
              "outputs": outputs, "said": said, "told": told}
    _write(name, record)


def replay(argv: Sequence[str]) -> tuple[str, str] | None:
    """What the command printed (stdout; its notices on stderr) when it last found or made
    these files, if nothing it depends on has changed since; None: the command runs. Never
    raises."""
    try:
        return _replay(argv)
    except Exception:  # any doubt is a full run, never a failure
        return None


def _replay(argv: Sequence[str]) -> tuple[str, str] | None:
    name = None if "--force" in argv else request(argv)
    if name is None:
        return None
    record = _read(name)
    if record is None or record.get("format") != FORMAT or record.get("request") != name:
        return None
    inputs: dict[str, str | None] = record["inputs"]
    if contents([Path(p) for p in inputs]) != inputs:
        return None
    if any(stat_id(Path(p)) != ident for p, ident in record["engine"]):
        return None
    if record["sessions"] and not _same_sessions(record["sessions"]):
        return None
    started = time.time_ns()
    checked, renewed = record["checked_ns"], False
    for (track, companions, idents), key in zip(record["outputs"], record["keys"], strict=True):
        paths = [Path(track), *(Path(c) for c in companions)]
        now = [stat_id(p) for p in paths]
        if now == idents and all(i is not None and max(i[3], i[4]) < checked - RACY_NS
                                 for i in now):
            continue
        from voicecoach.export.freshness import is_fresh

        if not is_fresh(paths[0], key, paths[1:]):
            return None
        renewed = True
    if renewed:  # checked by their bytes: from now on their stat identity vouches for them
        record["checked_ns"] = started
        for output in record["outputs"]:
            output[2] = [stat_id(Path(p)) for p in (output[0], *output[1])]
        _write(name, record)
    said, told = record["said"], record["told"]
    return (said, told) if isinstance(said, str) and isinstance(told, str) else None


def _same_sessions(sessions: Mapping[str, int]) -> bool:
    from voicecoach.safety.history import History

    history = History()
    return all(history.live_sessions(routine) == count for routine, count in sessions.items())


def _folder() -> Path:
    from voicecoach.storage.cache import default_cache_dir

    return default_cache_dir() / "up-to-date"


def _write(name: str, record: dict[str, object]) -> None:
    from voicecoach.errors import VoicecoachError
    from voicecoach.storage import atomic

    body = json.dumps(record, sort_keys=True)
    with contextlib.suppress(OSError, VoicecoachError):
        _folder().mkdir(parents=True, exist_ok=True)
        atomic.write_text(_folder() / f"{name}.json", f"{_digest(body.encode())}\n{body}")


def _read(name: str) -> dict | None:  # type: ignore[type-arg]
    """The memo, if it is whole: it carries its own digest (a damaged memo is no memo)."""
    try:
        seal, _, body = (_folder() / f"{name}.json").read_text(encoding="utf-8").partition("\n")
    except (OSError, UnicodeDecodeError):
        return None
    if seal != _digest(body.encode()):
        return None
    record = json.loads(body)
    return record if isinstance(record, dict) else None


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()
