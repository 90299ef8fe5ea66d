"""Made sessions: real speech times them, real SQLite history steers them, the real loader reads
them."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
import os
import random
import sqlite3
from pathlib import Path

import pytest

from helpers import decoded
from voicecoach.audio.pcm import SAMPLE_RATE
from voicecoach.coach import Purpose, Settings, today
from voicecoach.plan import compose
from voicecoach.plan.compose import Refusal, Request
from voicecoach.plan.timeline import build_plan
from voicecoach.routine.library import bundled
from voicecoach.routine.loader import load_routine
from voicecoach.routine.model import Area, Role
from voicecoach.routine.names import slug
from voicecoach.routine.wording import wording
from voicecoach.safety.history import History, SessionRecord
from voicecoach.safety.rules import QUESTIONS, Screening
from voicecoach.speech import VoiceSettings, get_engine
from voicecoach.storage.cache import ClipCache

GEAR = ["mat", "foam roller", "chair", "bed", "tennis ball", "wall", "towel"]
AREAS = [a.value for a in Area]
NOON = dt.time(12)
#: "Stretch before and after" (the articles): what may open for a crack, and what must follow
#: the last one. Stated here, not taken from the composer, so the test says the rule itself.
GENTLE_BEFORE = {Role.warm_up, Role.stretch, Role.mobilisation}
STRETCH_AFTER = {Role.stretch, Role.cool_down}
#: No exercise takes more than this share of a made session of several minutes.
MOST_OF_ONE = 0.45
SEVERAL = 6


@pytest.fixture(scope="session")  # kept while the long tests' shares and others take turns
def measure():  # type: ignore[no-untyped-def]
    # The run's private cache (conftest) is shared by every test, so each cue is spoken once.
    return today.speech_measure(get_engine(None), VoiceSettings(), ClipCache())


@pytest.fixture(scope="session")  # kept while the long tests' shares and others take turns
def library():  # type: ignore[no-untyped-def]
    return {e.key: e for e in today.library()}


def _at(day: dt.date, time: dt.time = NOON) -> float:
    return dt.datetime.combine(day, time).timestamp()


def _screening(rules_out: bool) -> Screening:
    return Screening({q.key: rules_out and i == 0 for i, q in enumerate(QUESTIONS)}, "x")


def _record(history: History, day: dt.date, names: list[str], routine: str = "today",
            time: dt.time = NOON) -> None:
    when = _at(day, time)
    history.record(SessionRecord(routine, routine, "live", when - 600, when, True, 600.0,
                                 tuple(names)))


def _seed() -> int:
    return int(os.environ.get("VOICECOACH_TEST_SEED") or random.randrange(2**32))


# -- the property ---------------------------------------------------------------------------

def _random_case(  # type: ignore[no-untyped-def]
    rng: random.Random, folder: Path, library
) -> tuple[Request, History, Screening, float]:
    day = dt.date(2025, 1, 1) + dt.timedelta(days=rng.randrange(700))
    minutes = rng.choice([rng.randint(2, 15), rng.randint(2, 90), rng.choice([1, 1.5, 91, 2, 90])])
    focus = tuple(rng.sample(AREAS, rng.choice([0, 0, 1, 1, 2])))
    equipment = tuple(rng.sample(GEAR, rng.randint(0, 4)))
    if rng.random() < 0.5:
        equipment += ("mat",)
    request = Request(minutes, day, focus, equipment or ("none",), rng.random() < 0.2,
                      rng.random() < 0.3)
    history = History(folder)
    names = [e.exercise.name for e in library.values()]
    for _ in range(rng.randint(0, 6)):
        back = dt.timedelta(days=rng.randint(0, 3))
        when = dt.time(rng.randint(0, 23), rng.randint(0, 59))
        routine = rng.choice([*bundled(), "today"])
        _record(history, day - back, rng.sample(names, rng.randint(1, 5)), routine, when)
    for name in rng.sample(names, rng.randint(0, 4)):
        history.rate(slug(name), rng.choice([1, -1]))
    # Mostly planned on the day itself; sometimes a day or two ahead (then from its midnight).
    ahead = dt.timedelta(days=rng.choice([0, 0, 0, 1, 2]))
    now = _at(day - ahead, dt.time(rng.randint(0, 23), rng.randint(0, 59)))
    return request, history, _screening(rng.random() < 0.4), now


def _check_one(rng: random.Random, folder: Path, library, measure) -> str:  # type: ignore[no-untyped-def]
    request, history, screening, now = _random_case(rng, folder, library)
    try:
        made = today.make(request, measure, history=history, screening=screening, now=now)
    except Refusal as exc:
        assert exc.line().strip() and "\n" not in exc.line(), exc.line()
        assert not compose.MIN_MINUTES <= request.minutes <= compose.MAX_MINUTES or any(
            word in exc.message for word in ("no exercise is left", "at most", "fits", "mostly",
                                             "no session can be made")
        ), exc.line()
        return "refused"
    path = folder / "made.yaml"
    today.write(made, path)
    assert path.read_text(encoding="utf-8").startswith(compose.MODELINE)
    routine = load_routine(path)  # the real loader, from the written file
    target = request.minutes * 60
    # The promise holds on what is played as much as on what is exported.
    for purpose in Purpose:
        plan = build_plan(routine, Settings().plan_options(purpose), measure)
        assert abs(plan.duration - target) <= 0.10 * target, (purpose, plan.duration, target)
    _assert_none_dominates(plan, target)
    keys = [slug(ex.name) for ex in routine.exercises]
    assert len(keys) == len(set(keys)), keys
    ratings = history.ratings()
    moment = today.planned_moment(request.day, now)
    done = history.done_since(moment - 4 * 86400)
    _assert_limit_reasons(made.left_out, library, done, moment, moment == now, request.day)
    focus = set(request.focus) - {"whole back"}
    for ex in routine.exercises:
        entry = library[slug(ex.name)]
        assert ratings.get(entry.key, 0) >= 0, ex.name
        assert set(ex.equipment or ()) <= set(request.equipment), (ex.name, request.equipment)
        assert not focus or {a.value for a in ex.areas or ()} & focus, (ex.name, focus)
        if ex.manipulation:
            assert not request.gentle and (request.i_understand
                                           or not screening.rules_out_manipulation)
        _assert_limits_kept(entry.exercise, done, moment, request.day)
        _assert_scaled_sensibly(entry, ex)
    _assert_stretched_around_each_crack([ex.role for ex in routine.exercises])
    return "made"


def _assert_stretched_around_each_crack(roles: list[Role]) -> None:
    """"Stretch before and after": gentle moves before the first crack, and each crack followed
    at once by a stretch or a cool-down (so no two cracks in a row)."""
    cracks = [i for i, role in enumerate(roles) if role is Role.self_manipulation]
    if cracks:
        assert GENTLE_BEFORE & set(roles[:cracks[0]]), roles
    for i in cracks:
        assert i + 1 < len(roles) and roles[i + 1] in STRETCH_AFTER, roles


@pytest.mark.parametrize("request_", [
    Request(5, dt.date(2026, 12, 1)),  # a crack followed only by a warm-up
    Request(25, dt.date(2026, 12, 1), focus=("hips",)),  # 89.95% on the play timeline
    Request(10, dt.date(2026, 12, 1), equipment=("chair", "mat")),  # one exercise 6:29 of 9:58
], ids=["crack-then-warm-up", "hips-25", "mat-and-chair"])
def test_the_audits_requests(request_: Request, tmp_path: Path, measure) -> None:  # type: ignore[no-untyped-def]
    """The audit's examples on a fresh history: refused with a reason, or made keeping the
    rules the property test states."""
    try:
        made = today.make(request_, measure, history=History(tmp_path), screening=Screening(),
                          now=_at(request_.day))
    except Refusal as exc:
        assert "at most" in exc.message or "mostly" in exc.message, exc.line()
        return
    target = request_.minutes * 60
    for purpose in Purpose:
        plan = build_plan(made.routine, Settings().plan_options(purpose), measure)
        assert abs(plan.duration - target) <= 0.10 * target, (purpose, plan.duration)
    _assert_none_dominates(plan, target)
    _assert_stretched_around_each_crack([ex.role for ex in made.routine.exercises])


def _assert_none_dominates(plan, target: float) -> None:  # type: ignore[no-untyped-def]
    if target < SEVERAL * 60 or len(plan.exercises) < 2:
        return
    for title, start, end in plan.chapters()[1:]:
        assert plan.seconds(end - start) <= MOST_OF_ONE * plan.duration, (
            title, plan.seconds(end - start), plan.duration)


def _assert_limit_reasons(left_out, library, done, moment: float, present: bool,  # type: ignore[no-untyped-def]
                          day: dt.date) -> None:
    """A limited move left out is told by the limit that ends last, said for the planned day:
    "N ago" only when planning at the clock's now, else the date and hour it was done."""
    for name, reason in left_out:
        limits = library[slug(name)].exercise.limits
        if limits is None or not ("between sessions" in reason or "most advised" in reason):
            continue
        times = sorted(t for n, t in done if slug(n) == slug(name))
        recent = [t for t in times if t >= moment - (limits.wait or 0)] if limits.wait else []
        wait_end = recent[-1] + limits.wait if recent else -math.inf
        start, end = _at(day, dt.time()), _at(day + dt.timedelta(days=1), dt.time())
        count = sum(start <= t < end for t in times)
        counted = limits.max_per_day and count >= limits.max_per_day
        if counted and end >= wait_end:
            said = {1: "once", 2: "twice"}.get(count, f"{count} times")
            expected = f"{said} today" if present else f"{said} on {day:%A} {day.day} {day:%B}"
            assert "most advised" in reason and expected in reason, (name, reason, expected)
        else:
            assert recent and "between sessions" in reason, (name, reason, times, moment)
            last = dt.datetime.fromtimestamp(recent[-1])
            if present and recent[-1] <= moment:
                ago = wording("en").duration(max(60, round((moment - recent[-1]) / 60) * 60))
                assert f"you did it {ago} ago" in reason, (name, reason, ago)
            else:
                said = f"at {last:%H:%M} on {last:%A} {last.day}"
                assert "ago" not in reason and said in reason, (name, reason)


