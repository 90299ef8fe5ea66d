"""An exercise's frequency limits read against when it was done: the one reading of them."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable
from dataclasses import dataclass

from voicecoach.routine.model import Exercise
from voicecoach.routine.names import slug
from voicecoach.routine.wording import Wording

#: Why a limit leaves an exercise out, as data (the spoken reason is in the wording).
WAIT = "wait"
COUNT = "count"


@dataclass(frozen=True)
class LimitState:
    """Where an exercise stands against its limits: when it may next be done, and why not."""

    next_allowed: float | None
    reason: str | None
    code: str | None = None


def identity(name: str) -> str:
    """An exercise as its limits know it: by name, whatever routine it was done in (the same
    move in two routines shares its wait and its daily count)."""
    return slug(name)


def done_times(done: Iterable[tuple[str, float]], name: str) -> list[float]:
    """When the exercise `name` was done, in time order, from (exercise, done_at) records of
    any routine."""
    key = identity(name)
    return sorted(t for exercise, t in done if identity(exercise) == key)


def limit_state(
    ex: Exercise, times: Iterable[float], now: float, words: Wording,
    day: _dt.date | None = None, *, present: bool = True,
) -> LimitState:
    """Is `ex` inside its waiting period at `now`, or at its daily count on `day` (default: the
    day of `now`), given `times` (when it was done, in any routine)? The reason names the limit
    that binds, the one that ends last. `present`: `now` is the clock's now, so a past time is
    said as "N minutes ago"; otherwise (a day planned ahead) times are said by date and hour."""
    limits = ex.limits
    if limits is None:
        return LimitState(None, None)
    times = sorted(times)
    wait_end = count_end = now
    reasons: dict[str, str] = {}
    if limits.wait:
        recent = [t for t in times if t >= now - limits.wait]
        if recent:
            last = recent[-1]
            wait_end = last + limits.wait
            if present and last <= now:
                ago = max(60.0, round((now - last) / 60) * 60)
                reasons[WAIT] = words.left_out_wait.format(ago=words.duration(ago),
                                                           wait=words.duration(limits.wait))
            else:
                reasons[WAIT] = words.left_out_wait_at.format(
                    when=words.moment(last), wait=words.duration(limits.wait))
    if limits.max_per_day:
        today = day or _dt.datetime.fromtimestamp(now).date()
        # Local midnights, not start + 24 h: a day with a clock change has 23 or 25 hours.
        start, end = midnight(today), midnight(today + _dt.timedelta(days=1))
        count = sum(1 for t in times if start <= t < end)
        if count >= limits.max_per_day:
            count_end = end
            reasons[COUNT] = (words.left_out_count.format(count=_times(count)) if present
                              else words.left_out_count_on.format(count=_times(count),
                                                                  day=words.day(today)))
    if not reasons:
        return LimitState(None, None)
    code = COUNT if COUNT in reasons and (WAIT not in reasons or count_end >= wait_end) else WAIT
    when = max(wait_end, count_end)
    return LimitState(when if when > now else None, reasons[code], code)


def midnight(day: _dt.date) -> float:
    return _dt.datetime.combine(day, _dt.time()).timestamp()


def _times(n: int) -> str:
    return {1: "once", 2: "twice"}.get(n, f"{n} times")
