"""What is spoken is what a listener should hear: pictographs are shown but never read aloud, and
files that load but are probably not what was meant get located warnings."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest

from voicecoach.plan.timeline import build_plan
from voicecoach.routine.library import bundled
from voicecoach.routine.loader import load_routine
from voicecoach.routine.wording import speakable

ROOT = Path(__file__).resolve().parents[1]

#: Faces, hands with skin tones, ZWJ sequences, flags, dingbats, weather, hearts, arrows (a
#: keycap such as 1️⃣ keeps its digit, which is read as a number).
PICTOGRAPHS = ["🤗", "💪🏽", "👨‍👩‍👧", "🇬🇧", "✅", "✔️", "☀️", "❤️", "➡️", "🧘‍♀️", "🛏️",
               "🦴", "🫁", "⭐", "🏳️‍🌈", "🙂🙂🙂", "→"]


def test_every_pictograph_code_point_is_left_out_of_speech() -> None:
    for code in [*range(0x2190, 0x2C00), *range(0x1F000, 0x1FB00)]:
        c = chr(code)
        if unicodedata.category(c) == "So":
            assert speakable(f"Knee hug {c}.") == "Knee hug.", hex(code)
    # Signs a voice reads well stay.
    assert speakable("Bend to 90° for 5 s.") == "Bend to 90° for 5 s."


def test_pictographs_are_shown_but_not_read_aloud() -> None:
    from voicecoach.speech import VoiceSettings, get_engine, render_clips

    engine, settings = get_engine(None), VoiceSettings()
    plain = render_clips(engine, ["Knee hug."], settings)["Knee hug."]
    texts = [f"Knee hug {p}." for p in PICTOGRAPHS] + [f"{p} Knee hug." for p in PICTOGRAPHS]
    clips = render_clips(engine, texts, settings)
    for text in texts:
        # espeak-ng renders the same words to the same samples (a few samples of noise at most).
        assert abs(len(clips[text]) - len(plain)) <= 2 * 64, text
    assert render_clips(engine, ["🤗"], settings)["🤗"] == b""


def test_the_routine_text_keeps_its_pictographs_on_screen(tmp_path: Path) -> None:
    path = tmp_path / "e.yaml"
    path.write_text("title: Easy 🙂\nexercises:\n  - name: Knee hug 🤗\n    hold: 5s\n",
                    encoding="utf-8")
    texts = [e.text for e in build_plan(load_routine(path)).events]
    assert "Knee hug 🤗." in texts and any("Easy 🙂" in t for t in texts)


#: (file text, [(line, col, words in the warning)]): valid YAML a person did not mean.
WARNED = {
    "split-setup": ("title: T\nexercises:\n  - name: A\n    setup: [Lie down, arms out.]\n"
                    "    hold: 5s\n", [(4, 13, "comma split a sentence")]),
    "split-cautions": ("title: T\ncautions: [Go slowly, stop if it hurts.]\nexercises:\n"
                       "  - {name: A, hold: 5s}\n", [(2, 12, "comma split a sentence")]),
    "split-then": ("title: T\nexercises:\n  - name: A\n    hold: 5s\n"
                   "    then: [Roll over, then rest., Sit up]\n", [(5, 12, "comma split")]),
    "cyrillic-caution": ("title: T\nexercises:\n  - name: A\n    caution: Не спеши.\n"
                         "    hold: 5s\n", [(4, 14, "Cyrillic text")]),
    "greek-name": ("title: T\nexercises:\n  - name: Στάση\n    hold: 5s\n",
                   [(3, 11, "Greek text")]),
    "cjk-step": ("title: T\nexercises:\n  - name: A\n    setup: [\"深呼吸\"]\n    hold: 5s\n",
                 [(4, 13, "Cjk text")]),
    "two-problems": ("title: T\ncautions: [Slow, gentle.]\nexercises:\n  - name: Ağrı ارتاح\n"
                     "    hold: 5s\n", [(2, 12, "comma split"), (4, 11, "Arabic text")]),
}
#: Files that must give no warning at all.
CLEAN = {
    "sides": "title: T\nexercises:\n  - name: A\n    sides: [left, right]\n    hold: 5s\n",
    "quoted": 'title: T\nexercises:\n  - name: A\n    setup: ["Lie down, arms out."]\n'
              '    hold: 5s\n',
    "sentences": "title: T\nexercises:\n  - name: A\n    setup: [Lie down., Arms out.]\n"
                 "    hold: 5s\n",
    "equipment": "title: T\nequipment: [mat, chair]\nexercises:\n  - {name: A, hold: 5s}\n",
    "latin-accents": "title: Café\nexercises:\n  - name: Señor stretch 🤗\n    hold: 5s\n",
    "block-list": "title: T\nexercises:\n  - name: A\n    setup:\n      - Lie down\n"
                  "      - arms out.\n    hold: 5s\n",
}
_LINE = re.compile(r"^(?P<path>[^:]+):(?P<line>\d+):(?P<col>\d+): warning: .+ \(.+\)$")


@pytest.mark.parametrize("name", sorted(WARNED))
def test_meant_otherwise_is_a_located_warning(name: str, tmp_path: Path) -> None:
    from voicecoach.routine.lint import lint

    text, expected = WARNED[name]
    path = tmp_path / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    lines = [w.line() for w in lint(path, load_routine(path), shown=path.name)]
    assert len(lines) == len(expected), lines
    for line, (lineno, col, words) in zip(lines, expected, strict=True):
        m = _LINE.match(line)
        assert m and m["path"] == path.name, line
        assert (int(m["line"]), int(m["col"])) == (lineno, col) and words in line, line


def test_validate_prints_warnings_and_fails_on_them_only_when_strict(  # type: ignore[no-untyped-def]
    tmp_path: Path, run_cli
) -> None:
    names = sorted(WARNED)
    for name in names:
        (tmp_path / f"{name}.yaml").write_text(WARNED[name][0], encoding="utf-8")
    files = [f"{name}.yaml" for name in names]
    done = run_cli("validate", *files)
    assert done.returncode == 0 and done.stdout == "".join(f"{f}: ok\n" for f in files)
    lines = done.stderr.splitlines()
    assert len(lines) == sum(len(WARNED[n][1]) for n in names)
    assert all(_LINE.match(line) for line in lines), lines
    strict = run_cli("validate", "--strict", *files)
    assert strict.returncode == 2 and strict.stdout == "" and strict.stderr == done.stderr


@pytest.mark.parametrize("name", sorted(CLEAN))
def test_meant_as_written_gives_no_warning(name: str, tmp_path: Path) -> None:
    from voicecoach.routine.lint import lint

    path = tmp_path / f"{name}.yaml"
    path.write_text(CLEAN[name], encoding="utf-8")
    assert lint(path, load_routine(path)) == []


def test_bundled_and_example_routines_give_no_warning(run_cli) -> None:  # type: ignore[no-untyped-def]
    files = [*map(str, bundled().values()), *map(str, (ROOT / "tests/data/good").glob("*.yaml"))]
    done = run_cli("validate", "--strict", *files)
    assert done.returncode == 0 and done.stderr == "", done.stderr


@pytest.mark.parametrize("word", ["Yes", "No", "On", "Off", "yes", "TRUE", "n"])
def test_a_yes_or_no_where_text_belongs_says_to_quote_it(word: str, tmp_path: Path) -> None:
    from voicecoach.errors import RoutineErrors

    path = tmp_path / "b.yaml"
    path.write_text(f"title: T\nexercises:\n  - name: {word}\n    hold: 5s\n", encoding="utf-8")
    if word == "n":  # YAML 1.1 as PyYAML reads it: `n` stays text
        assert load_routine(path).exercises[0].name == "n"
        return
    with pytest.raises(RoutineErrors) as caught:
        load_routine(path)
    (error,) = caught.value.errors
    assert (error.lineno, error.col) == (3, 11)
    assert "put the text in quotes" in error.line()


@pytest.mark.parametrize("command", [["show", "--estimate"],
                                     ["play", "--audio", "none", "--only", "9"]])
def test_other_commands_print_the_warnings_too(command: list[str], tmp_path: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    text, [(lineno, col, words)] = WARNED["split-setup"]
    (tmp_path / "w.yaml").write_text(text, encoding="utf-8")
    done = run_cli(command[0], "w.yaml", *command[1:])
    first = done.stderr.splitlines()[0]
    assert first.startswith(f"w.yaml:{lineno}:{col}: warning: ") and words in first, done.stderr
    # The warning never changes what the command does: show succeeds; play then names its
    # own mistake (no exercise 9) with exit 2 as it would without the warning.
    assert done.returncode == (0 if command[0] == "show" else 2)