def _assert_limits_kept(source, done, now: float, day: dt.date) -> None:  # type: ignore[no-untyped-def]
    if source.limits is None:
        return
    times = [t for name, t in done if slug(name) == slug(source.name) and t <= now]
    if source.limits.wait:
        assert not any(now - t < source.limits.wait for t in times), source.name
    if source.limits.max_per_day:
        start = _at(day, dt.time())
        assert sum(start <= t < start + 86400 for t in times) < source.limits.max_per_day


def _assert_scaled_sensibly(entry, made) -> None:  # type: ignore[no-untyped-def]
    source = entry.exercise
    if source.manipulation or source.limits:
        assert (made.hold, made.reps, made.sets) == (source.hold, source.reps, source.sets)
    # Sets come down to half the article's count at the fewest, with the article's rest kept.
    assert made.sets >= math.ceil(source.sets / 2), (source.name, made.sets)
    if made.sets > 1:
        rest = source.rest_between_sets or entry.routine.defaults.rest_between_sets
        assert made.rest_between_sets == rest, (source.name, made.rest_between_sets, rest)
    if source.hold and made.hold:
        assert min(source.hold, 5.0) <= made.hold <= 2 * source.hold, (source.name, made.hold)
    if source.reps and made.reps:
        assert source.reps / 2 <= made.reps <= 2 * source.reps, (source.name, made.reps)
        assert made.reps <= (source.max_reps or made.reps), source.name
    assert made.sets <= max(source.sets, compose.MAX_SETS)


