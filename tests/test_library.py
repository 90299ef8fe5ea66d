"""The bundled routine library: each routine holds what its article describes, in its own words."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from helpers import run_cli
from voicecoach.plan.timeline import PlanOptions, build_plan
from voicecoach.routine import library
from voicecoach.routine.loader import load_routine
from voicecoach.routine.model import (
    Breathing,
    Caution,
    CueSwitches,
    Defaults,
    Exercise,
    FollowUp,
    Limits,
    Phase,
    Routine,
    Step,
)
from voicecoach.routine.schema import MODELINE

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "routine-format.md"
EXAMPLE = ROOT / "tests" / "data" / "good" / "complete-example.yaml"
#: The source articles; not part of the repository, so the copy check skips without them.
#: The articles: beside the checkout (as CI lays it out) unless VOICECOACH_SEEDS says otherwise.
SEEDS = Path(os.environ.get("VOICECOACH_SEEDS") or next(
    (p for p in (ROOT.parent / "shared" / "seeds", Path("/work/shared/seeds")) if p.is_dir()),
    ROOT.parent / "shared" / "seeds"))

# -- what each article describes ------------------------------------------------------------

Range = tuple[float, float]


@dataclass(frozen=True)
class Ex:
    """One exercise as its article describes it. `name` is a word or phrase the routine's
    exercise name must contain; numbers are the article's (a Range where it says "a few")."""

    name: str
    hold: float | Range | None = None
    reps: int | Range | None = None
    sets: int = 1
    rest: float | None = None  # between sets
    sides: int = 0
    phase: float | Range | None = None  # a timed stay inside each repetition
    breath: tuple[str, ...] = ()  # breath phases in each repetition ("in", "out")
    breathing: bool = False  # a breathing pace during the hold
    says: tuple[str, ...] = ()  # words the exercise's own texts must contain
    caution: tuple[str, ...] = ()  # words its caution or limit note must contain
    manipulation: bool | None = None
    max_per_day: int | None = None
    wait: float | None = None  # limits.wait, seconds


@dataclass(frozen=True)
class Article:
    seed: str
    routine: str
    source: str
    exercises: tuple[Ex, ...]
    cautions: tuple[str, ...]  # words the routine's cautions must contain
    equipment: tuple[str, ...]


FEW_SECONDS: Range = (3, 10)
A_FEW: Range = (2, 8)

