"""Write files people keep atomically: a temporary file beside the destination, then a rename."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

from voicecoach.errors import UserError, os_fault

_TAG = "voicecoach-part"
_PATTERN = re.compile(rf"^\.(?P<name>.+)\.{_TAG}-(?P<pid>\d+)-[0-9a-f]+$")


def is_temporary(name: str) -> bool:
    """A name temp_path gives."""
    return _PATTERN.match(name) is not None


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


@contextlib.contextmanager
def replaced_folder(dest: Path) -> Iterator[Path]:
    """Yield a new empty folder beside `dest` to fill; on success it takes the place of `dest`
    (and what was there goes) in one step, on any failure it goes: `dest` holds the old set of
    files or the new one, never a mix."""
    dest = Path(dest)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        remove_stale(dest.parent)
        work = temp_path(dest)
        work.mkdir()
    except OSError as exc:
        raise os_fault(exc, f"creating a folder beside {dest}") from None
    try:
        yield work
        try:
            _swap_in(work, dest)
        except OSError as exc:
            raise os_fault(exc, f"moving the finished files to {dest}") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _swap_in(work: Path, dest: Path) -> None:
    """Put `work` at `dest`; the old `dest`, if any, ends at `work` (removed by the caller)."""
    if not dest.exists():
        os.rename(work, dest)
        return
    if _exchange(work, dest):
        return
    # No atomic exchange here: two renames, with the old set kept under a temporary name (the
    # next run removes it) for the instant between them.
    old = temp_path(dest)
    os.rename(dest, old)
    os.rename(work, dest)
    os.rename(old, work)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_cwd, exchange = -100, 2
    if renameat2(at_cwd, os.fsencode(a), at_cwd, os.fsencode(b), exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(b))


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
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)  # a --split set being made (see replaced_folder)
                else:
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
