"""Warnings for routine files that load but are probably not what their author meant, or not
speakable."""

from __future__ import annotations

import itertools
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from voicecoach.routine.loader import _read_text
from voicecoach.routine.model import Routine
from voicecoach.routine.wording import speakable

_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
#: Lists whose items are sentences: a comma inside one is part of the sentence.
_SENTENCE_LISTS = {"setup", "then", "cautions"}
#: Keys whose text is never spoken.
_NOT_SPOKEN = {"source", "description", "equipment", "areas", "language", "role", "level"}
#: The scripts each language's voices read.
_SCRIPTS = {"en": {"LATIN"}}
_ENDS = ".!?\u2026:;"


@dataclass(frozen=True)
class RoutineWarning:
    path: str
    lineno: int
    col: int
    message: str
    fix: str

    def line(self) -> str:
        return f"{self.path}:{self.lineno}:{self.col}: warning: {self.message} ({self.fix})"


def lint(path: Path, routine: Routine, shown: str | None = None) -> list[RoutineWarning]:
    """Every warning for a file that `load_routine` accepted, in file order."""
    shown = shown or str(path)
    root = yaml.compose(_read_text(path, shown), Loader=_SafeLoader)
    if root is None:  # the loader accepted it, so it has a document; an empty one has nothing
        return []
    scripts = _SCRIPTS.get(routine.language.split("-")[0].lower())
    out: list[RoutineWarning] = []
    for key, node in _values(root, None):
        where = (shown, node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, yaml.SequenceNode) and key in _SENTENCE_LISTS:
            out += [RoutineWarning(shown, *w) for w in _split_sentences(node)]
        elif isinstance(node, yaml.ScalarNode) and key not in _NOT_SPOKEN and scripts:
            foreign = _foreign_script(node.value, scripts)
            if foreign:
                out.append(RoutineWarning(
                    *where, f"{foreign} text {_clip(node.value)!r} cannot be read by the "
                    f"{routine.language} voice",
                    "write it in the routine's language, or set `language:` to the one it is in"))
    return sorted(out, key=lambda w: (w.lineno, w.col))


def _values(node: yaml.Node, key: str | None) -> Iterator[tuple[str | None, yaml.Node]]:
    """(the key it belongs to, node) for every value node, depth first."""
    yield key, node
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            yield from _values(v, k.value if isinstance(k, yaml.ScalarNode) else None)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            yield from _values(item, key)


def _split_sentences(node: yaml.SequenceNode) -> Iterator[tuple[int, int, str, str]]:
    """`[Lie down, arms out.]` is two items; a person meant one sentence."""
    if not node.flow_style:
        return
    items = node.value
    for a, b in itertools.pairwise(items):
        if not (_plain(a) and _plain(b)):
            continue
        first, second = a.value.strip(), b.value.strip()
        if first and first[-1] not in _ENDS and second[:1].islower():
            yield (a.start_mark.line + 1, a.start_mark.column + 1,
                   f"{first!r} and {second!r} are two items: the comma split a sentence",
                   f'put the sentence in quotes: "{first}, {second}"')


def _plain(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and not node.style and node.tag.endswith(":str")


def _foreign_script(text: str, scripts: set[str]) -> str | None:
    for c in speakable(text):
        name = unicodedata.name(c, "") if c.isalpha() else ""
        # Letters are named after their script ("CYRILLIC SMALL LETTER A"); signs such as "ª"
        # are not.
        if any(word in name for word in ("LETTER", "IDEOGRAPH", "SYLLABLE", "SYLLABICS")):
            script = name.split()[0]
            if script not in scripts:
                return script.title()
    return None


def _clip(text: str) -> str:
    return text if len(text) <= 40 else text[:37] + "..."