def _property(n: int, tmp_path: Path, library, measure, share: int | str) -> None:  # type: ignore[no-untyped-def]
    """`n` random requests from the run's seed; each `share` draws its own `n`."""
    seed = _seed()
    rng = random.Random(f"{seed}/{share}")
    outcomes = []
    for i in range(n):
        folder = tmp_path / f"case{i}"
        try:
            outcomes.append(_check_one(rng, folder, library, measure))
        except AssertionError as exc:
            raise AssertionError(
                f"request {i} of share {share} failed with VOICECOACH_TEST_SEED={seed}: {exc}"
            ) from None
    if n >= 50:
        # The requests must mostly be ones a session can be made for, or the sweep proves
        # little. About 46% are (shares of 50 over 40 seeds: 17-35 made), so a third would fail
        # one share in ten by chance; a tenth fails by chance less than once in 10^6 shares even
        # at a 40% rate, and still catches a generator that only asks the impossible.
        assert outcomes.count("made") >= n // 10, (outcomes, seed)


def test_random_requests_make_valid_sessions_or_say_why(tmp_path: Path, library, measure) -> None:  # type: ignore[no-untyped-def]
    """The fast lane's eight requests (drawn apart from the 200 below)."""
    _property(8, tmp_path, library, measure, "fast")


