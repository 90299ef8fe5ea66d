"""Write files people keep atomically: a temporary file beside the destination, then a rename."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path

from voicecoach.errors import UserError, os_fault

_TAG = "voicecoach-part"
_PATTERN = re.compile(rf"^\.(?P<name>.+)\.{_TAG}-(?P<pid>\d+)-[0-9a-f]+$")


def temp_path(dest: Path) -> Path:
    """A hidden temporary name beside `dest` that says which process owns it."""
    return dest.with_name(f".{dest.name}.{_TAG}-{os.getpid()}-{secrets.token_hex(4)}")


@contextlib.contextmanager
def atomic_target(dest: Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces `dest`, on any failure it goes.

    `dest` is never partial: it is either untouched or the complete new file."""
    dest = Path(dest)
    folder = dest.parent
    if not folder.exists():
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise os_fault(exc, f"creating the folder {folder}") from None
    if dest.is_dir():
        raise UserError(f"{dest}: is a folder", fix="give a file name, e.g. -o routine.mp3")
    remove_stale(folder)
    tmp = temp_path(dest)
    try:
        yield tmp
        _fsync(tmp)
        try:
            os.replace(tmp, dest)
        except OSError as exc:
            raise os_fault(exc, f"moving the finished file to {dest}") from None
    finally:
        # On a read-only disk even removing a file that was never made fails (EROFS): that
        # must not hide the error that brought us here.
        with contextlib.suppress(OSError):
            tmp.unlink()


def write_bytes(dest: Path, data: bytes) -> None:
    with atomic_target(dest) as tmp:
        try:
            tmp.write_bytes(data)
        except OSError as exc:
            raise os_fault(exc, f"writing {dest}") from None


def write_text(dest: Path, text: str) -> None:
    write_bytes(dest, text.encode("utf-8"))


def _fsync(path: Path) -> None:
    # The rename must not reach the disk before the data does.
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_stale(folder: Path) -> list[Path]:
    """Remove temporaries left by voicecoach processes that no longer run (e.g. after SIGKILL)."""
    removed: list[Path] = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = _PATTERN.match(entry.name)
        if match and not _alive(int(match["pid"])):
            with contextlib.suppress(OSError):
                entry.unlink()
                removed.append(entry)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    if os.name == "nt":  # os.kill would terminate the process there; keep the file instead
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True
