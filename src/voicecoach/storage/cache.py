"""Rendered speech clips kept on disk, keyed by everything that shapes their audio."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import struct
from pathlib import Path

from voicecoach.audio.pcm import SAMPLE_RATE
from voicecoach.storage.atomic import remove_stale, temp_path

ENV_CACHE_DIR = "VOICECOACH_CACHE_DIR"
#: The clip cache stays under this size (least recently used entries are removed first).
MAX_BYTES = 512 * 2**20
FORMAT_VERSION = 1
MAGIC = b"VCCL"
# magic, format version, payload length, blake2b-128 of the payload; then the PCM.
_HEADER = struct.Struct("<4sHQ16s")

log = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    """$VOICECOACH_CACHE_DIR, else the platform's user cache dir for voicecoach, /clips."""
    override = os.environ.get(ENV_CACHE_DIR)
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_cache_dir("voicecoach")) / "clips"


def _digest(payload: bytes) -> bytes:
    return hashlib.blake2b(payload, digest_size=16).digest()


class ClipCache:
    """PCM clips on disk, sharded by the first two hex digits of their key.

    Reads verify every entry (a damaged one is a miss and is deleted); a cache that
    cannot be written degrades to no cache: `last_error` says why.
    """

    def __init__(
        self,
        directory: str | Path | None = None,
        *,
        enabled: bool = True,
        max_bytes: int = MAX_BYTES,
    ) -> None:
        self.directory = Path(directory) if directory is not None else default_cache_dir()
        self.enabled = enabled
        self.max_bytes = max_bytes
        self.last_error: str | None = None
        self._written = 0

    @staticmethod
    def key(
        text: str, *, engine: str, engine_version: str, voice: str, rate: int, volume: float
    ) -> str:
        """The sha256 hex key of a clip: any input that changes its audio changes the key."""
        volume = float(volume)  # 1 and 1.0 are the same clip
        fields = [FORMAT_VERSION, SAMPLE_RATE, engine, engine_version, voice, rate, volume, text]
        return hashlib.sha256(json.dumps(fields, ensure_ascii=False).encode()).hexdigest()

    def path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.pcm"

    def get(self, key: str) -> bytes | None:
        """The clip stored under key, or None if absent, unreadable or damaged."""
        if not self.enabled:
            return None
        path = self.path(key)
        try:
            data = path.read_bytes()
        except OSError:
            return None
        payload = _verified(data)
        if payload is None:
            log.debug("discarding damaged cache entry %s", path)
            with contextlib.suppress(OSError):
                path.unlink()
        else:
            with contextlib.suppress(OSError):
                os.utime(path)  # recently used: the last to be pruned
        return payload

    def peek(self, key: str) -> tuple[int, str] | None:
        """(payload bytes, hex digest) of the entry under key, from its header alone: what a
        clip is (its length and content) without reading it. The payload is checked only when
        it is read (get): a damaged one is a miss there."""
        if not self.enabled:
            return None
        path = self.path(key)
        try:
            with open(path, "rb") as file:
                head = file.read(_HEADER.size)
                size = os.fstat(file.fileno()).st_size
            os.utime(path)  # recently used: the last to be pruned
        except OSError:
            return None
        if len(head) < _HEADER.size:
            return None
        magic, version, length, digest = _HEADER.unpack(head)
        if magic != MAGIC or version != FORMAT_VERSION or size != _HEADER.size + length:
            return None
        return length, digest.hex()

    def put(self, key: str, pcm: bytes) -> bool:
        """Store a clip atomically; False (and last_error) if the cache cannot be written."""
        if not self.enabled:
            return False
        path = self.path(key)
        header = _HEADER.pack(MAGIC, FORMAT_VERSION, len(pcm), _digest(pcm))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            _write_atomically(path, header + pcm)
        except OSError as exc:
            # A full disk or a read-only cache costs speed, never the export.
            self.last_error = f"cannot write the clip cache in {self.directory}: {exc}"
            log.debug(self.last_error)
            return False
        self._written += len(pcm)
        if self._written >= self.max_bytes // 8:
            self._written = 0
            self.prune()
        return True

    def adopt(self, key: str, pcm: bytes) -> bytes:
        """Store a freshly rendered clip unless the cache already holds a sound one under key,
        and return the clip the cache holds. An engine never renders a text the same way twice
        (espeak-ng's clips differ by a few samples), so processes rendering one cue at once all
        go on with the clip that was kept first: their timings agree with each other and with
        every later run that reads it."""
        if not self.enabled:
            return pcm
        path = self.path(key)
        header = _HEADER.pack(MAGIC, FORMAT_VERSION, len(pcm), _digest(pcm))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            stored = _write_first(path, header + pcm)
        except OSError as exc:
            self.last_error = f"cannot write the clip cache in {self.directory}: {exc}"
            log.debug(self.last_error)
            return pcm
        if not stored:
            kept = self.get(key)
            if kept is not None:
                return kept
            self.put(key, pcm)  # the one there was damaged (and is gone): ours replaces it
            return pcm
        self._written += len(pcm)
        if self._written >= self.max_bytes // 8:
            self._written = 0
            self.prune()
        return pcm

    def prune(self) -> int:
        """Keep the cache under max_bytes: the least recently used entries go first, down to
        three quarters of the cap. Returns how many bytes were removed."""
        entries = []
        # Listed folder by folder: another process may prune (or a user delete) any of them
        # meanwhile, which is no fault of this one's (Path.glob raises for a vanished folder).
        for shard in _listing(self.directory):
            if len(shard.name) != 2:  # "??": not a folder is simply no listing
                continue
            for found in _listing(Path(shard.path)):
                if found.name.endswith(".pcm"):
                    with contextlib.suppress(OSError):
                        stat = found.stat()
                        entries.append((stat.st_mtime, stat.st_size, Path(found.path)))
        total = sum(size for _, size, _ in entries)
        if total <= self.max_bytes:
            return 0
        removed = 0
        for _, size, entry in sorted(entries, key=lambda e: e[0]):
            if total - removed <= self.max_bytes * 3 // 4:
                break
            with contextlib.suppress(OSError):
                entry.unlink()
                removed += size
        return removed