@pytest.mark.slow
@pytest.mark.long
@pytest.mark.parametrize("share", range(4))  # 4 x 50, which the suite's workers run side by side
def test_two_hundred_random_requests(tmp_path: Path, library, measure, share: int) -> None:  # type: ignore[no-untyped-def]
    _property(50, tmp_path, library, measure, share)


# -- variety, determinism, taste ------------------------------------------------------------

def _week(tmp_path: Path, measure, screening: Screening, days: int = 7):  # type: ignore[no-untyped-def]
    history = History(tmp_path / "week")
    start = dt.date(2025, 3, 3)
    sessions, pools = [], set()
    for i in range(days):
        day = start + dt.timedelta(days=i)
        made = today.make(Request(10, day), measure, history=history, screening=screening,
                          now=_at(day, dt.time(7)))
        names = [ex.name for ex in made.routine.exercises]
        _record(history, day, names)
        sessions.append(names)
        pools.add(made.pool)
    return sessions, pools.pop()


@pytest.mark.parametrize("rules_out", [False, pytest.param(True, marks=pytest.mark.slow)],
                         ids=["unscreened", "screened-out"])
def test_a_week_of_ten_minute_sessions_varies(tmp_path: Path, measure, rules_out: bool) -> None:  # type: ignore[no-untyped-def]
    sessions, pool = _week(tmp_path, measure, _screening(rules_out))
    distinct = {n for names in sessions for n in names}
    assert len(distinct) >= min(15, pool), (len(distinct), pool, sessions)
    for yesterday, day in itertools.pairwise(sessions):
        assert not set(yesterday) & set(day), (yesterday, day)


def test_same_inputs_same_session_another_day_another(tmp_path: Path, measure) -> None:  # type: ignore[no-untyped-def]
    history = History(tmp_path)
    day = dt.date(2025, 5, 5)
    one, two = (today.make(Request(12, day), measure, history=history, screening=Screening(),
                           now=_at(day)) for _ in range(2))
    assert one.text == two.text
    other = today.make(Request(12, day + dt.timedelta(days=1)), measure, history=history,
                       screening=Screening(), now=_at(day))
    assert [e.name for e in other.routine.exercises] != [e.name for e in one.routine.exercises]


