"""The output plan: every file a command will read and write, checked once before any work
starts."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from voicecoach.errors import UserError, os_fault

#: What `atomic.temp_path` adds to a name: "." + name + ".voicecoach-part-PID-8hex".
_TEMP_OVERHEAD = len(".") + len(".voicecoach-part-") + 10 + len("-") + 8
#: `-o -`: the track goes to standard output.
STDOUT = Path("-")


@dataclass(frozen=True)
class Output:
    path: Path
    what: str  # "track", "transcript", "playlist", "events": said in messages
    folder: bool = False  # a folder the command creates or fills (--split, --all)
    suffix: str | None = None  # the only suffix this output may have, e.g. ".mp3"


@dataclass
class OutputPlan:
    """The files one command reads (inputs) and writes (outputs)."""

    inputs: list[tuple[str, Path]] = field(default_factory=list)
    outputs: list[Output] = field(default_factory=list)

    def read(self, what: str, path: Path | None) -> None:
        if path is not None:
            self.inputs.append((what, Path(path)))

    def write(self, what: str, path: Path, *, suffix: str | None = None) -> None:
        self.outputs.append(Output(Path(path), what, suffix=suffix))

    def fill(self, what: str, folder: Path) -> None:
        self.outputs.append(Output(Path(folder), what, folder=True))

    def check(self) -> None:
        """UserError (exit 2) for the first output that would overwrite an input or another
        output, that has the wrong kind (file/folder), suffix or an impossible name; a Fault
        (exit 1) for a folder nothing can be written in (read-only, no permission, full of
        inodes), found now rather than after every cue was spoken. Leaves nothing behind."""
        files = [o for o in self.outputs if not o.folder and o.path != STDOUT]
        for out in self.outputs:
            if out.path != STDOUT:
                _check_shape(out)
        probed: set[Path] = set()
        for out in self.outputs:
            if out.path != STDOUT:
                _check_writable(out.path, probed)
        for out in files:
            for what, source in self.inputs:
                if _same(out.path, source):
                    raise UserError(f"{out.path}: the {out.what} would overwrite the {what} "
                                    f"{source}", fix="write it to another name")
        seen: dict[str, Output] = {}
        for out in files:
            key = _key(out.path)
            if key in seen:
                first = seen[key]
                raise UserError(
                    f"{out.path}: the {out.what} and the {first.what} would be the same file",
                    fix="give them different names (names that differ only in capitals are "
                        "one file on many phones and disks)")
            seen[key] = out


def _check_writable(path: Path, probed: set[Path]) -> None:
    """Create and remove a file where `path` will be written: the one way to know (a read-only
    mount, an immutable folder, root squashed on a network share all pass an access() test)."""
    if _is_regular(path):  # never opened if a FIFO or a device: opening one may block
        # An immutable or append-only file cannot be replaced even where its folder can be
        # written (the rename fails at the very end, after every cue was spoken). Opening it
        # for update changes nothing and says EPERM for those; EACCES (a read-only file of
        # someone else's) is no obstacle to a rename, so it is not a reason to refuse.
        try:
            with open(path, "r+b"):
                pass
        except PermissionError as exc:
            if exc.errno == errno.EPERM:
                raise os_fault(exc, f"replacing {path}") from None
        except OSError:
            pass
    folder = next((p for p in (path.parent, *_ancestors(path)) if _kind(p) == "folder"), None)
    if folder is None or folder in probed:
        return
    probed.add(folder)
    try:
        handle, name = tempfile.mkstemp(prefix=".voicecoach-probe-", dir=folder)
    except OSError as exc:
        raise os_fault(exc, f"writing in {folder}") from None
    os.close(handle)
    with contextlib.suppress(OSError):
        os.unlink(name)


def _check_shape(out: Output) -> None:
    path = out.path
    _check_name_lengths(path, out.folder)
    for parent in _ancestors(path):
        if _kind(parent) == "file":
            raise UserError(f"{path}: {parent} is a file, not a folder",
                            fix="choose a path inside a folder")
    kind = _kind(path)
    if kind == "folder" and not out.folder:
        raise UserError(f"{path}: is a folder; the {out.what} needs a file name",
                        fix=f"e.g. {path / ('routine' + (out.suffix or ''))}")
    if kind == "file" and out.folder:
        raise UserError(f"{path}: is a file; the {out.what} needs a folder",
                        fix="give a folder name, e.g. -o tracks/")
    if out.suffix and path.suffix.lower() != out.suffix:
        name = f"{path.stem or 'routine'}{out.suffix}"
        raise UserError(f"{path}: voicecoach writes {out.suffix[1:].upper()} only, not "
                        f"{path.suffix or 'a file without a suffix'}", fix=f"e.g. -o {name}")


def _is_regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def _kind(path: Path) -> str | None:
    """"file", "folder" or None (absent, or unreachable: the write will then say why)."""
    try:
        return "folder" if stat.S_ISDIR(os.stat(path).st_mode) else "file"
    except (OSError, ValueError):
        return None


def _ancestors(path: Path) -> Iterable[Path]:
    parent = path.parent
    while parent != parent.parent and str(parent) not in ("", "."):
        yield parent
        parent = parent.parent


def _check_name_lengths(path: Path, folder: bool) -> None:
    limit = _name_max(path)
    for index, part in enumerate(path.parts):
        last = index == len(path.parts) - 1
        room = limit - (_TEMP_OVERHEAD if last else 0)  # a --split set is made beside too
        if len(os.fsencode(part)) > room:
            raise UserError(f"{path}: the name {part[:20]}... is too long for the file system "
                            f"({len(os.fsencode(part))} bytes; at most {room})",
                            fix="use a shorter name")


def _name_max(path: Path) -> int:
    probe = next((p for p in (path.parent, *_ancestors(path)) if _kind(p) == "folder"), Path("."))
    try:
        return int(os.pathconf(probe, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return 255


def _same(a: Path, b: Path) -> bool:
    """One file under two names: symlinks, hard links, `..`, or capitals on a folding disk."""
    try:
        if os.path.samefile(a, b):
            return True
    except (OSError, ValueError):
        pass
    return os.path.realpath(a) == os.path.realpath(b)


def _key(path: Path) -> str:
    # Outputs are compared folded: a pair that differs only in capitals is one file on
    # FAT cards, macOS and Windows, where tracks are often copied.
    return os.path.normcase(os.path.realpath(path)).casefold()