ARTICLES = {
    "000": Article(
        seed="000_",
        routine="crack-your-back-alone",
        source="How to crack your back alone",
        exercises=(
            Ex("full-body stretch", hold=30, manipulation=False),  # "stretch lying down"
            Ex("knees to chest", hold=20, says=("rock", "straighten")),
            Ex("cat", reps=5, phase=5, breath=("in", "out")),  # "about five times"
            Ex("bed", reps=4, phase=5, breath=("in", "out"), caution=("firm",),
               says=("sit up",)),  # "about four times"
            Ex("back extension", reps=3, breath=("in", "out"), caution=("three",),
               says=("relax",), manipulation=False),  # "maximum three times"
            Ex("rotation", reps=2, says=("left", "right", "push", "snap"), caution=("pain", "hour"),
               wait=3600, max_per_day=2, manipulation=True),  # "wait an hour ... last time"
            Ex("spinal twist", hold=10, sides=2, sets=4),  # "four repetitions", switch sides
            Ex("morning", manipulation=True, says=("head", "arch")),  # "until your back cracks"
            Ex("chair", manipulation=True, caution=("firm",), says=("heels", "head back")),
            Ex("kneeling", hold=20, sets=4, rest=60, breathing=True, says=("rock", "ankles")),
            # the "Mohammedan exercise": rock, stay 20 s breathing, rest a minute, 4 times
            Ex("foam roller", reps=10, sets=2, rest=20, wait=3600, max_per_day=2,
               caution=("hour", "two more sets"), manipulation=True),
            # 10 rolls, rest 20 s, 10 more; after a crack wait an hour; two more sets, no more
            Ex("cross-over", hold=20, sides=2, manipulation=False),  # "sometimes crack"
        ),
        cautions=("often", "cartilage", "tendons", "ligaments", "osteoporosis", "control",
                  "specialist", "mat"),
        equipment=("mat", "bed", "chair", "foam roller"),
    ),
    "002": Article(
        seed="002_",
        routine="crack-your-back-at-home",
        source="How To Crack Your Back At Home: A Step-by-Step Guide",
        exercises=(
            Ex("cat cow", reps=A_FEW, breath=("in", "out"), manipulation=False),  # "a few times"
            Ex("child", hold=(10, 60), breathing=True, manipulation=False),  # "a few deep breaths"
            Ex("head and shoulder", hold=FEW_SECONDS, manipulation=True,
               says=("knees", "behind your head", "lower")),
            Ex("stomach", hold=FEW_SECONDS, manipulation=True, says=("sides", "lower")),
            Ex("foam roller", caution=("size", "strength", "press"),
               says=("upper back", "lower back"), manipulation=False),
            Ex("side", sides=2, says=("spine",)),  # "each side of your spine separately"
        ),
        cautions=("chronic", "diagnosis", "treatment", "condition", "surgery", "pregnan", "force",
                  "pain", "stop", "unsure", "bed", "mat"),
        equipment=("mat", "foam roller"),
    ),
    "003": Article(
        seed="003_",
        routine="back-crack-worksheet",
        source="Back Crack Worksheet",
        exercises=(
            Ex("chair", breath=("in", "out"), manipulation=True,
               says=("towel", "behind your head", "lean back")),
            Ex("heimlich", breath=("in", "out"), manipulation=True,
               says=("clasp", "upward", "angle", "quick")),
            Ex("foam roller", breath=("in", "out"), manipulation=True, caution=("knees", "neck"),
               says=("across", "quick")),
            Ex("angle", breath=("in", "out"), manipulation=True, caution=("knees", "neck")),
            Ex("rotation", sides=2, breath=("in", "out"), manipulation=True,
               caution=("upper back", "flat"), says=("straight", "hook", "buttock", "quick")),
        ),
        cautions=("diagnosis", "doctor", "physical therapist", "feel", "best for you"),
        equipment=("chair", "towel", "foam roller"),
    ),
    "004": Article(
        seed="004_",
        routine="upper-back-release",
        source="How To Crack Upper Back At Home A Complete Guide",
        exercises=(
            Ex("shoulder blade", reps=(5, 15), manipulation=False),
            Ex("arm circles", says=("forward", "backward"), manipulation=False),
            Ex("neck tilt", sides=2, hold=(5, 30), manipulation=False),
            Ex("foam roller", says=("upper back", "back and forth", "tight"), manipulation=False),
            Ex("tennis ball", says=("wall", "up and down", "side to side", "circles"),
               manipulation=False),
            Ex("seated twist", sides=2, hold=FEW_SECONDS, manipulation=True,
               says=("cross-legged", "knee", "behind you")),
            Ex("overhead twist", sides=2, phase=FEW_SECONDS, breath=("out", "in"),
               manipulation=True, says=("shoulders", "clasped", "hips")),
            # "Stretch before and after cracking": done, not only said.
            Ex("closing", sides=2, hold=(5, 30), manipulation=False, says=("shoulders", "ear")),
        ),
        cautions=("force", "herniated", "pain", "discomfort", "chronic", "condition", "doctor",
                  "chiropractor", "often", "stretch before and after", "foam roller",
                  "tennis ball"),
        equipment=("mat", "foam roller", "tennis ball", "wall"),
    ),
}


def _note(ex: Exercise) -> str:
    return ex.limits.note or "" if ex.limits else ""