@pytest.mark.slow  # 32 sessions made (the random requests above rate exercises in the fast lane)
def test_down_is_never_chosen_and_up_is_favoured(tmp_path: Path, measure, library) -> None:  # type: ignore[no-untyped-def]
    days = [dt.date(2025, 7, 1) + dt.timedelta(days=i) for i in range(8)]

    def chosen(history: History) -> list[list[str]]:
        return [[e.name for e in today.make(Request(6, d), measure, history=history,
                                           screening=Screening(), now=_at(d)).routine.exercises]
                for d in days]

    def count(sessions: list[list[str]], name: str) -> int:
        return sum(name in names for names in sessions)

    plain = chosen(History(tmp_path / "plain"))
    # The move rated down is one the plain sessions choose most, so its absence is the rating's.
    down = max(sorted({n for names in plain for n in names}), key=lambda n: count(plain, n))
    assert count(plain, "Neck tilts") < len(days), plain
    rated = History(tmp_path / "rated")
    today.rate("neck tilts", "up", rated)
    today.rate(down.lower(), "down", rated)
    favoured = chosen(rated)
    assert count(favoured, down) == 0 < count(plain, down)
    assert count(favoured, "Neck tilts") > count(plain, "Neck tilts")
    today.rate(slug(down), "clear", rated)
    assert slug(down) not in rated.ratings()


def test_limits_are_judged_on_the_planned_day_across_routines(tmp_path: Path, measure) -> None:  # type: ignore[no-untyped-def]
    history = History(tmp_path)
    day = dt.date(2025, 8, 8)
    # Twice today in the article's own routine: its daily count (2) is reached.
    for hour in (7, 9):
        _record(history, day, ["Standing spine rotation"], "crack-your-back-alone", dt.time(hour))
    made = today.make(Request(10, day, equipment=("none",)), measure, history=history,
                      screening=Screening(), now=_at(day, dt.time(18)))
    assert "Standing spine rotation" not in [e.name for e in made.routine.exercises]
    assert any(name == "Standing spine rotation" and "twice" in why for name, why in made.left_out)


@pytest.mark.parametrize(("done_at", "now", "says"), [
    # Twice today, the last 8 minutes ago: the hour's wait ends first, the daily count at
    # midnight, so the count is the reason.
    ([dt.time(7), dt.time(9, 52)], dt.time(10), "you have done it twice today, the most advised"),
    # Once, 8 minutes ago: only the wait.
    ([dt.time(9, 52)], dt.time(10), "you did it 8 minutes ago, and it needs 1 hour between"),
    # Planned a day ahead (from its midnight) with the move in history at 09:00 that day.
    ([dt.time(9)], None, "you did it at 09:00 on Friday 8 August 2025"[:-5]),
    ([dt.time(9), dt.time(11)], None, "you did it twice on Friday 8 August, the most advised"),
], ids=["count-binds", "wait-binds", "ahead-wait", "ahead-count"])
def test_a_left_out_move_is_told_by_the_limit_that_ends_last(  # type: ignore[no-untyped-def]
    tmp_path: Path, measure, done_at: list[dt.time], now: dt.time | None, says: str
) -> None:
    history = History(tmp_path)
    day = dt.date(2025, 8, 8)
    for at in done_at:
        _record(history, day, ["Standing spine rotation"], "crack-your-back-alone", at)
    clock = _at(day, now) if now else _at(day - dt.timedelta(days=1), dt.time(20))
    made = today.make(Request(10, day, equipment=("none",)), measure, history=history,
                      screening=Screening(), now=clock)
    reason = dict(made.left_out)["Standing spine rotation"]
    assert reason.startswith(says), reason
    assert ("ago" in reason) == (now is not None and len(done_at) == 1), reason


# -- the commands ----------------------------------------------------------------------------

def _env(tmp_path: Path) -> dict[str, str]:
    return {"VOICECOACH_DATA_DIR": str(tmp_path / "data")}


