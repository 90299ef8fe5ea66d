"""Tracks made on demand, each once, kept on disk under a key of routine content and settings."""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voicecoach import cancel
from voicecoach.serve import core
from voicecoach.storage import atomic


@dataclass(frozen=True)
class Made:
    """A finished track and what the page and the feed need to know about it."""

    key: str
    path: Path
    meta: dict[str, Any]

    @property
    def size(self) -> int:
        return int(self.meta["size"])


#: A folder for the track cache of its own (tests give each server one).
ENV_TRACKS_DIR = "VOICECOACH_TRACKS_DIR"


def default_folder() -> Path:
    """$VOICECOACH_TRACKS_DIR, else beside the clip cache ($VOICECOACH_CACHE_DIR is the clip
    folder itself: inside it)."""
    from voicecoach.storage.cache import ENV_CACHE_DIR, default_cache_dir

    if os.environ.get(ENV_TRACKS_DIR):
        return Path(os.environ[ENV_TRACKS_DIR])
    clips = default_cache_dir()
    return clips / "tracks" if os.environ.get(ENV_CACHE_DIR) else clips.with_name("tracks")


class TrackStore:
    """The track cache. A track is complete once its description (KEY.json) exists: the MP3 is
    renamed into place first, so a server killed mid-way leaves only a temporary (removed at the
    next start) or an MP3 without a description (made again)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        atomic.remove_stale(folder)
        # One track at a time: the speech engine is one per process, the machine may have two
        # cores, and a second phone asking for the same track then finds it made.
        self._making = threading.Lock()

    def find(self, key: str) -> Made | None:
        """The finished track of this key (a key from a URL is only ever compared, never a path)."""
        for name in self._keys():
            if name == key:
                return self._load(name)
        return None

    def _keys(self) -> list[str]:
        with contextlib.suppress(OSError):
            return [p.stem for p in self.folder.glob("*.json")]
        return []

    def _load(self, key: str) -> Made | None:
        mp3, about = self.folder / f"{key}.mp3", self.folder / f"{key}.json"
        try:
            meta = json.loads(about.read_text(encoding="utf-8"))
            if mp3.stat().st_size != meta["size"]:
                return None
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return Made(key, mp3, meta)

    def get(self, decision: core.Decision) -> Made:
        """The track for this decision, made now if it was not made before."""
        found = self._load(decision.key)
        if found is not None:
            return found
        with self._making, self._other_servers():
            found = self._load(decision.key)
            if found is not None:
                return found
            mp3 = self.folder / f"{decision.key}.mp3"
            plan, track = core.make_track(decision, mp3)
            meta = describe(decision, plan, track)
            atomic.write_text(self.folder / f"{decision.key}.json", json.dumps(meta))
            return Made(decision.key, mp3, meta)


    @contextlib.contextmanager
    def _other_servers(self) -> Iterator[None]:
        """Held while a track is made, so that a second server on the same cache (another
        terminal, the same data dir) waits and then finds the track made, not makes it too.
        Where no lock can be taken (no flock, a folder that cannot be written), it goes on:
        the worst is the same track made twice, each written whole by rename."""
        try:
            import fcntl

            handle = open(self.folder / LOCK, "a+b")  # noqa: SIM115 (closed below)
        except (ImportError, OSError):
            yield
            return
        with handle:
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    cancel.sleep(0.1)  # Ctrl-C while waiting stops this request at once
                except OSError:  # a file system without locks
                    break
            yield


#: The file another server's make is waited for by (an empty file beside the tracks).
LOCK = ".making.lock"


def describe(decision: core.Decision, plan: Any, track: dict[str, Any]) -> dict[str, Any]:
    """What the page and the feed show of a track: its chapters as tagged, every cue's time."""
    exercises = {e.exercise for e in plan.events if e.exercise}
    return {
        "key": decision.key,
        "routine": decision.routine.id,
        "title": decision.routine.title,
        "description": decision.routine.description or "",
        "equipment": list(decision.routine.equipment),
        "made": time.time(),
        "duration": track["duration"],
        "size": track["size"],
        "detail": decision.detail,
        "left_out": [{"exercise": n, "reason": r} for n, r in decision.left_out],
        "chapters": [dict(c, exercise=c["title"] in exercises) for c in track["chapters"]],
        "events": [
            {"start": round(plan.seconds(e.start), 3), "duration": round(plan.seconds(e.length), 3),
             "speech": round(plan.seconds(e.speech), 3), "kind": e.kind.value, "text": e.text,
             "exercise": e.exercise}
            for e in plan.events
        ],
    }