def _texts(ex: Exercise) -> list[str]:
    parts = [ex.caution or "", ex.summary or "", _note(ex)]
    parts += [s.say for s in ex.setup] + [s.short or "" for s in ex.setup]
    parts += [p.say for p in ex.each_rep] + [p.short or "" for p in ex.each_rep]
    parts += [f.say for f in ex.then] + [f.short or "" for f in ex.then]
    return [t for t in parts if t]


def _routine_texts(r: Routine) -> list[str]:
    out = [r.title, r.description or ""]
    out += [c.say for c in r.cautions] + [c.short or "" for c in r.cautions]
    for ex in r.exercises:
        out += [ex.name, *_texts(ex)]
    return [t for t in out if t]


def _matches(value: float | None, want: float | Range) -> bool:
    if value is None:
        return False
    if isinstance(want, tuple):
        return want[0] <= value <= want[1]
    return value == want


def _check(ex: Exercise, want: Ex) -> None:
    where = f"{ex.name!r} ({want.name})"
    assert want.name in ex.name.casefold(), where
    if want.hold is not None:
        assert _matches(ex.hold, want.hold), f"{where}: hold {ex.hold}"
    if want.reps is not None:
        assert _matches(ex.reps, want.reps), f"{where}: reps {ex.reps}"
    assert ex.sets == want.sets, f"{where}: sets"
    if want.rest is not None:
        assert ex.rest_between_sets == want.rest, f"{where}: rest between sets"
    assert len(ex.sides) == want.sides, f"{where}: sides {ex.sides}"
    if want.phase is not None:
        assert any(_matches(p.seconds, want.phase) for p in ex.each_rep if p.breath is None), where
    breaths = [p.breath.value for p in ex.each_rep if p.breath is not None]
    for b in want.breath:
        assert b in breaths, f"{where}: no breathe-{b} phase"
    if want.breath == ("out", "in"):  # breathe out into the move, in to come back
        assert breaths.index("out") < breaths.index("in"), where
    if want.breathing:
        assert ex.breathing is not None, f"{where}: no breathing pace"
    text = " ".join(_texts(ex)).casefold()
    for word in want.says:
        assert word in text, f"{where}: never says {word!r}"
    warning = f"{ex.caution or ''} {_note(ex)}"
    for word in want.caution:
        assert word in warning.casefold(), f"{where}: caution lacks {word!r}"
    if want.manipulation is not None:
        assert ex.manipulation is want.manipulation, f"{where}: manipulation"
    if want.max_per_day is not None or want.wait is not None:
        assert ex.limits is not None, f"{where}: no limits"
        assert ex.limits.max_per_day == want.max_per_day, where
        assert ex.limits.wait == want.wait, where
        assert ex.limits.note, f"{where}: the limit is never spoken"


@pytest.mark.parametrize("key", sorted(ARTICLES))
def test_routine_holds_every_exercise_of_its_article(key: str) -> None:
    article = ARTICLES[key]
    routine = library.load(article.routine)
    assert routine.source == article.source
    names = [ex.name for ex in routine.exercises]
    assert len(names) == len(article.exercises), names
    for ex, want in zip(routine.exercises, article.exercises, strict=True):
        _check(ex, want)
    cautions = " ".join(c.say for c in routine.cautions).casefold()
    for word in article.cautions:
        assert word in cautions, f"{article.routine}: no caution about {word!r}"
    assert set(article.equipment) <= set(routine.equipment)


def test_cracking_articles_flag_their_cracking_moves() -> None:
    for article in ARTICLES.values():
        routine = library.load(article.routine)
        assert routine.manipulation, article.routine


# -- the whole library ----------------------------------------------------------------------


def _bundled() -> dict[str, Path]:
    return library.bundled()


def test_library_has_the_article_routines_and_the_default() -> None:
    ids = set(_bundled())
    assert {a.routine for a in ARTICLES.values()} | {library.DEFAULT_ROUTINE} <= ids