@pytest.mark.parametrize(("args", "says"), [
    (["--minutes", "1"], "--minutes 1 is out of range (ask for 2 to 90 minutes)"),
    (["--focus", "lowr back"], "unknown area 'lowr back' (did you mean lower back"),
    (["--equipment", "foam-rollr"], "unknown equipment 'foam-rollr' (did you mean foam roller"),
    (["--equipment", "none", "--focus", "hips"], "no exercise is left: the focus ruled out"),
    (["--equipment", "chair", "--gentle", "--focus", "neck", "--minutes", "30"],
     "a session lasts at most"),
    # Under the least one may ask for: no "ask for fewer minutes", and one minute, not "minutes".
    (["--minutes", "2", "--focus", "mid back", "--equipment", "foam roller", "--date",
      "2026-12-01"], "a session lasts at most 1 minute, not 2 (add --equipment or widen"),
    (["--date", "2025-02-30"], "--date '2025-02-30' is not a date"),
    (["-o", "s.txt"], "s.txt: a made session is a routine file ending in .yaml (e.g. -o s.yaml)"),
    (["-o", "/dev/null"], "a made session is a routine file ending in .yaml"),
    (["-o", "-"], "`make` writes a routine file, not to standard output (-o -) (give -o FILE.yaml"),
    (["--equipment", "none", "--equipment", "mat"], "--equipment none contradicts --equipment mat"),
    (["--equipment", "mat", "--equipment", "None"], "--equipment none contradicts --equipment mat"),
])
def test_refusals_are_one_line_and_exit_2(  # type: ignore[no-untyped-def]
    run_cli, tmp_path: Path, args: list[str], says: str
) -> None:
    done = run_cli("make", *args, env=_env(tmp_path))
    assert done.returncode == 2, done.stderr
    assert says in done.stderr and done.stderr.count("\n") == 1, done.stderr
    # Every refusal of make takes the one error path: `error: `, as any user mistake.
    assert done.stderr.startswith("error: "), done.stderr
    assert not list(tmp_path.glob("session-*.yaml"))


def test_the_library_follows_edits_to_the_routine_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A long-lived process (serve) keeps the loaded library, yet sees each routine file
    edited, removed or added, even an edit of the same size that keeps the file's times."""
    import shutil

    from voicecoach.routine import library as bundled_library

    folder = tmp_path / "routines"
    shutil.copytree(bundled_library.bundled_dir(), folder)
    monkeypatch.setattr(bundled_library, "bundled_dir", lambda: folder)
    names = {e.exercise.name for e in today.library()}
    assert "Chair backbend" in names
    path = folder / "crack-your-back-alone.yaml"
    times = path.stat()
    path.write_text(path.read_text(encoding="utf-8").replace("Chair backbend", "Chair backbent"),
                    encoding="utf-8")
    os.utime(path, ns=(times.st_atime_ns, times.st_mtime_ns))
    edited = {e.exercise.name for e in today.library()}
    assert "Chair backbent" in edited and "Chair backbend" not in edited
    aside = path.rename(tmp_path / "aside.yaml")
    assert "Chair backbent" not in {e.exercise.name for e in today.library()}
    aside.rename(folder / "added.yaml")
    assert "Chair backbent" in {e.exercise.name for e in today.library()}
    # Each call hands out its own list: a caller changing it changes no other's.
    today.library().clear()
    assert today.library()


