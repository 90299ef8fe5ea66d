"""Load routine files: YAML with line/column tracking, strict validation, errors at
PATH:LINE:COL."""

from __future__ import annotations

import codecs
import contextlib
import difflib
import types
import typing
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from voicecoach.errors import RoutineError, RoutineErrors, UserError, check_input
from voicecoach.routine.model import Routine
from voicecoach.routine.names import slug

MAX_BYTES = 1_000_000
MAX_DEPTH = 32
MAX_NODES = 50_000

_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
Loc = tuple[str | int, ...]


@dataclass
class _Marks:
    """Where each value (and each mapping key) sits in the file, by path."""

    values: dict[Loc, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Loc, tuple[int, int]] = field(default_factory=dict)


def load_routine(path: str | Path, *, routine_id: str | None = None) -> Routine:
    """Read, parse and validate one routine file; raise RoutineErrors listing every problem."""
    path = Path(path)
    shown = str(path)
    text = _read_text(path, shown)
    data, marks = _parse(text, shown)
    return _validate(data, marks, shown, routine_id or id_from_path(path))


def id_from_path(path: Path) -> str:
    return slug(path.name.split(".")[0]) or "routine"


def _one(path: str, line: int, col: int, message: str, fix: str | None = None) -> RoutineErrors:
    return RoutineErrors([RoutineError(path, line, col, message, fix=fix)])


def _read_text(path: Path, shown: str) -> str:
    # Missing, a file mid-path, a folder; a pipe, a FIFO or a device, which has no size to check
    # and may never end (or never open): reading one would skip the size limit, or wait for a
    # writer that never comes.
    check_input(path, "routine file", shown=shown, fix="check the path, or run `voicecoach list`")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise UserError(f"{shown}: cannot read ({exc.strerror})") from None
    if size > MAX_BYTES:
        raise _one(shown, 1, 1, f"file is {size:,} bytes; a routine file may be at most "
                   f"{MAX_BYTES:,} bytes", "split it into several routines")
    try:
        with path.open("rb") as stream:
            raw = stream.read(MAX_BYTES + 1)  # bounded, even if the file grows meanwhile
    except OSError as exc:
        raise UserError(f"{shown}: cannot read ({exc.strerror})") from None
    if len(raw) > MAX_BYTES:
        raise _one(shown, 1, 1, f"file is over {MAX_BYTES:,} bytes; a routine file may be at "
                   f"most {MAX_BYTES:,} bytes", "split it into several routines")
    return _decode(raw, shown)


def _decode(raw: bytes, shown: str) -> str:
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        # Windows editors save UTF-16 with a byte order mark: read it rather than refuse it.
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError:
            raise _one(shown, 1, 1, "the file is not valid UTF-16 text",
                       "save the file as UTF-8") from None
    if b"\x00" in raw[:200] and raw.count(b"\x00") * 4 >= min(len(raw), 200):
        raise _one(shown, 1, 1, "the file looks like UTF-16 text without a byte order mark",
                   "save the file as UTF-8")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        col = len(before[before.rfind(b"\n") + 1 :].decode("utf-8", "replace")) + 1
        raise _one(shown, line, col, f"byte 0x{raw[exc.start]:02x} is not UTF-8 text",
                   "save the file as UTF-8") from None


def _parse(text: str, shown: str) -> tuple[Any, _Marks]:
    if not text.strip():
        raise _one(shown, 1, 1, "the file is empty", "a routine needs a title and exercises")
    try:
        _check_shape_first(text, shown)
        documents = list(yaml.compose_all(text, Loader=_SafeLoader))
    except yaml.reader.ReaderError as exc:
        line, col = _position(text, exc.position)
        code = (exc.character if isinstance(exc.character, int)
                else ord(str(exc.character)[:1] or " "))
        raise _one(shown, line, col, f"control character U+{code:04X} is not allowed in YAML",
                   "remove it, or write it as an escape in a double-quoted string") from None
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(exc, shown, text) from None
    except yaml.YAMLError as exc:
        raise _one(shown, 1, 1, f"YAML syntax: {_first_line(str(exc))}") from None
    documents = [d for d in documents if d is not None]
    if len(documents) != 1:
        if not documents:
            raise _one(shown, 1, 1, "the file holds no routine",
                       "a routine needs a title and exercises")
        extra = documents[1].start_mark
        raise _one(shown, extra.line + 1, extra.column + 1, "more than one YAML document",
                   "keep one routine per file")
    root = documents[0]
    if not isinstance(root, yaml.MappingNode):
        m = root.start_mark
        raise _one(shown, m.line + 1, m.column + 1, "a routine file must be a mapping of keys",
                   "start with `title:` and `exercises:`")
    marks = _Marks()
    data = _Builder(shown, marks).build(root, ())
    return data, marks


