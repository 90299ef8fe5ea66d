"""Numbers a person cannot mean (nan, infinities), tab indentation, durations that give a unit
twice or out of order, names with nothing visible in them, and counts with their nouns."""

from __future__ import annotations

import random
import re
import unicodedata
from pathlib import Path

import pytest
import typer

from voicecoach.cli.options import is_number
from voicecoach.cli.run import app, main
from voicecoach.errors import RoutineErrors
from voicecoach.routine.durations import parse_duration
from voicecoach.routine.loader import load_routine
from voicecoach.routine.wording import counted

NON_FINITE = ["nan", "inf", "-inf", "1e309"]


def _number_params() -> list[tuple[str, str, list[str]]]:
    """(command, option, the other arguments it needs) for every number option of every command,
    found by looking at the app, not by a list that could miss a new one."""
    out = []
    for name, command in typer.main.get_command(app).commands.items():  # type: ignore[attr-defined]
        needed = ["x" for p in command.params
                  if p.param_type_name == "argument" and p.required]
        for param in command.params:
            if is_number(param):  # on every typer the package allows (test_the_sweep_sees...)
                out.append((name, max(param.opts, key=len), needed))
    return out


NUMBER_PARAMS = _number_params()


def test_the_sweep_sees_the_number_options() -> None:
    seen = {(c, o) for c, o, _ in NUMBER_PARAMS}
    assert {("show", "--pace"), ("play", "--volume"), ("make", "--minutes"),
            ("export", "--loudness"), ("history", "--limit"), ("serve", "--port")} <= seen


@pytest.mark.parametrize("value", NON_FINITE)
@pytest.mark.parametrize(("command", "option", "needed"), NUMBER_PARAMS,
                         ids=[f"{c} {o}" for c, o, _ in NUMBER_PARAMS])
