"""Parse and format the durations routine files use: `20s`, `1m30s`, `1h`, or a plain number of
seconds."""

from __future__ import annotations

import math
import re

_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|h|m|s)")
_WHOLE = re.compile(r"^\s*(?:\d+(?:\.\d+)?\s*(?:ms|h|m|s)\s*)+$")
_NUMBER = re.compile(r"^\s*\d+(?:\.\d+)?\s*$")
_UNIT = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_ORDER = list(_UNIT)  # largest first, as a clock reads

#: Nothing a person holds or rests on a mat lasts longer than this.
MAX_SECONDS = 4 * 3600.0


def parse_duration(value: object) -> float:
    """Seconds from `20s`, `1m30s`, `1h`, `500ms` or a number; ValueError explains what is wrong."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 20s or 1m30s, not true/false")
    if isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:  # an int past float's range (YAML reads any number of digits)
            raise ValueError(f"a number of {len(str(value))} digits is longer than the 4 hour "
                             "limit for one step") from None
    elif isinstance(value, str):
        text = value.strip().lower()
        if _NUMBER.match(text):
            seconds = float(text)
        elif _WHOLE.match(text):
            parts = _PART.findall(text)
            _one_of_each_in_order(value, [u for _n, u in parts])
            seconds = sum(float(n) * _UNIT[u] for n, u in parts)
        else:
            raise ValueError(f"{value!r} is not a duration: write it like 20s, 1m30s or 1h")
    else:
        raise ValueError("expected a duration such as 20s or 1m30s")
    if not math.isfinite(seconds):
        raise ValueError(f"{_shown(value)} is not a length of time: give one from over 0s to 4h, "
                         "written like 20s or 1m30s")
    if seconds <= 0:
        raise ValueError("a duration must be more than zero seconds")
    if seconds > MAX_SECONDS:
        raise ValueError(f"{seconds:g} s is longer than the 4 hour limit for one step")
    return seconds


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _one_of_each_in_order(value: str, units: list[str]) -> None:
    """`1m 1m` or `1m 30s 10s` could be a typo for many things: refuse, never add up. Units go
    largest first (`1h 30m`, `1m30s`), so `30s 1m` is refused too."""
    for unit in set(units):
        if units.count(unit) > 1:
            raise ValueError(f"{value!r} gives {_NAMES[unit]} more than once, so it is ambiguous: "
                             "give each unit once, largest first, e.g. 1m30s")
    ranks = [_ORDER.index(u) for u in units]
    if ranks != sorted(ranks):
        ordered = "".join(f"{n}{u}" for n, u in sorted(_PART.findall(value.strip().lower()),
                                                        key=lambda p: _ORDER.index(p[1])))
        raise ValueError(f"{value!r} gives its units out of order: write them largest "
                         f"first, e.g. {ordered}")


_NAMES = {"h": "hours", "m": "minutes", "s": "seconds", "ms": "milliseconds"}


def format_duration(seconds: float) -> str:
    """Compact form for tables and YAML: 20s, 1m30s, 1h."""
    total = round(seconds)
    if total < 60:
        return f"{seconds:g}s" if seconds != total else f"{total}s"
    h, rem = divmod(total, 3600)
    m, s = divmod(rem, 60)
    parts = [f"{h}h" if h else "", f"{m}m" if m else "", f"{s}s" if s else ""]
    return "".join(parts)


def format_clock(seconds: float) -> str:
    """`m:ss.s` (or `h:mm:ss`) for timelines."""
    if seconds >= 3600:
        h, rem = divmod(round(seconds), 3600)
        m, s = divmod(rem, 60)
        return f"{h}:{m:02d}:{s:02d}"
    # Round once, in tenths, so 59.97 s reads 1:00.0 and never 0:60.0.
    tenths = round(seconds * 10)
    m, t = divmod(tenths, 600)
    return f"{m}:{t // 10:02d}.{t % 10}"
