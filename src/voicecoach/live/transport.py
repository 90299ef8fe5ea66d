"""The live transport: a pure state machine over the timeline's PCM (pause, seek, repeat,
next/back, fades, the onset log), driven by the player's audio callback or by a test's clock."""

from __future__ import annotations

import array
import bisect
import dataclasses
import math
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from voicecoach.audio.mix import CEILING_DB
from voicecoach.audio.pcm import frames, nbytes, silence
from voicecoach.errors import UserError
from voicecoach.plan.timeline import MIN_GAP, Event, Kind, Plan

if TYPE_CHECKING:
    from voicecoach.routine.model import Routine

#: Pauses, seeks and quits fade over this long, so cutting a word never clicks.
FADE_MS = 5
VOLUME_STEP_DB = 3.0
#: Louder than the headroom the levelling left (the stream peaks under CEILING_DB) would clip the
#: loudest syllables, so `+` stops there.
MIN_GAIN_DB, MAX_GAIN_DB = -30.0, -CEILING_DB
#: "Back" within this many seconds of an exercise's start goes to the exercise before it (like a
#: music player's previous button); later, it restarts the current exercise.
RESTART_GRACE = 2.0

_TIMED = frozenset({Kind.HOLD, Kind.REST})
_INNER = frozenset({Kind.HALFWAY, Kind.BREATH, Kind.COUNTDOWN, Kind.NEXT_UP})


# --- what the player reports ------------------------------------------------------------------


@dataclass(frozen=True)
class Onset:
    """A spoken cue began. `actual` is time.monotonic() when the device took the cue's first frame:
    the callback's time plus the frame's offset inside the buffer. That is when the frame left
    for the sound system; a real device sounds it a constant buffer later (a few tens of ms),
    and the null device takes one or two periods ahead of real time. `expected` is where the
    plan puts the cue on the same clock, after pauses, repeats and seeks (None for a repeat)."""

    index: int
    event: Event
    planned: float
    actual: float
    expected: float | None
    repeat: bool = False

    def as_json(self) -> dict[str, Any]:
        e = self.event
        return {
            "type": "cue", "index": self.index, "kind": e.kind.value, "exercise": e.exercise,
            "text": e.text, "planned": round(self.planned, 6), "actual": round(self.actual, 6),
            "expected": None if self.expected is None else round(self.expected, 6),
            "error_ms": None if self.expected is None
            else round((self.actual - self.expected) * 1000, 2),
            "repeat": self.repeat,
        }


@dataclass(frozen=True)
class Mark:
    """Something the listener did or that happened: pause, resume, seek, stop, end."""

    kind: str
    position: float
    actual: float

    def as_json(self) -> dict[str, Any]:
        return {"type": self.kind, "position": round(self.position, 6),
                "actual": round(self.actual, 6)}


@dataclass(frozen=True)
class Skip:
    """The listener skipped (`n`) or went back (`p`): from which exercise to which (None: the
    introduction; "end": the closing words). Written before the `seek` mark it causes, which
    stays as it was for programs that read it."""

    direction: str  # "next" or "previous"
    from_: str | None
    to: str | None
    position: float
    actual: float

    def as_json(self) -> dict[str, Any]:
        return {"type": "skip", "direction": self.direction, "from": self.from_, "to": self.to,
                "position": round(self.position, 6), "actual": round(self.actual, 6)}


Record = Onset | Mark | Skip


@dataclass(frozen=True)
class PlayerState:
    """A snapshot for a view. Times in seconds of the timeline (pauses do not count)."""

    position: float
    total: float
    paused: bool
    done: bool
    gain_db: float
    event: Event | None
    #: The most recent spoken cue at or before the position.
    cue: Event | None
    #: The exercise whose chapter this is (rests belong to the exercise before); None: introduction.
    exercise: str | None
    exercise_number: int
    exercise_count: int
    next_exercise: str | None
    #: Seconds left in the current hold or rest, and its whole length; None outside them.
    remaining: float | None
    block: float | None
    resting: bool
    repeating: bool


@dataclass(frozen=True)
class SessionResult:
    """How a live session ended (for history): a plain record, times in seconds."""

    completed: bool
    position: float
    exercises_completed: tuple[str, ...]
    stopped_at: str | None
    paused: float
    #: Exercises reached (some of them played) but not played through: a limited move counts
    #: towards its wait and daily count once it was begun, however it ended.
    exercises_started: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Section:
    name: str | None  # None: the introduction
    start: int
    end: int
    own_end: int  # where the exercise's own cues end (the rest after it is not part of it)


