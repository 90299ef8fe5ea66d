"""The two kinds of failure voicecoach reports: user mistakes (exit 2) and faults (exit 1)."""

from __future__ import annotations


class VoicecoachError(Exception):
    """Base class: carries one line for the user and the exit code."""

    exit_code = 1
    #: The line starts with FILE:LINE:COL (the place is the prefix); any other gets `error: `.
    located = False

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix

    def line(self) -> str:
        """The single line shown on stderr."""
        return f"{self.message} ({self.fix})" if self.fix else self.message


class UserError(VoicecoachError):
    """Something the user can fix: a bad routine file, an unknown id, a missing file."""

    exit_code = 2


class RoutineError(UserError):
    """A problem in a routine file, located at PATH:LINE:COL."""

    located = True

    def __init__(
        self, path: str, line: int, col: int, message: str, *, fix: str | None = None
    ) -> None:
        super().__init__(message, fix=fix)
        self.path = path
        self.lineno = line
        self.col = col

    def line(self) -> str:
        return f"{self.path}:{self.lineno}:{self.col}: {super().line()}"


class RoutineErrors(UserError):
    """Several problems found in one routine file (validate reports each of them)."""

    located = True

    def __init__(self, errors: list[RoutineError]) -> None:
        super().__init__(errors[0].message)
        self.errors = errors

    def line(self) -> str:
        return self.errors[0].line()


class Fault(VoicecoachError):
    """Something broke that the user did not cause: the speech engine, the encoder, the disk."""

    exit_code = 1


class EngineError(Fault):
    """The speech engine could not start or could not render a cue."""


class EncoderError(Fault):
    """ffmpeg failed or is missing."""


def os_fault(exc: OSError, doing: str) -> Fault:
    """One line for a failed file operation, saying why and what to do. Paths the user gives
    are checked before any work (voicecoach.export.outputs), so what fails here is a fault,
    exit 1."""
    import errno

    code = exc.errno
    if code in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
        return Fault(f"disk full while {doing}", fix="free some space and retry")
    reasons = {
        errno.ENOTDIR: (
            "part of the path is a file, not a folder", "choose a path inside a folder"
        ),
        errno.EISDIR: ("it is a folder", "give a file name"),
        errno.ENAMETOOLONG: ("a name is too long for the file system", "use a shorter name"),
        errno.EACCES: ("permission denied", "check the permissions, or choose another folder"),
        errno.EPERM: ("not permitted", "check the permissions, or choose another folder"),
        errno.EROFS: ("the file system is read-only", "choose a folder you can write to"),
        errno.ENOENT: ("no such file or folder", None),
    }
    reason, fix = reasons.get(code or 0, (exc.strerror or str(exc), None))
    return Fault(f"{doing} failed: {reason}", fix=fix)


def check_input(path: object, what: str, *, folder: bool = False, fix: str | None = None,
                shown: str | None = None) -> None:
    """A path the user gave for voicecoach to read (`what`: "music file", "routine file"...):
    nothing if it is one, else one line saying which of the ways it is not (missing; a file in
    the middle of the path; a folder where a file is wanted or the reverse; a FIFO or a device,
    which may never end or never open; unreadable). `fix` is the advice when the path leads to
    nothing; the other cases carry their own. `shown` is the path as the user wrote it."""
    import os
    import stat
    from pathlib import Path

    p = Path(str(path))
    name = shown or str(p)
    lost = fix or f"give the path of a {what}"
    try:
        mode = p.stat().st_mode
    except FileNotFoundError:
        raise UserError(f"{name}: no such {'folder' if folder else 'file'}", fix=lost) from None
    except NotADirectoryError:
        parent = next((q for q in p.parents if q.is_file()), p.parent)
        raise UserError(f"{name}: {parent} is a file, not a folder", fix=lost) from None
    except OSError as exc:
        raise UserError(f"{name}: cannot be read ({exc.strerror or exc})", fix=lost) from None
    if folder and not stat.S_ISDIR(mode):
        kind = "a file" if stat.S_ISREG(mode) else "not a folder (a pipe or a device)"
        raise UserError(f"{name}: is {kind}, not a folder" if kind == "a file"
                        else f"{name}: is {kind}", fix=f"give a {what}")
    if not folder and stat.S_ISDIR(mode):
        raise UserError(f"{name}: is a folder, not a {what}", fix=f"give the path of a {what}")
    if not folder and not stat.S_ISREG(mode):
        raise UserError(f"{name}: is not a regular file",
                        fix="save it to a file and give that file's path")
    if not os.access(p, os.R_OK | (os.X_OK if folder else 0)):
        raise UserError(f"{name}: cannot be read (permission denied)",
                        fix=f"give a {what} you can read")
