"""Session history in SQLite: what was played or exported, and when each exercise was last done."""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from platformdirs import user_data_dir

from voicecoach.errors import Fault

ENV_DATA_DIR = "VOICECOACH_DATA_DIR"
DB_NAME = "history.sqlite3"
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY,
    routine TEXT NOT NULL,
    title TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('live', 'export', 'phone')),
    started REAL NOT NULL,
    ended REAL NOT NULL,
    completed INTEGER NOT NULL,
    position REAL NOT NULL,
    stopped_at TEXT,
    forced INTEGER NOT NULL DEFAULT 0,
    detail TEXT NOT NULL DEFAULT 'full'
);
CREATE TABLE IF NOT EXISTS exercises_done (
    session_id INTEGER NOT NULL REFERENCES sessions(id),
    routine TEXT NOT NULL,
    exercise TEXT NOT NULL,
    done_at REAL NOT NULL,
    forced INTEGER NOT NULL DEFAULT 0,
    finished INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS exercises_done_by_name ON exercises_done (routine, exercise, done_at);
CREATE INDEX IF NOT EXISTS sessions_by_routine ON sessions (routine, started);
CREATE TABLE IF NOT EXISTS ratings (
    exercise TEXT PRIMARY KEY,
    rating INTEGER NOT NULL CHECK (rating IN (-1, 1)),
    rated_at REAL NOT NULL
);
"""


def data_dir() -> Path:
    """Where history and safety answers live: $VOICECOACH_DATA_DIR, else the user data folder."""
    override = os.environ.get(ENV_DATA_DIR)
    return Path(override).expanduser() if override else Path(user_data_dir("voicecoach", False))


@dataclass(frozen=True)
class SessionRecord:
    """One live session or export, as it is written to history."""

    routine: str
    title: str
    kind: str
    started: float
    ended: float
    completed: bool
    position: float
    exercises_done: tuple[str, ...] = ()
    stopped_at: str | None = None
    forced: bool = False
    detail: str = "full"
    #: Exercises begun but not played through: they count towards frequency limits (a cracking
    #: move stopped half-way was still done, at least in part), never towards familiarity.
    exercises_started: tuple[str, ...] = ()


@dataclass(frozen=True)
class Session:
    id: int
    routine: str
    title: str
    kind: str
    started: float
    ended: float
    completed: bool
    position: float
    stopped_at: str | None
    forced: bool
    #: Exercises played through in it; a session with none (a failed start, a quit in the
    #: introduction, every exercise skipped) is kept in history but counts for nothing.
    exercises_done: int = 0

    @property
    def counts(self) -> bool:
        return self.kind == "export" or self.exercises_done > 0

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "routine": self.routine,
            "title": self.title,
            "kind": self.kind,
            "started": _iso(self.started),
            "ended": _iso(self.ended),
            "completed": self.completed,
            "position": round(self.position, 3),
            "stopped_at": self.stopped_at,
            "forced": self.forced,
            "exercises_done": self.exercises_done,
            "counts": self.counts,
        }


def _iso(ts: float) -> str:
    return _dt.datetime.fromtimestamp(ts).astimezone().isoformat(timespec="seconds")


class History:
    """The history database. Every write is one short transaction, so concurrent processes
    (WAL mode, busy timeout) lose nothing and a killed process leaves every finished session."""

    def __init__(self, folder: Path | None = None, *, timeout: float = 30.0) -> None:
        self.folder = folder or data_dir()
        self.timeout = timeout
        self.path = self.folder / DB_NAME
        self._conn: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._conn is not None:
            return self._conn
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise Fault(f"cannot create the history folder {self.folder}: {exc.strerror}") from None
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                conn = self._open()
                break
            except Fault as fault:
                # Two processes (two phones, play beside serve) opening a new history at once:
                # switching it to WAL answers "locked" at once, without the busy handler. Wait
                # and try again, within the same timeout a busy write gets.
                if not fault.message.endswith("database is locked") or \
                        time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self._conn = conn
        return conn

    def _open(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = None
        try:
            conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
            conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            ok = conn.execute("PRAGMA quick_check").fetchone()[0]
            if ok != "ok":
                raise _Corrupt(ok)
            with _transaction(conn):
                _create(conn)
        except sqlite3.Error as exc:
            if conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            # Only real damage moves the file aside; a lock, a read-only file or a full disk
            # leave it where it is, with one line saying what is wrong.
            if isinstance(exc, _Corrupt) or _is_corrupt(exc):
                raise self._damaged(exc) from None
            raise self._fault(exc) from None
        return conn

    def _fault(self, exc: sqlite3.Error) -> Fault:
        return Fault(f"cannot use the history file {self.path}: {exc}",
                     fix="check its permissions and free disk space")

    def _damaged(self, exc: Exception) -> Fault:
        """Move a damaged database aside (never delete it) and say where it went."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        aside = self.path.with_name(f"{DB_NAME}.damaged-{stamp}")
        for suffix in ("", "-wal", "-shm"):
            source = Path(f"{self.path}{suffix}")
            if source.exists():
                with contextlib.suppress(OSError):
                    source.replace(Path(f"{aside}{suffix}"))
        return Fault(
            f"the history file {self.path} was damaged ({exc}); it was moved to {aside} and a "
            "new one will be started",
            fix="run the command again; limits and streaks start afresh",
        )

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def record(self, session: SessionRecord) -> int:
        conn = self._connect()
        try:
            return self._insert(conn, session)
        except sqlite3.Error as exc:
            raise self._fault(exc) from None

    def _insert(self, conn: sqlite3.Connection, session: SessionRecord) -> int:
        with _transaction(conn):
            cur = conn.execute(
                "INSERT INTO sessions (routine, title, kind, started, ended, completed, position,"
                " stopped_at, forced, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (session.routine, session.title, session.kind, session.started, session.ended,
                 int(session.completed), session.position, session.stopped_at,
                 int(session.forced), session.detail),
            )
            session_id = int(cur.lastrowid or 0)
            finished = [(name, 1) for name in session.exercises_done]
            begun = [(name, 0) for name in dict.fromkeys(session.exercises_started)
                     if name not in session.exercises_done]
            conn.executemany(
                "INSERT INTO exercises_done (session_id, routine, exercise, done_at, forced,"
                " finished) VALUES (?, ?, ?, ?, ?, ?)",
                [(session_id, session.routine, name, session.ended, int(session.forced), done)
                 for name, done in finished + begun],
            )
        return session_id

    def _rows(self, query: str, args: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        conn = self._connect()
        try:
            return conn.execute(query, args).fetchall()
        except sqlite3.Error as exc:
            raise self._fault(exc) from None

    def sessions(self, routine: str | None = None, limit: int | None = None) -> list[Session]:
        query = ("SELECT id, routine, title, kind, started, ended, completed, position, stopped_at,"
                 " forced, (SELECT COUNT(*) FROM exercises_done d WHERE d.session_id = sessions.id"
                 " AND d.finished = 1)"
                 " FROM sessions")
        args: list[object] = []
        if routine:
            query += " WHERE routine = ?"
            args.append(routine)
        query += " ORDER BY started DESC, id DESC"
        if limit:
            query += f" LIMIT {int(limit)}"
        return [Session(r[0], r[1], r[2], r[3], r[4], r[5], bool(r[6]), r[7], r[8], bool(r[9]),
                        int(r[10]))
                for r in self._rows(query, args)]

    def live_sessions(self, routine: str) -> int:
        """How many live sessions of this routine did at least one exercise (to the end or not)."""
        rows = self._rows(f"SELECT COUNT(*) FROM sessions s WHERE routine = ? AND kind IN"
                          f" {_PLAYED} AND {_DID_SOMETHING}", (routine,))
        return int(rows[0][0])

    def done_times(self, routine: str, exercise: str, since: float) -> list[float]:
        """When this exercise was done or begun since `since`: what its limits count."""
        rows = self._rows(
            "SELECT done_at FROM exercises_done WHERE routine = ? AND exercise = ? AND done_at >= ?"
            " ORDER BY done_at",
            (routine, exercise, since),
        )
        return [r[0] for r in rows]

    def done_since(self, since: float) -> list[tuple[str, float]]:
        """(exercise, done_at) of every exercise done or begun in any routine since `since`: the
        one reading every front end's limits count from (live, phone, `make`)."""
        rows = self._rows("SELECT exercise, done_at FROM exercises_done WHERE done_at >= ?"
                          " ORDER BY done_at", (since,))
        return [(r[0], r[1]) for r in rows]

    def rate(self, exercise: str, rating: int | None) -> None:
        """Store a thumbs up (1) or down (-1) for an exercise key; None clears it."""
        conn = self._connect()
        try:
            with _transaction(conn):
                conn.execute("DELETE FROM ratings WHERE exercise = ?", (exercise,))
                if rating is not None:
                    conn.execute("INSERT INTO ratings (exercise, rating, rated_at) "
                                 "VALUES (?, ?, ?)",
                                 (exercise, rating, time.time()))
        except sqlite3.Error as exc:
            raise self._fault(exc) from None

    def ratings(self) -> dict[str, int]:
        return {r[0]: int(r[1]) for r in self._rows("SELECT exercise, rating FROM ratings")}

    def active_days(self) -> list[_dt.date]:
        """Local dates with at least one live session that reached its end, an exercise done."""
        rows = self._rows(f"SELECT ended FROM sessions s WHERE kind IN {_PLAYED} AND completed = 1"
                          f" AND {_DID_SOMETHING}")
        return sorted({_dt.datetime.fromtimestamp(r[0]).date() for r in rows})


#: Sessions someone followed: live on this computer, or a track played on the phone page
#: (`voicecoach serve`); both count by the same rule.
_PLAYED = "('live', 'phone')"
#: A live session counts (familiarity, streaks) only if an exercise in it was played through.
_DID_SOMETHING = ("EXISTS (SELECT 1 FROM exercises_done d WHERE d.session_id = s.id"
                  " AND d.finished = 1)")


class _Corrupt(sqlite3.DatabaseError):
    """quick_check found damage."""


def _is_corrupt(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)
    text = str(exc).lower()
    return "malformed" in text or "not a database" in text


def _create(conn: sqlite3.Connection) -> None:
    for statement in _SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)
    _allow_phone(conn)
    _add_finished(conn)
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version == 0:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    elif version > SCHEMA_VERSION:
        raise Fault(f"history was written by a newer voicecoach (schema {version})",
                    fix="upgrade voicecoach")


