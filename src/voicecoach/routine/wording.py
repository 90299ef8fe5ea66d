"""Cue wording, one table per language: the only place that decides what the coach says around
the routine's own text."""

from __future__ import annotations

import datetime as _dt
import functools
import re
import string
import unicodedata
from dataclasses import dataclass


@dataclass(frozen=True)
class Wording:
    """Everything the coach says that is not written in the routine file."""

    start: str
    start_short: str
    cautions_intro: str
    cautions_short_intro: str
    cautions_generic: str
    manipulation: str
    manipulation_short: str
    left_out: str
    left_out_wait: str
    left_out_count: str
    #: The same two reasons for a day planned ahead: said by date and hour, not "ago".
    left_out_wait_at: str
    left_out_count_on: str
    left_out_screening: str
    next_up: str
    exercise: str
    hold: str
    halfway: str
    numbers: tuple[str, ...]
    switch_sides: str
    side: str
    side_again: str
    keep_going: str
    set: str
    last_set: str
    rep: str
    last_rep: str
    breath_in: str
    breath_out: str
    breath_hold: str
    rest: str
    rest_sets: str
    finish: str
    seconds: tuple[str, str]
    minutes: tuple[str, str]
    hours: tuple[str, str]
    and_: str

    def number(self, n: int) -> str:
        return self.numbers[n] if 0 <= n < len(self.numbers) else str(n)

    def duration(self, seconds: float) -> str:
        """Spoken length: "20 seconds", "1 minute 30 seconds", "about an hour" stays numeric."""
        total = max(1, round(seconds))
        h, rem = divmod(total, 3600)
        m, s = divmod(rem, 60)
        parts = []
        for value, (one, many) in ((h, self.hours), (m, self.minutes), (s, self.seconds)):
            if value:
                parts.append(f"{value} {one if value == 1 else many}")
        if len(parts) > 1:
            return " ".join(parts[:-1]) + f" {self.and_} " + parts[-1]
        return parts[0]

    def day(self, day: _dt.date) -> str:
        """A date as said: "Thursday 3 December"."""
        return f"{day:%A} {day.day} {day:%B}"

    def moment(self, when: float) -> str:
        """A past moment as said for a day planned ahead: "at 09:00 on Thursday 3 December"."""
        at = _dt.datetime.fromtimestamp(when)
        return f"at {at:%H:%M} on {self.day(at.date())}"


ENGLISH = Wording(
    start="{title}. This session takes about {minutes}. Get your mat ready.",
    start_short="{title}. About {minutes}.",
    cautions_intro="Before we begin.",
    cautions_short_intro="A quick reminder.",
    cautions_generic="Stop at once if anything hurts, and never force a movement.",
    manipulation="Go gently. Stop if it hurts, and never force your back to crack.",
    manipulation_short="Stop if it hurts; never force it.",
    left_out="{name} is left out today: {reason}.",
    left_out_wait="you did it {ago} ago, and it needs {wait} between sessions",
    left_out_count="you have done it {count} today, the most advised",
    left_out_wait_at="you did it {when}, and it needs {wait} between sessions",
    left_out_count_on="you did it {count} on {day}, the most advised in a day",
    left_out_screening="your safety answers rule out self-manipulation",
    next_up="Coming up next: {name}.",
    exercise="{name}.",
    hold="Hold for {duration}.",
    halfway="Halfway there.",
    numbers=(
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
        "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
        "eighteen", "nineteen", "twenty",
    ),
    switch_sides="Switch sides. Now the {side} side.",
    side="{side} side first.",
    side_again="{side} side.",
    keep_going="Keep going for {duration}.",
    set="Set {n} of {total}.",
    last_set="Last set.",
    rep="{count}.",
    last_rep="{count}, last one.",
    breath_in="Breathe in.",
    breath_out="Breathe out.",
    breath_hold="Hold your breath.",
    rest="Rest for {duration}.",
    rest_sets="Rest for {duration} before the next set.",
    finish="Well done. That is the end of {title}.",
    seconds=("second", "seconds"),
    minutes=("minute", "minutes"),
    hours=("hour", "hours"),
    and_="and",
)

LANGUAGES: dict[str, Wording] = {"en": ENGLISH}


def wording(language: str) -> Wording:
    """The table for a language tag such as `en` or `en-GB`."""
    base = language.split("-")[0].lower()
    if base not in LANGUAGES:
        raise KeyError(language)
    return LANGUAGES[base]


def counted(n: int, one: str, many: str | None = None) -> str:
    """`1 exercise`, `0 exercises`, `2 exercises`: every count printed with its noun goes
    through here, so no line says "1 exercises" or "exercise(s)"."""
    return f"{n} {one if n == 1 else (many or one + 's')}"


#: Marks that end a sentence: a template's own full stop after one of them is not said twice.
_ENDS = ".!?\u2026"


@functools.lru_cache(maxsize=1024)
def _parsed(template: str) -> tuple[tuple[str, str | None, str | None, str | None], ...]:
    # A planner fills the same few templates thousands of times for each session `make` weighs.
    return tuple(string.Formatter().parse(template))


def fill(template: str, **values: object) -> str:
    """`template` with its fields filled in: the one place the coach's wording meets the routine's
    text. A value that already ends a sentence keeps its own mark, so "{name}." with "Twist." or
    "Feeling stiff?" reads "Twist." and "Feeling stiff?", never "Twist.." or "Feeling stiff?."."""
    out: list[str] = []
    ended = False
    for literal, name, spec, _conversion in _parsed(template):
        if ended and literal[:1] and literal[0] in _ENDS:
            literal = literal[1:]
        out.append(literal)
        ended = False
        if name is not None:
            value = format(values[name], spec or "")
            out.append(value)
            ended = value.rstrip()[-1:] in _ENDS and bool(value.strip())
    return "".join(out)


#: Joiners, variation selectors, keycaps and skin tones that only shape a pictograph.
_PICTOGRAPH_PARTS = {
    0x200D, 0xFE0E, 0xFE0F, 0x20E3, *range(0x1F3FB, 0x1F400), *range(0xE0020, 0xE0080)
}


def _pictograph(c: str) -> bool:
    # Symbols from the arrows block on (emoji, dingbats, pictographs, flags); below it stay
    # the signs a voice reads well: degree, copyright, trade mark.
    code = ord(c)
    return code in _PICTOGRAPH_PARTS or 0x2190 <= code <= 0x21FF or (
        code >= 0x2190 and unicodedata.category(c) == "So")


def speakable(text: str) -> str:
    """What the speech engine is given for `text`: the same words without emoji and pictographs,
    which a voice would read out by name ("Knee hug 🤗" must not say "hugging face")."""
    if all(ord(c) < 0x2190 for c in text):
        return text
    kept = "".join(c for c in text if not _pictograph(c))
    return re.sub(r"\s+([.,;:!?])", r"\1", re.sub(r"\s{2,}", " ", kept)).strip()