def _position(text: str, index: int) -> tuple[int, int]:
    before = text[:index]
    return before.count("\n") + 1, index - (before.rfind("\n") + 1) + 1


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "invalid YAML"


#: Problems whose real cause is where the construct opened (context_mark), not where YAML gave up.
_OPENED_AT = {
    "found unexpected end of stream": "close the quote that starts here",
    "expected ',' or ']'": "close the [ list that starts here",
    "expected ',' or '}'": "close the { mapping that starts here",
    "could not find expected ':'": "add ': ' after the key, or quote the text",
}


def _syntax_error(exc: yaml.MarkedYAMLError, shown: str, text: str) -> RoutineErrors:
    problem = exc.problem or exc.context or "invalid YAML"
    mark = exc.problem_mark or exc.context_mark
    fix = _yaml_fix(problem)
    for marker, hint in _OPENED_AT.items():
        if marker in problem and exc.context_mark is not None:
            mark, fix = exc.context_mark, hint
            if "end of stream" in problem and "quote" in (exc.context or ""):
                problem = "this quoted text is never closed"
            break
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    tab = _tab_indent(text, exc.problem_mark or mark)
    if tab is not None:
        return _one(shown, tab[0], tab[1], "YAML syntax: a tab in the indentation",
                    "indent with spaces, not tabs")
    return _one(shown, line, col, f"YAML syntax: {_first_line(problem)}", fix)


def _tab_indent(text: str, mark: Any) -> tuple[int, int] | None:
    """Where the tab is, when YAML gave up on a line whose indentation (or the gap after a `- `
    or `key:`) holds one: the parser's own words for it ("cannot start any token") say nothing
    of tabs."""
    if mark is None:
        return None
    lines = text.splitlines() or [""]
    row = min(mark.line, len(lines) - 1)
    line = lines[row]
    indent = len(line) - len(line.lstrip(" \t-"))
    spot = line.find("\t", 0, max(indent, mark.column + 1))
    return None if spot < 0 else (row + 1, spot + 1)


def _yaml_fix(problem: str) -> str | None:
    if "tab" in problem:
        return "indent with spaces, not tabs"
    if "mapping values are not allowed" in problem:
        return "quote text that contains ': ', or check this line's indentation"
    if any(m in problem for m in ("expected <block end>", "did not find expected key",
                                  "did not find expected '-'", "expected '<document start>'")):
        return "check the indentation of this line"
    return None


def _check_shape_first(text: str, shown: str) -> None:
    """Our limits speak before the YAML library's own: libyaml (PyYAML 6.0.4's bundled one, for
    one) has a nesting limit of its own and its scanner reads a flow collection's tokens ahead, so
    it can fail at level 1,000 before our check has seen level 33. When the C parser gives up, the
    pure-Python parser (the same code on every PyYAML version, and no nesting limit) re-reads the
    text up to where it gave up: if one of our limits was passed there, that is the error."""
    try:
        _check_shape(text, shown, _SafeLoader)
    except yaml.YAMLError as exc:
        if _SafeLoader is yaml.SafeLoader:
            raise
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        end = len(text) if mark is None else min(len(text), mark.index + 1)
        with contextlib.suppress(yaml.YAMLError):  # the prefix's own syntax errors are not news
            _check_shape(text[:end], shown, yaml.SafeLoader)
        raise


def _mark(event: yaml.Event) -> Any:
    # The parser marks every event it emits; the stubs allow None for hand-made events.
    assert event.start_mark is not None
    return event.start_mark


def _check_shape(text: str, shown: str, loader: Any) -> None:
    """Refuse deep nesting before composing: PyYAML composes recursively."""
    depth = 0
    for events, event in enumerate(yaml.parse(text, Loader=loader), 1):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                m = _mark(event)
                raise _one(shown, m.line + 1, m.column + 1,
                           f"nested more than {MAX_DEPTH} levels deep",
                           "a routine is a few levels deep")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
        if events > MAX_NODES:
            m = _mark(event)
            raise _one(shown, m.line + 1, m.column + 1, f"more than {MAX_NODES} YAML values",
                       "split it into several routines")


