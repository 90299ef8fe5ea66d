"""The one place the server asks the core: routines, today's limits, tracks and sessions."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from voicecoach import coach
from voicecoach.errors import UserError

if TYPE_CHECKING:
    from voicecoach.plan.timeline import Plan, PlanOptions
    from voicecoach.routine.model import Routine

#: The same defaults as `play` and `export` (one Settings owns them); served tracks are made for
#: the SERVE purpose: today's limits apply, and a short lead-in lets a phone's player settle.
SETTINGS = coach.Settings()
PURPOSE = coach.Purpose.SERVE
LEAD_IN = PURPOSE.lead_in


def routines(folders: Sequence[Path], with_library: bool = True) -> dict[str, Path]:
    """Routine ids and their files: the library's, then each folder's. Two files whose names
    make one id (`a b.yaml`, `A&B.yaml`; a folder's own five-minute-back.yaml) are both served:
    the later one's id gets a suffix from its file name, the same on every start."""
    found = {coach.routine_id(p): p for p in coach.bundled()} if with_library else {}
    for folder in folders:
        try:
            paths = sorted(folder.iterdir())
        except OSError:  # removed or unreadable since the server started: none from it now
            continue
        for path in paths:
            if path.suffix in (".yaml", ".yml") and path.is_file():
                found[_free_id(found, path)] = path
    return found


def _free_id(taken: dict[str, Path], path: Path) -> str:
    base = coach.routine_id(path)
    if base not in taken:
        return base
    name = path.name.encode("utf-8", "surrogateescape")
    digest = hashlib.blake2b(name, digest_size=8).hexdigest()
    for size in (4, 8, 16):
        candidate = f"{base}-{digest[:size]}"
        if candidate not in taken:
            return candidate
    raise AssertionError("a 64-bit name digest collided")  # pragma: no cover


@dataclass(frozen=True)
class Decision:
    """What a session of one routine holds today, decided by the application layer as `play`
    decides it (screening, limits, familiarity)."""

    routine: Routine
    options: PlanOptions
    detail: str
    left_out: tuple[tuple[str, str], ...]
    key: str
    refused: str | None = None
    core: coach.Decision | None = None


class _Loaded:
    """Routines read from their files, each kept while its file's stat says it is unchanged
    (parsing and linting a bundled routine is most of what a routine list costs). What is
    decided from a routine (limits, familiarity, the track's key) is decided anew each time."""

    def __init__(self) -> None:
        self._kept: dict[Path, tuple[tuple[int, ...], Routine]] = {}
        self._lock = threading.Lock()

    def __call__(self, path: Path) -> Routine:
        try:
            info = path.stat()
        except OSError:
            return coach.load(path)  # its mistake is told as coach tells it
        # A file replaced by rename has a new inode; one edited in place, a new mtime or size.
        stamp = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)
        with self._lock:
            kept = self._kept.get(path)
        if kept is not None and kept[0] == stamp:
            return kept[1]
        routine = coach.load(path)
        with self._lock:
            self._kept[path] = (stamp, routine)
        return routine


_load = _Loaded()


def decide(path: Path, rid: str | None = None) -> Decision:
    """Load a routine and apply today's screening and frequency limits (the live-play rules).
    `rid` is the id the server lists it under (see routines: it may carry a suffix)."""
    routine = _load(path)
    if rid is not None and rid != routine.id:
        routine = routine.model_copy(update={"id": rid})
    try:
        made = coach.decide(routine, SETTINGS, PURPOSE)
    except UserError as exc:
        return Decision(routine, SETTINGS.plan_options(PURPOSE), "full", (), "",
                        refused=exc.message)
    # The track's key is export's: the same inputs make the same file, whichever front end asks.
    key = coach.export_key(made, SETTINGS)[:32]
    return Decision(routine, made.options, made.verdict.detail, made.verdict.left_out, key,
                    core=made)


def estimate(decision: Decision) -> float:
    """The length of the session in seconds, with speech lengths estimated: enough for a list
    of routines. Kept by the track's key, which names everything the plan is made from."""
    assert decision.core is not None
    with _estimates_lock:
        if decision.key in _estimates:
            return _estimates[decision.key]
    seconds = coach.timed_plan(decision.core, SETTINGS, estimate=True).duration
    with _estimates_lock:
        _estimates[decision.key] = seconds
        while len(_estimates) > 1024:
            del _estimates[next(iter(_estimates))]
    return seconds


_estimates: dict[str, float] = {}
_estimates_lock = threading.Lock()


def make_track(decision: Decision, dest: Path) -> tuple[Plan, dict[str, object]]:
    """Write the track `export` would make for this session to `dest` (atomically); return its
    plan and the track's description (duration, size, chapters as tagged)."""
    assert decision.core is not None
    plan, track = coach.make_track(decision.core, SETTINGS, dest)
    return plan, track.as_json()


def record_phone_session(decision: Decision, started: float, position: float, *,
                         completed: bool, exercises_done: tuple[str, ...],
                         stopped_at: str | None, exercises_started: tuple[str, ...] = ()) -> None:
    """A session played on the phone, in history like a live one (the same rule counts it)."""
    coach.record_remote(decision.routine, started=started, position=position,
                        completed=completed, exercises_done=exercises_done,
                        stopped_at=stopped_at, detail=decision.detail, kind="phone",
                        exercises_started=exercises_started)


def screening() -> dict[str, object]:
    return coach.screening().as_json()


def save_screening(answers: dict[str, bool]) -> dict[str, object]:
    """Store the answers where `voicecoach safety` does."""
    return coach.save_screening(answers).as_json()


def question_keys() -> list[str]:
    return [q.key for q in coach.QUESTIONS]