def sections(plan: Plan) -> list[_Section]:
    """The plan's chapters, marking the introduction and where each exercise's own cues end."""
    out = []
    for i, (title, start, end) in enumerate(plan.chapters()):
        intro = i == 0 and bool(plan.events) and plan.events[0].exercise is None
        own = [e.end for e in plan.events if start <= e.start < end and e.exercise == title]
        out.append(_Section(None if intro else title, start, end, max(own, default=end)))
    return out


def exercise_start(plan: Plan, routine: Routine, name: str) -> int:
    """The frame where exercise `name` (name or number, as for --only) begins in the plan."""
    from voicecoach.plan.timeline import select_exercises

    wanted = select_exercises(routine, [name])[0].name
    for section in sections(plan):
        if section.name == wanted:
            return section.start
    raise UserError(f"{wanted!r} is not in this session", fix="it was left out by --only or --skip")


def _blocks(plan: Plan) -> dict[int, tuple[int, int, Kind]]:
    """Event index -> (start, end) frames of the hold or rest it belongs to, with its inner cues."""
    events, out, i = plan.events, {}, 0
    while i < len(events):
        j = i + 1
        if events[i].kind in _TIMED:
            while j < len(events) and events[j].kind in _INNER:
                j += 1
            for m in range(i, j):
                out[m] = (events[i].start, events[j - 1].end, events[i].kind)
        i = j
    return out


# --- the transport ----------------------------------------------------------------------------


class Source(Protocol):
    """The timeline's PCM from a frame on: a chunk, b"" at the end, None while it is not ready."""

    def take(self) -> bytes | None: ...
    def restart(self, start: int) -> None: ...