def test_make_writes_a_routine_and_the_next_day_reacts_to_history(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env = _env(tmp_path)
    first = run_cli("make", "--minutes", "8", "--date", "2025-09-01", "-o", "a.yaml", env=env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("Wrote a.yaml: Session for Monday 1 September")
    made = load_routine(tmp_path / "a.yaml")
    assert run_cli("validate", "a.yaml", env=env).returncode == 0
    again = run_cli("make", "--minutes", "8", "--date", "2025-09-01", "-o", "a.yaml", env=env)
    assert again.returncode == 0 and again.stdout == first.stdout
    # Done (as `play` records it), then tomorrow's session avoids it.
    _record(History(tmp_path / "data"), dt.date(2025, 9, 1), [e.name for e in made.exercises])
    second = run_cli("make", "--minutes", "8", "--date", "2025-09-02", "-o", "b.yaml", env=env)
    assert second.returncode == 0, second.stderr
    tomorrow = load_routine(tmp_path / "b.yaml")
    assert not {e.name for e in made.exercises} & {e.name for e in tomorrow.exercises}


def test_make_never_overwrites_a_file_it_did_not_write(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    mine = tmp_path / "mine.yaml"
    mine.write_text("title: mine\n", encoding="utf-8")
    done = run_cli("make", "-o", "mine.yaml", env=_env(tmp_path))
    assert done.returncode == 2 and "was not made by `voicecoach make`" in done.stderr
    assert mine.read_text(encoding="utf-8") == "title: mine\n"


def test_export_today_from_a_fresh_data_dir(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env = _env(tmp_path)
    shown = run_cli("show", "today", "--json", env=env)  # no `make` yet: 10 minutes, mat
    assert shown.returncode == 0, shown.stderr
    assert abs(json.loads(shown.stdout)["duration"] - 600) <= 60
    assert run_cli("make", "--minutes", "3", "-o", "m.yaml", env=env).returncode == 0
    done = run_cli("export", "today", "-o", "today.mp3", "--quiet", env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    seconds = len(decoded(tmp_path / "today.mp3")) / SAMPLE_RATE
    assert abs(seconds - 180) <= 18, seconds  # the stored settings of the last make
    rows = sqlite3.connect(tmp_path / "data" / "history.sqlite3").execute(
        "SELECT routine, kind FROM sessions").fetchall()
    assert rows == [("today", "export")]


@pytest.mark.slow
@pytest.mark.long
def test_play_today_lands_in_history_and_tomorrow_reacts(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The first `play today` from a fresh data dir, on a terminal (one session played in real
    time for the tests of both): it asks the screening questions before it makes the session,
    which keeps its minutes; the session lands in history and tomorrow's make avoids it."""
    env = _env(tmp_path)
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    day = dt.date.today()  # once: the session may end after midnight
    (data / today.SETTINGS_FILE).write_text(json.dumps(
        Request(2.0, day).as_json()), encoding="utf-8")
    # At a quarter of the pace (holds and rests shortened, speech as made): the whole session
    # is still played in real time, in a quarter of the suite's time.
    code, _, screen = _in_terminal(["play", "today", "--audio", "none", "--pace", "0.25"],
                                   data, tmp_path, timeout=400)
    assert code == 0 and "Done:" in screen, screen
    assert "because of your safety answers" not in screen and "is left out" not in screen, screen
    made = load_routine(data / today.SESSION_FILE)
    assert not any(ex.manipulation for ex in made.exercises), [e.name for e in made.exercises]
    done = History(data).done_since(0)
    assert done and {when for _, when in done}
    names = {name for name, _ in done}
    tomorrow = (day + dt.timedelta(days=1)).isoformat()
    nxt = run_cli("make", "--minutes", "2", "--date", tomorrow, "-o", "next.yaml", env=env)
    assert nxt.returncode == 0, nxt.stderr
    assert not names & {e.name for e in load_routine(tmp_path / "next.yaml").exercises}


_EDITS = {
    "a word changed": lambda t: t.replace("title:", "title: My", 1),
    "a line added at the end": lambda t: t + "# my note\n",
    "the digest line removed": lambda t: t.rsplit("# voicecoach make sha256:", 1)[0],
    "the digest line rewritten": lambda t: t[:-10] + "012345678\n",
    "line endings changed": lambda t: t.replace("\n", "\r\n"),
    "not a made file": lambda t: "title: mine\nexercises: []\n",
}


def test_make_replaces_only_its_own_unchanged_file(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Every way the file at -o can differ from what `make` wrote: refused with one line (exit
    2) and left as it is; --force replaces it; an unchanged made file is simply replaced."""
    env = _env(tmp_path)
    args = ("make", "--minutes", "3", "--date", "2025-09-01", "-o", "s.yaml")
    first = run_cli(*args, env=env)
    assert first.returncode == 0, first.stderr
    made = (tmp_path / "s.yaml").read_text(encoding="utf-8")
    again = run_cli(*args, env=env)
    assert again.returncode == 0, again.stderr
    for what, edit in _EDITS.items():
        changed = edit(made)
        (tmp_path / "s.yaml").write_bytes(changed.encode("utf-8"))
        refused = run_cli(*args, env=env)
        assert refused.returncode == 2, (what, refused.stderr)
        assert len(refused.stderr.splitlines()) == 1 and "--force" in refused.stderr \
            and refused.stderr.startswith("error: "), \
            (what, refused.stderr)
        assert (tmp_path / "s.yaml").read_bytes() == changed.encode("utf-8"), what
    forced = run_cli(*args, "--force", env=env)
    assert forced.returncode == 0, forced.stderr
    assert (tmp_path / "s.yaml").read_text(encoding="utf-8").startswith(made.splitlines()[0])


# -- today's session is made after the screening --------------------------------------------

def _in_terminal(args: list[str], data: Path, cwd: Path, timeout: float) -> tuple[int, str, str]:
    """`voicecoach ARGS` with stdin and stderr on a terminal (so the first-session questions are
    asked), answering yes to the first question only; returns (code, stdout, screen)."""
    import pty
    import select
    import subprocess
    import sys
    import time

    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "voicecoach", *args], stdin=slave,
                            stdout=subprocess.PIPE, stderr=slave, cwd=cwd, start_new_session=True,
                            env={**os.environ, "TERM": "dumb", "VOICECOACH_DATA_DIR": str(data)})
    os.close(slave)
    screen, answered = bytearray(), 0
    end = time.monotonic() + timeout
    try:
        while proc.poll() is None and time.monotonic() < end:
            if select.select([master], [], [], 0.05)[0]:
                try:
                    screen.extend(os.read(master, 65536))
                except OSError:
                    break
            # One answer per question, each once its prompt is on the screen.
            while answered < len(QUESTIONS) and screen.count(b"[y/N]") > answered:
                os.write(master, b"y\n" if answered == 0 else b"n\n")
                answered += 1
        # What it wrote between the last read and its exit is still in the terminal's buffer.
        while proc.poll() is not None and select.select([master], [], [], 0.5)[0]:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the other side closed and everything was read
                break
            if not chunk:
                break
            screen.extend(chunk)
        out = proc.communicate(timeout=max(1.0, end - time.monotonic()))[0]
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    assert answered == len(QUESTIONS), screen.decode("utf-8", "replace")
    return proc.returncode, out.decode("utf-8", "replace"), screen.decode("utf-8", "replace")


@pytest.mark.parametrize("command", [
    ["show", "today", "--json"],
    ["show", "today", "--for", "play", "--json"],
    pytest.param(["export", "today", "-o", "today.mp3", "--quiet"], marks=pytest.mark.slow),
], ids=["show", "show-for-play", "export"])  # play: test_play_today_lands_in_history_...
def test_the_first_today_asks_before_it_makes_the_session(
    tmp_path: Path, command: list[str]
) -> None:
    """A fresh data dir, on a terminal: the screening answers (which rule out cracking) shape
    today's session, which keeps its minutes; nothing is made first and cut afterwards."""
    data = tmp_path / "data"
    minutes = 10.0
    if command[0] in ("export", "play"):  # shorter, from a stored make (which asks nothing)
        minutes = 3.0 if command[0] == "export" else 2.0
        data.mkdir()
        (data / today.SETTINGS_FILE).write_text(json.dumps(
            Request(minutes, dt.date.today()).as_json()), encoding="utf-8")
    code, out, screen = _in_terminal(command, data, tmp_path, timeout=400)
    assert code == 0, screen
    assert "because of your safety answers" not in screen and "is left out" not in screen, screen
    made = load_routine(data / today.SESSION_FILE)
    assert not any(ex.manipulation for ex in made.exercises), [e.name for e in made.exercises]
    target = minutes * 60
    if command[0] == "show":
        shown = json.loads(out)
        assert shown["left_out"] == [] and abs(shown["duration"] - target) <= 0.1 * target, shown
    elif command[0] == "export":
        seconds = len(decoded(tmp_path / "today.mp3")) / SAMPLE_RATE
        assert abs(seconds - target) <= 0.1 * target, seconds
    else:
        assert "Done:" in screen, screen