@pytest.mark.parametrize("routine_id", sorted(library.bundled()))
def test_bundled_routine_validates_and_plans(routine_id: str) -> None:
    path = _bundled()[routine_id]
    routine = load_routine(path)
    for detail in ("full", "short"):
        plan = build_plan(routine, PlanOptions(detail=detail))
        assert plan.exercises == tuple(ex.name for ex in routine.exercises)
        assert plan.duration > 60
    names = [ex.name for ex in routine.exercises]
    assert all(re.fullmatch(r"[A-Za-z][A-Za-z' -]*[a-z]", n) for n in names), names
    assert routine.source and routine.equipment and routine.areas and routine.cautions


@pytest.mark.parametrize("routine_id", sorted(library.bundled()))
def test_bundled_file_starts_with_the_schema_modeline(routine_id: str) -> None:
    first = _bundled()[routine_id].read_text(encoding="utf-8").splitlines()[0]
    assert first == MODELINE == "# yaml-language-server: $schema=routine.schema.json"
    assert (_bundled()[routine_id].parent / "routine.schema.json").is_file()


BREATH_WORDS = {"in": r"\bbreath|\binhale", "out": r"\bout\b|\bexhale", "hold": r"\bhold|\bpause"}


@pytest.mark.parametrize("routine_id", sorted(library.bundled()))
def test_breath_phases_say_the_breath(routine_id: str) -> None:
    # `breath` only times a phase; the listener hears nothing but its own words.
    routine = load_routine(_bundled()[routine_id])
    for ex in routine.exercises:
        for phase in ex.each_rep:
            if phase.breath is not None:
                for text in filter(None, (phase.say, phase.short)):
                    assert re.search(BREATH_WORDS[phase.breath.value], text, re.I), text


@pytest.mark.parametrize("routine_id", sorted(library.bundled()))
def test_no_spoken_text_repeats_the_coach(routine_id: str) -> None:
    # The coach says "Hold for 20 seconds", "Keep going for 1 minute", counts, "Switch sides",
    # "Set 2 of 3" and "Rest for".
    coach = re.compile(r"hold for \d|keep going for \d|\bswitch sides\b|\bset \d+ of\b|"
                       r"\brest for \d|\b\d+ (seconds?|minutes?)\b", re.I)
    routine = load_routine(_bundled()[routine_id])
    for text in _routine_texts(routine):
        assert not coach.search(text), text


def test_list_json_describes_every_routine() -> None:
    done = run_cli("list", "--json")
    assert done.returncode == 0, done.stderr
    entries = json.loads(done.stdout)
    assert len(entries) >= 5
    by_id = {e["id"]: e for e in entries}
    assert set(by_id) >= {a.routine for a in ARTICLES.values()} | {library.DEFAULT_ROUTINE}
    for entry in entries:
        assert entry["title"] and isinstance(entry["title"], str)
        assert entry["exercises"] >= 1
        assert entry["duration"] > 60
        assert entry["equipment"] and all(isinstance(e, str) for e in entry["equipment"])
    assert by_id["crack-your-back-alone"]["exercises"] == len(ARTICLES["000"].exercises)
    assert by_id[library.DEFAULT_ROUTINE]["manipulation"] is False


def test_default_routine_is_five_gentle_minutes() -> None:
    routine = library.load(library.DEFAULT_ROUTINE)
    assert 4 * 60 <= build_plan(routine).duration <= 6 * 60
    assert not routine.manipulation
    assert not any(ex.manipulation for ex in routine.exercises)
    assert "crack" not in " ".join(_routine_texts(routine)).casefold().replace("no cracking", "")
    assert routine.equipment == ["mat"]


# -- in our own words -----------------------------------------------------------------------


def _words(text: str) -> list[str]:
    text = text.casefold().replace("\u2019", "'")
    return re.sub(r"[^\w\s]", "", text).split()


def _article_text(seed: str) -> str:
    found = sorted(SEEDS.glob(f"{seed}*.txt"))
    if not found:
        pytest.skip(f"source articles not found in {SEEDS} (set VOICECOACH_SEEDS)")
    return found[0].read_text(encoding="utf-8")