def test_every_number_option_refuses_nan_and_infinities_with_its_range(
        command: str, option: str, needed: list[str], value: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    # The option first: it is parsed before anything else is looked at or done.
    with pytest.raises(SystemExit) as stop:
        main([command, f"{option}={value}", *needed])
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2, err
    assert len(err) == 1, err
    assert option in err[0] and "not a finite number" in err[0] and " to " in err[0], err


def test_nan_pace_is_refused_through_the_real_entry_point(run_cli) -> None:  # type: ignore[no-untyped-def]
    done = run_cli("show", "five-minute-back", "--pace", "nan", "--estimate")
    assert done.returncode == 2
    assert done.stderr.strip() == ("error: Invalid value for '--pace': nan is not a finite "
                                   "number: give a number from 0.25 to 4 (see `voicecoach show "
                                   "--help`)")


BASE = """title: T
defaults:
  rest: 5s
exercises:
  - name: X
    hold: 5s
  - name: Y
    reps: 2
    tempo: 3s
"""

#: Every number a routine may hold, and where it goes.
NUMBER_FIELDS = {
    "rest": ("defaults:\n  rest: 5s", "defaults:\n  rest: {v}"),
    "step_pause": ("defaults:\n  rest: 5s", "defaults:\n  rest: 5s\n  step_pause: {v}"),
    "countdown": ("defaults:\n  rest: 5s", "defaults:\n  rest: 5s\n  countdown: {v}"),
    "familiar_after": ("defaults:\n  rest: 5s", "defaults:\n  rest: 5s\n  familiar_after: {v}"),
    "hold": ("    hold: 5s", "    hold: {v}"),
    "reps": ("    reps: 2", "    reps: {v}"),
    "tempo": ("    tempo: 3s", "    tempo: {v}"),
    "sets": ("    hold: 5s", "    hold: 5s\n    sets: {v}"),
    "wait": ("    hold: 5s", "    hold: 5s\n    limits:\n      wait: {v}"),
    "max_per_day": ("    hold: 5s", "    hold: 5s\n    limits:\n      max_per_day: {v}"),
}


def _write(tmp: Path, text: str) -> Path:
    path = tmp / "r.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("value", [".nan", ".NaN", ".inf", "-.inf", "+.inf", "1.0e+309"])
@pytest.mark.parametrize("field", sorted(NUMBER_FIELDS))
def test_every_number_in_a_routine_refuses_nan_and_infinities_where_it_is(
        field: str, value: str, tmp_path: Path) -> None:
    old, new = NUMBER_FIELDS[field]
    text = BASE.replace(old, new.format(v=value), 1)
    line = next(i for i, t in enumerate(text.splitlines(), 1) if value in t)
    with pytest.raises(RoutineErrors) as caught:
        load_routine(_write(tmp_path, text))
    first = caught.value.errors[0]
    assert first.lineno == line, first.line()
    assert field in first.line(), first.line()
    assert " to " in first.line() and "Traceback" not in first.line(), first.line()


@pytest.mark.parametrize("source", sorted(Path("routines").glob("*.yaml")) or [None])
def test_a_tab_anywhere_in_the_indentation_says_indent_with_spaces_there(
        source: Path | None, tmp_path: Path, seed: int) -> None:
    """Each indented line of a bundled routine, in turn, indented with a tab instead: either
    YAML reads the same routine, or the error is on that line and says to indent with spaces."""
    if source is None:
        pytest.skip("no bundled routines")
    base = Path(__file__).parents[1] / source
    lines = base.read_text(encoding="utf-8").splitlines()
    indented = [i for i, t in enumerate(lines) if t.startswith("  ") and t.strip()]
    rng = random.Random(seed)
    for i in rng.sample(indented, min(25, len(indented))):
        where = rng.randrange(0, len(lines[i]) - len(lines[i].lstrip(" ")))
        changed = [*lines]
        changed[i] = lines[i][:where] + "\t" + lines[i][where + 1:]
        try:
            load_routine(_write(tmp_path, "\n".join(changed) + "\n"))
        except RoutineErrors as exc:
            first = exc.errors[0]
            assert (first.lineno, first.fix) == (i + 1, "indent with spaces, not tabs"), (
                f"line {i + 1} col {where + 1}: {first.line()} (seed {seed})")


UNITS = ["h", "m", "s", "ms"]


@pytest.mark.parametrize("unit", UNITS)
def test_a_unit_given_twice_is_refused_never_added_up(unit: str) -> None:
    for text in [f"1{unit} 1{unit}", f"1{unit}1{unit}", f"2{unit} 3{unit}"]:
        with pytest.raises(ValueError, match=r"more than once.*largest first"):
            parse_duration(text)
    for other in UNITS:  # with another unit between them, too
        if other != unit:
            with pytest.raises(ValueError):
                parse_duration(f"1{unit} 1{other} 1{unit}")


def test_units_out_of_order_are_refused_and_in_order_are_summed() -> None:
    for a, b in [(x, y) for i, x in enumerate(UNITS) for y in UNITS[i + 1:]]:
        assert parse_duration(f"1{a} 1{b}") == pytest.approx(
            {"h": 3600, "m": 60, "s": 1, "ms": 0.001}[a] + {"h": 3600, "m": 60, "s": 1,
                                                              "ms": 0.001}[b])
        with pytest.raises(ValueError, match=rf"out of order.*e\.g\. 1{a}1{b}"):
            parse_duration(f"1{b} 1{a}")


def test_an_ambiguous_duration_is_located_in_the_file(tmp_path: Path) -> None:
    with pytest.raises(RoutineErrors) as caught:
        load_routine(_write(tmp_path, BASE.replace("hold: 5s", "hold: 1m 30s 10s")))
    assert caught.value.errors[0].line().startswith(f"{tmp_path / 'r.yaml'}:6:11: ")


def _invisible() -> list[str]:
    chars = [chr(c) for c in range(0x110000)
             if unicodedata.category(chr(c)) in {"Cf", "Mn", "Zs", "Cc"} and c not in (0x0A,)]
    return chars


INVISIBLE = _invisible()


@pytest.mark.parametrize("field", ["title", "name", "side"])
def test_a_name_of_only_invisible_characters_is_refused_where_it_is(
        field: str, tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    target = {"title": "title: T", "name": "  - name: X", "side": "    hold: 5s"}[field]
    for _ in range(60):
        name = "".join(rng.choice(INVISIBLE) for _ in range(rng.randint(1, 4)))
        escaped = "".join(f"\\U{ord(c):08x}" for c in name)
        put = {"title": f'title: "{escaped}"', "name": f'  - name: "{escaped}"',
               "side": f'    hold: 5s\n    sides: ["{escaped}", right]'}[field]
        text = BASE.replace(target, put, 1)
        line = next(i for i, t in enumerate(text.splitlines(), 1) if escaped in t)
        with pytest.raises(RoutineErrors) as caught:
            load_routine(_write(tmp_path, text))
        first = caught.value.errors[0]
        assert first.lineno == line and first.col > 1, (first.line(), f"seed {seed}")
        assert "empty" in first.line() or "control character" in first.line(), first.line()


def test_a_name_with_a_visible_character_among_invisible_ones_is_kept(tmp_path: Path) -> None:
    routine = load_routine(_write(tmp_path, BASE.replace("name: X", 'name: "\\u200bX\\u0301"')))
    assert routine.exercises[0].name == "\u200bX\u0301"


def test_counted_says_one_and_many() -> None:
    assert [counted(n, "exercise") for n in (0, 1, 2)] == ["0 exercises", "1 exercise",
                                                           "2 exercises"]
    assert counted(1, "day") == "1 day" and counted(3, "more problem") == "3 more problems"


ONE = "title: One\nexercises:\n  - name: X\n    hold: 5s\n"
TWO = ONE + "  - name: Y\n    hold: 5s\n"


@pytest.mark.parametrize(("text", "count"), [(ONE, 1), (TWO, 2)])
def test_show_prints_the_count_with_its_noun(text: str, count: int, run_cli,  # type: ignore[no-untyped-def]
                                             tmp_path: Path) -> None:
    path = _write(tmp_path, text)
    done = run_cli("show", str(path), "--estimate")
    assert done.returncode == 0, done.stderr
    assert f"({counted(count, 'exercise')})" in done.stdout
    assert "1 exercises" not in done.stdout + done.stderr


def test_history_says_days_as_it_should(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    done = run_cli("history", env={"VOICECOACH_DATA_DIR": str(tmp_path / "data")})
    assert done.returncode == 0, done.stderr
    assert "Streak: 0 days now, longest 0 days." in done.stdout
    assert "(s)" not in done.stdout


def test_no_count_in_the_source_makes_its_own_plural() -> None:
    """Every count printed with a noun goes through `counted`: no `(s)` and no `'s' * (n != 1)`."""
    src = Path(__file__).parents[1] / "src" / "voicecoach"
    for path in src.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"[\"'][^\"'\n]*[a-z]\(s\)", text) or path.name == "wording.py", path
        assert "'s' * (" not in text and '"s" * (' not in text, path