def _listing(folder: Path) -> list[os.DirEntry[str]]:
    """A folder's entries, or none if it cannot be read (gone, or not a folder)."""
    try:
        with os.scandir(folder) as found:
            return list(found)
    except OSError:
        return []


def _verified(data: bytes) -> bytes | None:
    if len(data) < _HEADER.size:
        return None
    magic, version, length, digest = _HEADER.unpack_from(data)
    payload = data[_HEADER.size :]
    if magic != MAGIC or version != FORMAT_VERSION or length != len(payload):
        return None
    return payload if _digest(payload) == digest else None


def _write_atomically(path: Path, data: bytes) -> None:
    _write(path, data, replace=True)


def _write_first(path: Path, data: bytes) -> bool:
    """Write `path` whole unless it exists (False then)."""
    return _write(path, data, replace=False)


def _write(path: Path, data: bytes, *, replace: bool) -> bool:
    # A temp file in the same dir, then rename (or, for `replace=False`, a hard link, which
    # fails when another process's entry got there first): readers see the old entry or the
    # whole new one, never a partial file, even with several voicecoach processes at once. The
    # temporary carries its owner's pid, so one left by a killed process is removed later.
    # Where hard links are not supported, the temporary replaces the entry.
    if path.parent not in _swept:
        _swept.add(path.parent)
        remove_stale(path.parent)
    temp = temp_path(path)
    try:
        with open(temp, "xb") as file:
            file.write(data)
        if not replace:
            try:
                os.link(temp, path)
                return True
            except FileExistsError:
                return False
            except OSError as exc:
                if exc.errno not in _NO_LINKS:
                    raise
        os.replace(temp, path)
        return True
    finally:
        with contextlib.suppress(OSError):
            os.unlink(temp)


#: What os.link raises on a file system without hard links (FAT, some network shares).
_NO_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK}

#: Shard folders already swept for stale temporaries by this process.
_swept: set[Path] = set()