class Transport:
    """The live session's state machine: position, fades, pause, seek, next/back, repeated cues,
    completed exercises and the onset log, over any source of the timeline's PCM.

    It owns no device, thread, lock or clock: `fill(n, now)` is told the time, so the player
    drives it from the audio callback and tests drive it with synthetic frames and a fake clock.
    Not thread-safe: the player holds its lock around every call."""

    def __init__(
        self,
        plan: Plan,
        clips: Mapping[str, bytes],
        source: Source,
        *,
        start: int = 0,
        gain_db: float = 0.0,
        on_record: Callable[[Record], None] = lambda record: None,
        on_end: Callable[[], None] = lambda: None,
    ) -> None:
        self.plan = plan
        self.rate = plan.rate
        self.log: list[Record] = []
        self._clips = clips
        self._source = source
        self._on_record = on_record
        self._on_end = on_end
        self._starts = [e.start for e in plan.events]
        self._sections = sections(plan)
        self._section_starts = [s.start for s in self._sections]
        self._own_ends = [s.own_end for s in self._sections]
        self._blocks = _blocks(plan)
        self._spoken = _last_spoken(plan.events)
        self._fade = max(1, self.rate * FADE_MS // 1000)
        self._pos = max(0, min(start, plan.total))
        self._pending = memoryview(b"")
        self._stalling = False
        self._next_event = bisect.bisect_left(self._starts, self._pos)
        self._level = 1.0  # the fade: 0 silent .. 1 full
        self._gain_db = _clamp_db(gain_db)
        self._gain = self._gain_now = _db_to_gain(self._gain_db)
        self._paused = self._in_pause = self._stopping = self._repeat = self._done = False
        self._seek_to: int | None = None
        self._skip: tuple[str, int, int | None] | None = None
        self._insert: memoryview | None = None
        self._insert_at: int | None = None
        self._insert_cue: int | None = None
        self._pending_insert = memoryview(b"")
        self._anchor: float | None = None
        #: The latest stamp logged: a device that asks ahead of real time may call again before
        #: the frames of its last call have played, and a record must not be stamped before the
        #: one logged ahead of it (a seek's landing cue before the seek).
        self._last_stamp = -math.inf
        self._paused_frames = 0
        self._completed: set[int] = set()
        self._entered: set[int] = set()
        self._reached_end = False
        #: Clips read ahead for `repeat_last_cue`, so the audio callback does not touch the disk.
        self._clip_bytes: dict[str, bytes] = {}


    # -- commands ----------------------------------------------------------------------------

    @property
    def position(self) -> int:
        return self._pos

    @property
    def done(self) -> bool:
        return self._done

    def pause(self) -> None:
        self._paused = True

    def resume(self) -> None:
        self._paused = False

    def toggle_pause(self) -> None:
        self._paused = not self._paused

    def stop(self) -> None:
        """Fade out and end at the next fill."""
        self._stopping = True

    def next_exercise(self) -> None:
        """Go to the next exercise's first cue; from the last one, to the closing words."""
        pos = self._where()
        i = self._section_at(pos)
        if i + 1 < len(self._sections):
            self._seek(self._sections[i + 1].start, ("next", i, i + 1))
            return
        finish = self.plan.events[-1].start if self.plan.events else self.plan.total
        self._seek(finish if pos < finish else self.plan.total, ("next", i, None))

    def previous_exercise(self) -> None:
        """Restart the current exercise; within RESTART_GRACE of its start, go to the one before."""
        pos = self._where()
        i = self._section_at(pos)
        start, to = self._sections[i].start, i
        if pos - start < RESTART_GRACE * self.rate and i > 0:
            start, to = self._sections[i - 1].start, i - 1
        self._seek(start, ("previous", i, to))

    def repeat_candidates(self, pos: int) -> list[str]:
        """The texts a repeat asked for at `pos` may say, whose clips are not read yet."""
        i = bisect.bisect_right(self._starts, pos) - 1
        if not 0 <= i < len(self.plan.events):
            return []
        texts = [self.plan.events[cue].text if cue >= 0 else "" for cue in {i, self._spoken[i]}]
        return [t for t in texts if t and t not in self._clip_bytes]

    def keep_clip(self, text: str, clip: bytes) -> None:
        """A clip read ahead for a repeat, so fill() does not touch the disk."""
        self._clip_bytes[text] = clip

    def repeat_last_cue(self) -> None:
        """Say the latest cue again, after the one being spoken if any; the timeline waits."""
        self._repeat = True

    @property
    def gain_db(self) -> float:
        return self._gain_db

    def set_gain(self, db: float) -> None:
        self._gain_db = _clamp_db(db)
        self._gain = _db_to_gain(self._gain_db)

    # -- snapshots ---------------------------------------------------------------------------

    def state(self) -> PlayerState:
        pos, paused, done = self._pos, self._paused, self._done
        gain_db, repeating = self._gain_db, self._insert is not None
        plan, events = self.plan, self.plan.events
        i = bisect.bisect_right(self._starts, pos) - 1
        event = events[i] if i >= 0 else None
        cue = events[self._spoken[i]] if i >= 0 and self._spoken[i] >= 0 else None
        s = self._section_at(pos)
        numbered = [k for k, sec in enumerate(self._sections) if sec.name is not None]
        block = self._blocks.get(i) if i >= 0 else None
        return PlayerState(
            position=pos / self.rate, total=plan.duration, paused=paused, done=done,
            gain_db=gain_db, event=event, cue=cue, exercise=self._sections[s].name,
            exercise_number=sum(1 for k in numbered if k <= s), exercise_count=len(numbered),
            next_exercise=next((self._sections[k].name for k in numbered if k > s), None),
            remaining=(block[1] - pos) / self.rate if block else None,
            block=(block[1] - block[0]) / self.rate if block else None,
            resting=block is not None and block[2] == Kind.REST,
            repeating=repeating,
        )

    def result(self) -> SessionResult:
        pos, paused = self._pos, self._paused_frames
        done = sorted(self._completed)
        names = tuple(n for k in done if (n := self._sections[k].name) is not None)
        begun = tuple(n for k in sorted(self._entered - self._completed)
                      if (n := self._sections[k].name) is not None)
        here = self._sections[self._section_at(pos)].name
        return SessionResult(
            completed=self._reached_end, position=pos / self.rate, exercises_completed=names,
            stopped_at=None if self._reached_end else here, paused=paused / self.rate,
            exercises_started=begun,
        )

    # -- filling the device's buffer -----------------------------------------------------------

    def fill(self, n: int, now: float) -> bytes:
        """n frames for the device; `now` is when the device asked for them."""
        rate = self.rate
        if self._anchor is None:
            self._anchor = now - self._pos / rate
        out = bytearray()
        done = 0
        while done < n:
            left, at = n - done, now + done / rate
            if self._done:
                out += silence(left)
                break
            leaving = self._stopping or self._seek_to is not None
            target = 0.0 if (self._paused or leaving) else 1.0
            if self._level == 0.0 and target == 0.0:
                if self._stopping:
                    self.finish(at, completed=False)
                elif self._seek_to is not None:
                    self._jump(at)
                else:  # paused: the device gets silence and the timeline waits
                    if not self._in_pause:
                        self._in_pause = True
                        self._emit(Mark("pause", self._pos / rate, at))
                    out += silence(left)
                    self._paused_frames += left
                    self._anchor += left / rate
                    break
                continue
            if self._in_pause:
                self._in_pause = False
                self._emit(Mark("resume", self._pos / rate, at))
            if self._repeat:
                self._plan_repeat()
            k = left
            if self._level != target:
                k = min(k, math.ceil(abs(target - self._level) * self._fade))
            if self._gain_now != self._gain:
                k = min(k, self._fade)
            pcm = self._from_insert(k, at, may_start=not leaving)
            if pcm is not None:
                k = frames(pcm)  # the repeated cue may end inside this segment
            else:
                if self._insert_at is not None and not leaving:
                    k = min(k, self._insert_at - self._pos)
                pcm, ended = self._take(k)
                if not pcm and ended:
                    self.finish(at, completed=True)
                    continue
                if not pcm:  # the feeder is behind (just after a seek): the timeline waits
                    if not self._stalling:
                        self._stalling = True
                        self._emit(Mark("stall", self._pos / rate, at))
                    out += silence(left)
                    self._anchor += left / rate
                    break
                self._stalling = False
                k = frames(pcm)
                if not leaving:
                    self._note_onsets(k, at)
                    for s in range(bisect.bisect_right(self._own_ends, self._pos),
                                   bisect.bisect_right(self._own_ends, self._pos + k)):
                        self._completed.add(s)
                    self._entered.update(range(self._section_at(self._pos),
                                               self._section_at(self._pos + k - 1) + 1))
                self._pos += k
            out += self._shape(pcm, k, target)
            done += k
        return bytes(out)

    def _shape(self, pcm: bytes, k: int, target: float) -> bytes:
        """Apply the fade and the volume, each ramped over the segment."""
        level0 = self._level
        step = k / self._fade
        self._level = min(target, level0 + step) if target > level0 else max(target, level0 - step)
        g0, g1 = level0 * self._gain_now, self._level * self._gain
        self._gain_now = self._gain
        return scale(pcm, g0, g1)

    def _take(self, k: int) -> tuple[bytes, bool]:
        """Up to k frames of the timeline from the position (fewer if the feeder is behind),
        and whether the timeline has ended."""
        need, parts, ended = nbytes(k), [], False
        while need > 0:
            if not self._pending:
                chunk = self._source.take()
                if chunk is None:
                    break
                if not chunk:
                    ended = True
                    break
                self._pending = memoryview(chunk)
            piece = self._pending[:need]
            self._pending = self._pending[len(piece):]
            parts.append(piece)
            need -= len(piece)
        return b"".join(parts), ended

    def _note_onsets(self, k: int, at: float) -> None:
        events, pos = self.plan.events, self._pos
        while self._next_event < len(events) and events[self._next_event].start < pos + k:
            i = self._next_event
            self._next_event += 1
            e = events[i]
            if e.start >= pos and e.text:
                assert self._anchor is not None
                self._emit(Onset(i, e, e.start / self.rate, at + (e.start - pos) / self.rate,
                                 self._anchor + e.start / self.rate))

    def _jump(self, at: float) -> None:
        assert self._seek_to is not None
        target, self._seek_to = self._seek_to, None
        self._pos = target
        self._source.restart(target)
        self._pending = memoryview(b"")
        self._next_event = bisect.bisect_left(self._starts, target)
        self._insert = self._insert_at = self._insert_cue = None
        self._repeat = False
        self._anchor = at - target / self.rate
        if self._skip is not None:
            direction, start, to = self._skip
            self._skip = None
            name = self._sections[to].name if to is not None else "end"
            self._emit(Skip(direction, self._sections[start].name, name, target / self.rate, at))
        self._emit(Mark("seek", target / self.rate, at))

    def _seek(self, frame: int, skip: tuple[str, int, int | None] | None = None) -> None:
        if not self._done:
            self._seek_to = max(0, min(frame, self.plan.total))
            # The first key of a burst says where the listener came from; the last, where to.
            if skip is not None:
                self._skip = skip if self._skip is None else (skip[0], self._skip[1], skip[2])

    def _where(self) -> int:
        return self._seek_to if self._seek_to is not None else self._pos

    def _section_at(self, pos: int) -> int:
        return max(0, bisect.bisect_right(self._section_starts, pos) - 1)

    def _plan_repeat(self) -> None:
        self._repeat = False
        if self._insert is not None or self._insert_at is not None:
            return
        i = bisect.bisect_right(self._starts, self._pos) - 1
        if i < 0 or self._spoken[min(i, len(self._spoken) - 1)] < 0:
            return
        i = min(i, len(self._spoken) - 1)
        e = self.plan.events[i]
        speaking = bool(e.text) and self._pos < e.start + e.speech
        cue = i if speaking else self._spoken[i]
        said = self.plan.events[cue]
        clip = self._clip_bytes.get(said.text)
        if clip is None:  # the position moved on since the key press: read it after all
            clip = self._clips[said.text]
        clip = clip[: nbytes(said.speech)]
        gap = round(MIN_GAP * self.rate)
        self._insert_at = e.start + e.speech if speaking else self._pos
        self._insert_cue = cue
        self._insert = None
        self._pending_insert = memoryview(bytes(clip) + silence(gap))

    def _from_insert(self, k: int, at: float, may_start: bool) -> bytes | None:
        """Frames of a repeated cue, if one is playing or due now; the timeline waits meanwhile."""
        due = self._insert_at is not None and self._insert_at <= self._pos
        if self._insert is None and due and may_start:
            self._insert, self._insert_at = self._pending_insert, None
            assert self._insert_cue is not None
            e = self.plan.events[self._insert_cue]
            self._emit(Onset(self._insert_cue, e, e.start / self.rate, at, None, repeat=True))
        if self._insert is None:
            return None
        piece = bytes(self._insert[: nbytes(k)])
        self._insert = self._insert[len(piece):] or None
        if self._insert is None:
            self._insert_cue = None
        assert self._anchor is not None
        self._anchor += frames(piece) / self.rate
        return piece

    def _emit(self, record: Record) -> None:
        if record.actual < self._last_stamp:  # only the stamp: the timeline's clock is untouched
            record = dataclasses.replace(record, actual=self._last_stamp)
        self._last_stamp = record.actual
        self.log.append(record)
        self._on_record(record)

    def finish(self, at: float, completed: bool) -> None:
        """End the session now (the device has nothing more to play)."""
        if self._done:
            return
        self._done, self._reached_end = True, completed
        self._emit(Mark("end" if completed else "stop", self._pos / self.rate, at))
        self._on_end()


def _last_spoken(events: tuple[Event, ...]) -> list[int]:
    """For each event index, the index of the latest spoken event at or before it (-1: none)."""
    out, last = [], -1
    for i, e in enumerate(events):
        if e.text:
            last = i
        out.append(last)
    return out


def _clamp_db(db: float) -> float:
    return max(MIN_GAIN_DB, min(MAX_GAIN_DB, db))


def _db_to_gain(db: float) -> float:
    return 1.0 if db == 0 else 10 ** (db / 20)


def scale(pcm: bytes, g0: float, g1: float) -> bytes:
    """s16 samples times a gain going linearly from g0 to g1 (reached on the last sample),
    saturating at full scale instead of wrapping around."""
    if g0 == g1 == 1.0 or not pcm:
        return pcm
    if g0 == g1 == 0.0:
        return bytes(len(pcm))
    samples = array.array("h")
    samples.frombytes(pcm)
    if sys.byteorder == "big":
        samples.byteswap()
    n = len(samples)
    if g0 == g1:
        values = [round(s * g0) for s in samples]
    else:
        d = (g1 - g0) / n
        values = [round(s * (g0 + d * (j + 1))) for j, s in enumerate(samples)]
    out = array.array("h", [32767 if v > 32767 else -32768 if v < -32768 else v for v in values])
    if sys.byteorder == "big":
        out.byteswap()
    return out.tobytes()
