"""One way to turn names into keys: routine ids, exercise matching and safe file names agree."""

from __future__ import annotations

import re
import unicodedata

_RUNS = re.compile(r"[\W_]+", flags=re.UNICODE)


def slug(text: str) -> str:
    """Lower-case letters and digits (any script) joined by dashes: "Cat-cow" == "cat cow"."""
    return _RUNS.sub("-", unicodedata.normalize("NFKC", text).casefold()).strip("-")