def _allow_phone(conn: sqlite3.Connection) -> None:
    """A history made before phone sessions existed has a CHECK that refuses them: SQLite cannot
    change a CHECK in place, so the table is copied into one that allows them."""
    row = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'sessions'").fetchone()
    if row is None or "'phone'" in row[0]:
        return
    # SQLite's own recipe: a new table, the rows copied, the old one dropped, the new renamed
    # (renaming the old one instead would point exercises_done's reference at the copy).
    conn.execute(_SCHEMA.split(";")[0].replace("EXISTS sessions (", "EXISTS sessions_new ("))
    conn.execute("INSERT INTO sessions_new SELECT * FROM sessions")
    conn.execute("DROP TABLE sessions")
    conn.execute("ALTER TABLE sessions_new RENAME TO sessions")
    conn.execute("CREATE INDEX IF NOT EXISTS sessions_by_routine ON sessions (routine, started)")


def _add_finished(conn: sqlite3.Connection) -> None:
    """A history from before begun exercises were kept: every row it has was played through."""
    columns = {r[1] for r in conn.execute("PRAGMA table_info(exercises_done)")}
    if "finished" not in columns:
        conn.execute("ALTER TABLE exercises_done ADD COLUMN finished INTEGER NOT NULL DEFAULT 1")


@contextlib.contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def streaks(days: Sequence[_dt.date], today: _dt.date | None = None) -> tuple[int, int]:
    """(current, longest) runs of consecutive days; the current run may end today or yesterday."""
    today = today or _dt.date.today()
    longest = run = 0
    previous: _dt.date | None = None
    for day in days:
        run = run + 1 if previous is not None and (day - previous).days == 1 else 1
        longest = max(longest, run)
        previous = day
    current = run if previous is not None and (today - previous).days <= 1 else 0
    return current, longest