_PLAIN_TAGS = {
    "tag:yaml.org,2002:str", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool", "tag:yaml.org,2002:null", "tag:yaml.org,2002:timestamp",
}
_COLLECTION_TAGS = {"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"}
#: Line breaks and tabs are ordinary in text; every other C0/C1 control, and the characters that
#: reorder text on screen (bidirectional overrides and isolates), are not.
_CONTROL_OK = frozenset("\n\t")
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


class _Builder:
    """Nodes to plain data with a budget, so aliases cannot expand without bound."""

    def __init__(self, shown: str, marks: _Marks) -> None:
        # One constructor per file: it caches every node it builds, so a shared one would grow.
        self._constructor = yaml.constructor.SafeConstructor()
        self.shown = shown
        self.marks = marks
        self.budget = MAX_NODES
        self.seen: set[int] = set()
        #: Where the outermost alias being expanded is used: the place to blame for a bomb.
        self.alias_at: Loc | None = None

    def build(self, node: yaml.Node, loc: Loc) -> Any:
        repeated = id(node) in self.seen
        if repeated and self.alias_at is None:
            self.alias_at = loc
            try:
                return self._build(node, loc)
            finally:
                self.alias_at = None
        self.seen.add(id(node))
        return self._build(node, loc)

    def _build(self, node: yaml.Node, loc: Loc) -> Any:
        self.budget -= 1
        if self.budget < 0:
            where = self._alias_mark() or (node.start_mark.line + 1, node.start_mark.column + 1)
            raise _one(self.shown, *where, f"anchors and aliases expand to more than {MAX_NODES} "
                       "values", "write the values out instead of nesting aliases")
        self.marks.values.setdefault(loc, (node.start_mark.line + 1, node.start_mark.column + 1))
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node)
        if node.tag not in _COLLECTION_TAGS:
            raise self._tag_error(node)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, loc)
        return [self.build(child, (*loc, i)) for i, child in enumerate(node.value)]

    def _alias_mark(self) -> tuple[int, int] | None:
        if self.alias_at is None:
            return None
        loc = self.alias_at
        return self.marks.keys.get(loc) or _nearest(loc[:-1], self.marks)

    def _tag_error(self, node: yaml.Node) -> RoutineErrors:
        m = node.start_mark
        tag = node.tag.replace("tag:yaml.org,2002:", "!!")
        return _one(self.shown, m.line + 1, m.column + 1, f"the YAML tag {tag} is not supported",
                    "remove the tag")

    def _scalar(self, node: yaml.Node) -> Any:
        if node.tag not in _PLAIN_TAGS:
            raise self._tag_error(node)
        if isinstance(node.value, str):
            self._refuse_controls(node)
        try:
            return self._constructor.construct_object(node, deep=True)
        # PyYAML's own constructors fail in their own ways on odd text: `!!int ` (empty) raises
        # IndexError, an odd `!!timestamp` AttributeError. Whatever it is, it is this scalar's.
        except (yaml.YAMLError, ValueError, TypeError, IndexError, KeyError, AttributeError,
                OverflowError):
            m = node.start_mark
            tag = node.tag.replace("tag:yaml.org,2002:", "!!")
            raise _one(self.shown, m.line + 1, m.column + 1,
                       f"{node.value!r} cannot be read as {tag}", "remove the tag") from None

    def _refuse_controls(self, node: yaml.Node) -> None:
        # The reader refuses control characters typed into the file; these came in through a
        # double-quoted escape (\u001b, \0, \u202e) and would reach the terminal, the .lrc,
        # the playlist and the tags as they are.
        for char in node.value:
            if char in _CONTROL_OK:
                continue
            if unicodedata.category(char) == "Cc" or char in _BIDI_CONTROLS:
                m = node.start_mark
                raise _one(self.shown, m.line + 1, m.column + 1,
                           f"control character U+{ord(char):04X} is not allowed in text",
                           "remove the escape from this text")

    def _mapping(self, node: yaml.MappingNode, loc: Loc) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            m = key_node.start_mark
            where = (m.line + 1, m.column + 1)
            if (not isinstance(key_node, yaml.ScalarNode)
                    or key_node.tag == "tag:yaml.org,2002:merge"):
                raise _one(self.shown, *where, "keys must be plain names",
                           "merge keys (<<) and complex keys are not supported")
            key = key_node.value
            if key in out:
                raise _one(self.shown, *where, f"duplicate key {key!r}", "keep only one of them")
            self.marks.keys[(*loc, key)] = where
            out[key] = self.build(value_node, (*loc, key))
        return out