@pytest.mark.parametrize("key", sorted(ARTICLES))
def test_no_eight_words_copied_from_the_article(key: str) -> None:
    article = ARTICLES[key]
    source = " " + " ".join(_words(_article_text(article.seed))) + " "
    routine = library.load(article.routine)
    copied = []
    for text in _routine_texts(routine):  # everything but `source`, which cites the title
        words = _words(text)
        for i in range(len(words) - 7):
            window = " ".join(words[i : i + 8])
            if f" {window} " in source:
                copied.append(window)
    assert not copied, copied


def test_default_routine_copies_no_article() -> None:
    sources = " ".join(" ".join(_words(_article_text(a.seed))) for a in ARTICLES.values())
    sources = f" {sources} "
    for text in _routine_texts(library.load(library.DEFAULT_ROUTINE)):
        words = _words(text)
        for i in range(len(words) - 7):
            assert f" {' '.join(words[i : i + 8])} " not in sources, text


def test_copy_check_catches_a_copied_sentence() -> None:
    article = " " + " ".join(_words(_article_text("000_"))) + " "
    copied = _words("Repeat this up and down exercise 10 times and stop.")
    assert f" {' '.join(copied[:8])} " in article


# -- the format reference -------------------------------------------------------------------


def _doc_example() -> tuple[str, str]:
    match = re.search(r"<!-- complete-example: (\S+) -->\n```yaml\n(.*?)```", DOC.read_text(), re.S)
    assert match, "docs/routine-format.md has no complete-example block"
    return match.group(1), match.group(2)


def test_doc_example_is_the_test_file_and_validates() -> None:
    path, block = _doc_example()
    assert ROOT / path == EXAMPLE
    assert block == EXAMPLE.read_text(encoding="utf-8")
    routine = load_routine(EXAMPLE)
    assert build_plan(routine).duration > 0
    assert build_plan(routine, PlanOptions(detail="short")).duration > 0


def _keys(data: object, level: str, found: dict[str, set[str]]) -> None:
    children = {"defaults": "defaults", "cues": "cues", "exercises": "exercise", "setup": "step",
                "each_rep": "phase", "breathing": "breathing", "then": "follow-up",
                "limits": "limits", "cautions": "caution"}
    if isinstance(data, dict):
        found.setdefault(level, set()).update(data)
        for key, value in data.items():
            if key in children and not (level == "defaults" and key == "rest_between_sets"):
                _keys(value, children[key], found)
    elif isinstance(data, list):
        for item in data:
            _keys(item, level, found)


MODELS = {
    "routine": Routine, "defaults": Defaults, "cues": CueSwitches, "exercise": Exercise,
    "step": Step, "phase": Phase, "breathing": Breathing, "follow-up": FollowUp, "limits": Limits,
    "caution": Caution,
}


def test_doc_example_uses_every_key_and_the_doc_names_them_all() -> None:
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    found: dict[str, set[str]] = {}
    _keys(data, "routine", found)
    doc = DOC.read_text(encoding="utf-8")
    for level, model in MODELS.items():
        fields = set(model.model_fields) - {"id"}
        assert found.get(level, set()) == fields, level
        for name in fields:
            assert f"| `{name}` |" in doc, f"{level}.{name} is not in the reference"
    # The lists that take plain text or a mapping show both forms.
    for key in ("setup", "then"):
        steps = [s for ex in data["exercises"] for s in ex.get(key, [])]
        assert any(isinstance(s, str) for s in steps), key
        assert any(isinstance(s, dict) for s in steps), key
    assert any(isinstance(c, str) for c in data["cautions"])
    assert any(isinstance(c, dict) for c in data["cautions"])
    assert {p["breath"] for ex in data["exercises"] for p in ex.get("each_rep", [])} == {
        "in", "out", "hold"}
    assert "{side}" in EXAMPLE.read_text(encoding="utf-8")