def _validate(data: dict[str, Any], marks: _Marks, shown: str, routine_id: str) -> Routine:
    if "id" in data:
        line, col = marks.keys[("id",)]
        raise _one(shown, line, col, "unknown key 'id'",
                   "the id comes from the file name; remove it")
    try:
        routine = Routine.model_validate(data)
    except ValidationError as exc:
        raw = _merge(exc.errors(include_url=False), data)
        errors = [_locate(err, marks, shown, data) for err in raw]
        errors.sort(key=lambda e: (e.lineno, e.col))
        raise RoutineErrors(_dedupe(errors)) from None
    return routine.model_copy(update={"id": routine_id})


def _merge(errors: list[Any], data: dict[str, Any]) -> list[Any]:
    """One error per mistake: a misspelt required key is reported as the typo alone, and a
    step like `- Note: keep still` (text YAML read as a key) as text that needs quotes."""
    extras = {tuple(e["loc"]) for e in errors if e["type"] == "extra_forbidden"}
    out = []
    for err in errors:
        loc = tuple(err["loc"])
        if err["type"] == "missing":
            siblings = [x[-1] for x in extras if x[:-1] == loc[:-1]]
            if difflib.get_close_matches(str(loc[-1]), [str(x) for x in siblings], n=1, cutoff=0.6):
                continue
            if loc[-1] == "say" and any(x[:-1] == loc[:-1] for x in extras):
                continue
        if err["type"] == "extra_forbidden" and _is_text_read_as_key(loc, data):
            err = {**err, "type": "unquoted_colon"}
        out.append(err)
    return out


def _is_text_read_as_key(loc: tuple[Any, ...], data: dict[str, Any]) -> bool:
    """A one-key mapping with a text value inside a list of steps, follow-ups or cautions."""
    if len(loc) < 3 or not isinstance(loc[-2], int):
        return False
    parent = _get(data, loc[:-1])
    return (
        loc[-3] in {"setup", "then", "cautions", "each_rep"}
        and isinstance(parent, dict)
        and len(parent) == 1
        and isinstance(parent.get(loc[-1]), str | type(None))
    )


def _get(data: Any, loc: tuple[Any, ...]) -> Any:
    for part in loc:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _dedupe(errors: list[RoutineError]) -> list[RoutineError]:
    seen: set[str] = set()
    out = []
    for e in errors:
        if e.line() not in seen:
            seen.add(e.line())
            out.append(e)
    return out


def _locate(err: Any, marks: _Marks, shown: str, data: dict[str, Any]) -> RoutineError:
    loc: Loc = tuple(p for p in err["loc"] if not _is_branch_tag(p))
    kind = err["type"]
    name = ".".join(str(p) for p in loc) or "routine"
    if kind == "unquoted_colon":
        line, col = marks.keys.get(loc) or _nearest(loc, marks)
        text = f"{loc[-1]}: {_get(data, loc) or ''}".strip()
        return RoutineError(shown, line, col, f"{text!r} was read as a key and a value",
                            fix="put text that contains ': ' in quotes")
    if kind == "value_error" and "two exercises are named" in str(err.get("msg")):
        line, col = _second_name(data, marks) or _nearest(loc, marks)
        return RoutineError(shown, line, col, _message(err))
    if kind == "extra_forbidden":
        line, col = marks.keys.get(loc) or _nearest(loc, marks)
        return RoutineError(shown, line, col, f"unknown key {loc[-1]!r}", fix=_suggest(loc))
    if kind == "missing":
        line, col = _nearest(loc[:-1], marks)
        return RoutineError(shown, line, col, f"{name}: missing required key {loc[-1]!r}",
                            fix=f"add `{loc[-1]}:`")
    line, col = marks.values.get(loc) or _nearest(loc, marks)
    if kind == "string_type" and isinstance(err.get("input"), bool):
        # The text was `Yes`, `No`, `On` or `Off`: YAML 1.1 reads those as booleans.
        return RoutineError(shown, line, col, f"{name}: {_message(err)}",
                            fix="YAML reads yes, no, on and off as true or false: put the text "
                            'in quotes, e.g. "Yes"')
    message = _message(err)
    if kind in {"int_type", "int_parsing", "int_from_float"} and (span := _bounds_at(loc)):
        message += f": give one {span}"
    return RoutineError(shown, line, col, f"{name}: {message}")


def _bounds_at(loc: Loc) -> str | None:
    """`from 1 to 500` for a number field with both bounds: a `.nan` or `.inf` is told what
    the field takes."""
    model: Any = Routine
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        info = model.model_fields.get(part) if _is_model(model) else None
        if info is None:
            return None
        model = _inner_model(info.annotation)
    info = model.model_fields.get(loc[-1]) if _is_model(model) and loc else None
    if info is None:
        return None
    low = next((m.ge for m in info.metadata if hasattr(m, "ge")), None)
    high = next((m.le for m in info.metadata if hasattr(m, "le")), None)
    return None if low is None or high is None else f"from {low} to {high}"


def _second_name(data: dict[str, Any], marks: _Marks) -> tuple[int, int] | None:
    seen: set[str] = set()
    for i, ex in enumerate(data.get("exercises") or []):
        name = ex.get("name") if isinstance(ex, dict) else None
        if isinstance(name, str):
            key = slug(name)
            if key in seen:
                return marks.values.get(("exercises", i, "name"))
            seen.add(key)
    return None


def _is_branch_tag(part: str | int) -> bool:
    # pydantic adds union member names such as "function-before[...]" or "float" to locations.
    return isinstance(part, str) and ("[" in part or part in {"str", "float", "int", "Step"})


def _nearest(loc: Loc, marks: _Marks) -> tuple[int, int]:
    for end in range(len(loc), -1, -1):
        if loc[:end] in marks.values:
            return marks.values[loc[:end]]
    return (1, 1)


_FRIENDLY = {
    "int_type": "expected a whole number",
    "int_parsing": "expected a whole number",
    "int_from_float": "expected a whole number",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "string_type": "expected text",
    "list_type": "expected a list (lines starting with `- `)",
    "model_type": "expected a mapping of keys",
    "dict_type": "expected a mapping of keys",
    "string_too_short": "must not be empty",
    "too_short": "must not be empty",
}


#: What a field expects, said the way a person would fix it.
_EXPECTS = {
    "language": "expected a language tag such as en or en-GB",
}


def _message(err: Any) -> str:
    kind = err["type"]
    got = err.get("input")
    field = next((p for p in reversed(err["loc"]) if isinstance(p, str)), "")
    if got is None and kind not in {"missing", "value_error"}:
        return "is empty: give it a value"
    if field in _EXPECTS and kind in {"string_pattern_mismatch", "string_type"}:
        return f"{_EXPECTS[field]}, got {_short(got)}"
    shown = "" if isinstance(got, dict | list) else f", got {_short(got)}"
    if kind in _FRIENDLY:
        return _FRIENDLY[kind] + (shown if kind not in {"string_too_short", "too_short"} else "")
    if kind == "value_error":
        return str(err["msg"]).removeprefix("Value error, ")
    ctx = err.get("ctx") or {}
    if kind in {"greater_than_equal", "greater_than"}:
        return f"must be at least {ctx.get('ge', ctx.get('gt'))}{shown}"
    if kind in {"less_than_equal", "less_than"}:
        return f"must be at most {ctx.get('le', ctx.get('lt'))}{shown}"
    if kind == "too_long":
        return f"too many entries (at most {ctx.get('max_length')})"
    if kind == "string_too_long":
        return f"text is too long (at most {ctx.get('max_length')} characters)"
    if kind == "enum":
        return f"must be one of {ctx.get('expected')}{shown}"
    if kind == "string_pattern_mismatch":
        return f"not a valid value{shown}"
    return str(err["msg"]) + shown


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _suggest(loc: Loc) -> str:
    allowed = _fields_at(loc[:-1])
    if not allowed:
        return "remove it"
    close = difflib.get_close_matches(str(loc[-1]), allowed, n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]!r}?"
    return "allowed here: " + ", ".join(allowed)


def _fields_at(loc: Loc) -> list[str]:
    """Field names of the model that sits at this path of a routine."""
    model: Any = Routine
    for part in loc:
        if isinstance(part, int):
            continue
        info = model.model_fields.get(part) if _is_model(model) else None
        if info is None:
            return []
        model = _inner_model(info.annotation)
    if not _is_model(model):
        return []
    return [n for n in model.model_fields if n != "id"]


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _inner_model(tp: Any) -> Any:
    if _is_model(tp):
        return tp
    origin = typing.get_origin(tp)
    if origin in (list, typing.Union, types.UnionType, typing.Annotated):
        for arg in typing.get_args(tp):
            found = _inner_model(arg)
            if found is not None:
                return found
    return None
