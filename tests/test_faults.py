"""Faults never cost the user a file: interruption, full disks, damaged caches, broken engines,
concurrent exports and hostile names. Each test runs the real CLI in a subprocess."""

from __future__ import annotations

import contextlib
import json
import os
import random
import resource
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from mutagen.id3 import ID3

from helpers import decoded, run_cli
from voicecoach import cancel
from voicecoach.storage.cache import ClipCache

#: Every test here injects a fault into real subprocesses (signals, kills, full disks, broken
#: engines): the slow lane's work. The fast lane keeps the cheap error-path tests elsewhere.
pytestmark = pytest.mark.slow

ROUTINE = """\
title: Fault test
exercises:
  - name: Knees to chest
    setup: ["Lie on your back.", "Hug both knees."]
    hold: 1m
  - name: Twist
    sides: [left, right]
    setup: ["Drop both knees to the {side}."]
    hold: 1m
"""
#: Every signal that stops a run: Ctrl-C, kill, and the terminal closing.
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
SEED = int(os.environ.get("VOICECOACH_TEST_SEED") or os.environ.get("VOICECOACH_FAULT_SEED")
           or time.time_ns() % 2**32)
PART = ".voicecoach-part"


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "voicecoach", *args]


def clip_files(cache: Path) -> list[Path]:
    """The clip cache's entries: the remembered export answers (voicecoach.coach.memo, renewed
    by every export) share its folder but are not speech."""
    return [p for p in cache.rglob("*") if p.is_file() and "up-to-date" not in p.parts]


def leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if PART in p.name]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A routine, a warm cache, and the expected plan length of its export."""
    folder = tmp_path_factory.mktemp("faults")
    (folder / "r.yaml").write_text(ROUTINE, encoding="utf-8")
    shown = subprocess.run(cli("show", "r.yaml", "--json"), cwd=folder, capture_output=True,
                           text=True, check=True)
    return {"folder": folder, "duration": json.loads(shown.stdout)["duration"]}


def is_complete(path: Path, duration: float) -> bool:
    return abs(len(decoded(path)) / 22050 - duration) < 0.05 and "TIT2" in ID3(path)


# -- interruptions: a sweep over every stage of a cold-cache export, both engines ---------------

#: The stages every export announces, in order; others (levelling, on the mixing path) are swept
#: too when a clean export announces them.
STAGES = ("starting", "speaking", "encoding", "tagging")
SWEEP_ROUTINE = """\
title: Sweep
exercises:
  - name: Knees in
    setup: ["Lie on your back.", "Hug both knees to your chest."]
    hold: 20s
  - name: Twist
    sides: [left, right]
    setup: ["Drop both knees to the {side}."]
    hold: 15s
"""
NOISE = ("Traceback", "Exception ignored", "internal error")


@dataclass(frozen=True)
class Moment:
    engine: str
    signum: int
    stage: str
    offset: float  # seconds after the stage began
    ignored: bool  # started with SIGINT ignored, as a shell starts background jobs
    old: bool  # an older file at the destination


@dataclass
class Clean:
    plan: dict
    duration: float
    stage_lengths: dict  # every stage a clean export announced, in order


def _engine_args(engine: str) -> list[str]:
    return [] if engine == "espeak" else ["--engine", engine]


def _stage_times(err: str) -> dict[str, float]:
    times = {}
    for line in err.splitlines():
        if line.startswith("voicecoach-stage: "):
            name, at = line.split()[1:3]
            times.setdefault(name, float(at))
    return times


def _plan_of(folder: Path, cache: Path, engine: str) -> dict:
    """What the next `show` renders from `cache`: in this process for espeak (helpers.run_cli,
    as a fresh process would; it must then run on the main thread, which owns the signal
    handlers), in a process of its own for pyttsx3 (run_cli starts one)."""
    shown = run_cli("show", "r.yaml", "--json", *_engine_args(engine), cwd=folder,
                    env={"VOICECOACH_CACHE_DIR": str(cache)})
    assert shown.returncode == 0, shown.stderr
    return json.loads(shown.stdout)


ENGINES = ("espeak", "pyttsx3")


class CleanRuns(dict[str, Clean]):
    """Per engine, made when first asked for: a clean cold-cache export's plan, duration and
    how long each stage took."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        super().__init__()
        self.factory = tmp_path_factory

    def __missing__(self, engine: str) -> Clean:
        self[engine] = _clean_run(self.factory.mktemp(f"clean-{engine}"), engine)
        return self[engine]


@pytest.fixture(scope="session")  # kept while the long tests' shares and others take turns
def clean_runs(tmp_path_factory: pytest.TempPathFactory) -> CleanRuns:
    return CleanRuns(tmp_path_factory)


def _clean_run(folder: Path, engine: str) -> Clean:
    (folder / "r.yaml").write_text(SWEEP_ROUTINE, encoding="utf-8")
    env = {**os.environ, "VOICECOACH_CACHE_DIR": str(folder / "cache"),
           "VOICECOACH_TRACE_STAGES": "1"}
    done = subprocess.run(cli("export", "r.yaml", "-o", "out.mp3", "--json",
                              *_engine_args(engine)),
                          cwd=folder, env=env, capture_output=True, text=True, timeout=120)
    ended = time.monotonic()
    assert done.returncode == 0, done.stderr
    times = _stage_times(done.stderr)
    assert [name for name in times if name in STAGES] == list(STAGES), done.stderr
    edges = [*times.values(), ended]
    lengths = {name: max(0.01, b - a)
               for name, a, b in zip(times, edges, edges[1:], strict=False)}
    plan = _plan_of(folder, folder / "cache", engine)
    return Clean(plan, json.loads(done.stdout)[0]["duration"], lengths)


def moments(count: int, clean: dict[str, Clean], rng: random.Random,
            engines: tuple[str, ...] = ENGINES) -> list[Moment]:
    """`count` moments spread evenly over engines, signals and stages, each at a random offset
    within the stage as long as a clean run took for it."""
    combos = [(engine, stage) for engine in engines
              for stage in clean[engine].stage_lengths]
    rng.shuffle(combos)
    out = []
    for i in range(count):
        engine, stage = combos[i % len(combos)]
        out.append(Moment(engine, rng.choice(SIGNALS), stage,
                          rng.uniform(0, clean[engine].stage_lengths[stage]),
                          ignored=rng.random() < 0.3, old=rng.random() < 0.7))
    return out


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _children_of(folder: Path) -> list[str]:
    """Processes (ffmpeg) still running with a path inside `folder` on their command line."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                line = ((entry / "cmdline").read_bytes().replace(b"\0", b" ")
                        .decode(errors="replace"))
            except OSError:
                continue
            if str(folder) in line:
                found.append(line)
    return found


LATENCIES: list[float] = []  # from the signal to the process's end, for the report


def interrupt(moment: Moment, folder: Path, clean: Clean) -> tuple[list[str], bool]:
    """Interrupt one cold-cache export at `moment`: the problems found (none when all is well),
    and whether the next render's plan is still to be compared with a clean one (plan_check)."""
    (folder / "r.yaml").write_text(SWEEP_ROUTINE, encoding="utf-8")
    (folder / "tmp").mkdir()
    dest, cache, previous = folder / "out.mp3", folder / "cache", b"ID3 an older complete track"
    if moment.old:
        dest.write_bytes(previous)
    env = {**os.environ, "VOICECOACH_CACHE_DIR": str(cache), "VOICECOACH_TRACE_STAGES": "1",
           "TMPDIR": str(folder / "tmp")}
    proc = subprocess.Popen(cli("export", "r.yaml", "-o", dest.name, *_engine_args(moment.engine)),
                            cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, preexec_fn=_ignore_sigint if moment.ignored else None)
    assert proc.stderr is not None
    lines: list[str] = []
    sent = None
    for line in proc.stderr:
        lines.append(line)
        if line.startswith(f"voicecoach-stage: {moment.stage} "):
            time.sleep(moment.offset)
            break
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(moment.signum)
            sent = time.monotonic()
    try:
        lines.append(proc.stderr.read())
        code = proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return [f"still running 60 s after the signal: {moment}"], False
    latency = time.monotonic() - sent if sent is not None else 0.0
    LATENCIES.append(latency)
    err = "".join(lines)
    said = [ln for ln in err.splitlines() if not ln.startswith("voicecoach-stage: ")]
    problems = []
    expected = {cancel.EXIT_CODES[moment.signum], 0}
    if code not in expected:
        problems.append(f"exit {code}")
    if any(word in err for word in NOISE):
        problems.append("noise on stderr")
    if code != 0 and said != ["stopped"]:
        problems.append(f"not one line `stopped`: {said}")
    if latency > 5:
        problems.append(f"took {latency:.1f} s to stop")
    if dest.exists() and not (moment.old and dest.read_bytes() == previous):
        if not is_complete(dest, clean.duration):
            problems.append("a partial or damaged destination")
    elif code == 0:
        problems.append("exit 0 without the new file")
    left = leftovers(folder) + [p.name for p in cache.rglob("*") if PART in p.name]
    left += [p.name for p in (folder / "tmp").iterdir()]
    if left:
        problems.append(f"temporaries left: {left}")
    if running := _children_of(folder):
        problems.append(f"children left running: {running}")
    found = [f"{moment} (exit {code}): {p}; stderr {err[-600:]!r}" for p in problems]
    if problems or not any(p.is_file() for p in cache.rglob("*")):
        return found, False
    if moment.engine == "pyttsx3":  # a `show` process of its own: it may run on this thread
        return plan_check(moment, folder, clean), False
    return found, True


def plan_check(moment: Moment, folder: Path, clean: Clean) -> list[str]:
    """The next render from what the interrupted export left in the cache plans as a clean one."""
    plan = _plan_of(folder, folder / "cache", moment.engine)
    if differs := plan_difference(plan, clean.plan, moment.engine):
        return [f"{moment}: the next render's plan differs from a clean one: {differs}"]
    return []


#: How far a clip's length may differ between two clean renderings, in seconds. Both engines keep
#: state from one utterance to the next: a clip spoken first in a process and the same clip
#: spoken after another differ (measured: espeak-ng up to 213 samples, 10 ms; through pyttsx3
#: up to 19 ms). A next render that finds some clips cached speaks the others in another order.
#: A clip cut by a signal is shorter by a syllable or more (~0.1 s).
NOISE_S = {"espeak": 0.02, "pyttsx3": 0.05}


def plan_difference(got: dict, want: dict, engine: str) -> str | None:
    """Where two plans differ beyond the engine's noise, or None."""
    if [e["text"] for e in got["events"]] != [e["text"] for e in want["events"]]:
        return "other cues"
    for a, b in zip(got["events"], want["events"], strict=True):
        if abs(a["speech"] - b["speech"]) > NOISE_S[engine]:
            return f"{a} instead of {b}"
    # Holds and rests are fixed: only the clips' noise moves the end.
    if abs(got["duration"] - want["duration"]) > NOISE_S[engine] * len(got["events"]):
        return f"{got['duration']} s instead of {want['duration']} s"
    return None


def sweep(count: int, clean: dict[str, Clean], tmp_path: Path,
          engines: tuple[str, ...] = ENGINES, part: tuple[int, int] = (0, 1)) -> None:
    """Interrupt `count` moments chosen from the run's seed; `part` (k, n) takes the k-th of n
    shares of them, so that the suite's workers share one storm."""
    rng = random.Random(SEED)
    k, n = part
    chosen = moments(count, clean, rng, engines)[k::n]
    folders = [tmp_path / f"m{i:03d}" for i in range(len(chosen))]
    for folder in folders:
        folder.mkdir()
    cases = [(m, f, clean[m.engine]) for m, f in zip(chosen, folders, strict=True)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        interrupted = list(pool.map(lambda args: interrupt(*args), cases))
    found = [problems + (plan_check(*case) if check else [])
             for case, (problems, check) in zip(cases, interrupted, strict=True)]
    failed = [p for problems in found for p in problems]
    bad = sum(bool(problems) for problems in found)
    slowest = max(LATENCIES[-len(chosen):], default=0.0)
    share = f" (share {k + 1} of {n})" if n > 1 else ""
    print(f"seed {SEED}{share}: {len(chosen)} interruptions, {bad} found a problem; "
          f"slowest stop {slowest:.2f} s after its signal")
    assert not failed, f"seed {SEED}{share}: {bad} of {len(chosen)} interruptions went " \
        "wrong:\n" + "\n".join(failed[:20])


def test_interrupted_exports_keep_only_complete_work(clean_runs: dict, tmp_path: Path) -> None:
    """The storm below in small: one moment of one engine (both a different one each run), so
    one clean export is made rather than one per engine."""
    sweep(1, clean_runs, tmp_path, (random.Random(SEED).choice(ENGINES),))


#: The storm's moments: about ten for each engine and stage, with a new seed each run (CI's
#: two lanes: two seeds), in shares that the suite's workers run side by side.
STORM, SHARES = 96, 4


@pytest.mark.slow
@pytest.mark.long
@pytest.mark.parametrize("share", range(SHARES))
def test_interruption_storm_over_every_stage_and_both_engines(clean_runs: dict, tmp_path: Path,
                                                              share: int) -> None:
    sweep(STORM, clean_runs, tmp_path, part=(share, SHARES))


@pytest.mark.parametrize("attempts", [2, 8])
def test_sigkill_never_leaves_a_partial_file_and_the_next_run_cleans_up(workdir: dict,
                                                                       attempts: int) -> None:
    """Two kills (once mid-encode), then eight, of which one must land mid-encode so that the
    next run's clean-up was exercised."""
    folder: Path = workdir["folder"]  # type: ignore[assignment]
    dest = folder / f"killed-{attempts}.mp3"
    rng = random.Random(SEED)
    stale_seen = 0
    for attempt in range(attempts):
        if dest.exists():
            dest.unlink()
        moment = rng.uniform(0.0, 0.2)
        proc = subprocess.Popen(cli("export", "r.yaml", "-o", dest.name, "--quiet"), cwd=folder,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if attempt % 2:
            time.sleep(0.2 + 4 * moment)  # anywhere from start-up to the end
        else:  # while the track is being encoded
            deadline = time.monotonic() + 30
            while not leftovers(folder) and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.002)
            # A stitched track is written in a fraction of a second: the first kill comes the
            # moment its temporary appears, so one surely lands mid-write; later ones anywhere.
            time.sleep(moment if attempt else 0.0)
        proc.kill()
        proc.wait()
        where = f"seed {SEED}, attempt {attempt}, {moment:.2f}s"
        assert not dest.exists() or is_complete(dest, workdir["duration"]), where  # type: ignore[arg-type]
        stale_seen += bool(leftovers(folder))
    done = subprocess.run(cli("export", "r.yaml", "-o", dest.name, "--quiet"), cwd=folder,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert not leftovers(folder)
    assert is_complete(dest, workdir["duration"])  # type: ignore[arg-type]
    assert stale_seen or attempts < 8, "no kill landed mid-encode; the clean-up was not exercised"


def _limit_file_size(limit: int):  # type: ignore[no-untyped-def]
    def apply() -> None:
        # A full disk, as the process sees it: writes past `limit` fail with EFBIG.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


@pytest.mark.parametrize("limit", [pytest.param(200_000, marks=pytest.mark.slow), 1_300_000],
                         ids=["while-spooling", "while-encoding"])
def test_a_full_disk_gives_one_clear_error_and_nothing_partial(workdir: dict, limit: int) -> None:
    folder: Path = workdir["folder"]  # type: ignore[assignment]
    dest = folder / f"full-{limit}.mp3"
    proc = subprocess.run(cli("export", "r.yaml", "-o", dest.name), cwd=folder,
                          capture_output=True, text=True, preexec_fn=_limit_file_size(limit))
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.count("\n") == 1 and "disk full" in proc.stderr, proc.stderr
    assert not dest.exists() and not leftovers(folder)
    cache = ClipCache(Path(os.environ["VOICECOACH_CACHE_DIR"]))
    for entry in clip_files(Path(os.environ["VOICECOACH_CACHE_DIR"])):
        if PART not in entry.name and not entry.name.startswith("."):
            assert cache.get(entry.stem) is not None, entry
    again = subprocess.run(cli("export", "r.yaml", "-o", dest.name), cwd=folder,
                           capture_output=True, text=True)
    assert again.returncode == 0 and is_complete(dest, workdir["duration"])  # type: ignore[arg-type]


def test_a_damaged_cache_is_detected_and_repaired(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(ROUTINE, encoding="utf-8")
    env = {**os.environ, "VOICECOACH_CACHE_DIR": str(tmp_path / "cache")}
    first = subprocess.run(cli("export", "r.yaml", "-o", "a.mp3", "--json"), cwd=tmp_path,
                           env=env, capture_output=True, text=True, check=True)
    duration = json.loads(first.stdout)[0]["duration"]
    entries = sorted(clip_files(tmp_path / "cache"))
    assert len(entries) > 5
    rng = random.Random(SEED)
    damaged = rng.sample(entries, k=len(entries) // 2)
    for i, entry in enumerate(damaged):
        data = entry.read_bytes()
        if i % 4 == 0:
            entry.write_bytes(data[: rng.randrange(len(data))])
        elif i % 4 == 1:
            entry.write_bytes(os.urandom(len(data)))
        else:
            # A flipped byte in the payload, or in the header (magic, version, length, digest:
            # its first 30 bytes), which a warm export reads alone to time the plan.
            flip = bytearray(data)
            payload = len(flip) > 30 and i % 4 == 2
            flip[rng.randrange(30, len(flip)) if payload else rng.randrange(min(30, len(flip)))] \
                ^= 0xFF
            entry.write_bytes(bytes(flip))
    second = subprocess.run(cli("export", "r.yaml", "-o", "b.mp3", "--json"), cwd=tmp_path,
                            env=env, capture_output=True, text=True)
    assert second.returncode == 0, second.stderr
    # Speech rendered again may differ from the first rendering by a few samples a clip.
    again = json.loads(second.stdout)[0]["duration"]
    assert abs(again - duration) < 0.1
    assert is_complete(tmp_path / "b.mp3", again)
    # Repaired: a third export finds every entry it needs valid, so it writes nothing new.
    # (A damaged entry that no export reads any more may stay; it would be caught if read.)
    # (inode, size): a rewritten entry is a new file (written beside it, then renamed), while
    # reading one only touches its time (recently used).
    before = {p: (p.stat().st_ino, p.stat().st_size) for p in clip_files(tmp_path / "cache")}
    third = subprocess.run(cli("export", "r.yaml", "-o", "c.mp3", "--json"), cwd=tmp_path,
                           env=env, capture_output=True, text=True)
    assert third.returncode == 0, third.stderr
    after = {p: (p.stat().st_ino, p.stat().st_size) for p in clip_files(tmp_path / "cache")}
    assert after == before, f"the cache was still being repaired (seed {SEED})"
    assert json.loads(third.stdout)[0]["duration"] == json.loads(second.stdout)[0]["duration"]


@pytest.mark.parametrize("variable,value,words", [
    ("VOICECOACH_ESPEAK_DATA", "/nonexistent/espeak-ng-data", "voice data"),
    ("VOICECOACH_FFMPEG", "/nonexistent/ffmpeg", "ffmpeg"),
])
def test_broken_engines_give_one_clear_error(
    tmp_path: Path, variable: str, value: str, words: str
) -> None:
    (tmp_path / "r.yaml").write_text(ROUTINE, encoding="utf-8")
    (tmp_path / "out.mp3").write_bytes(b"old")
    env = {**os.environ, variable: value, "VOICECOACH_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.run(cli("export", "r.yaml", "-o", "out.mp3"), cwd=tmp_path, env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.count("\n") == 1 and words in proc.stderr and "Traceback" not in proc.stderr
    assert (tmp_path / "out.mp3").read_bytes() == b"old" and not leftovers(tmp_path)


def test_two_exports_to_one_destination_give_one_complete_file(workdir: dict) -> None:
    folder: Path = workdir["folder"]  # type: ignore[assignment]
    dest = folder / "both.mp3"
    procs = [subprocess.Popen(cli("export", "r.yaml", "-o", dest.name, "--quiet", *extra),
                              cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for extra in ([], ["--bitrate", "96"])]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    assert is_complete(dest, workdir["duration"])  # type: ignore[arg-type]
    assert not leftovers(folder)


#: Control characters are refused when the routine is read (tests/test_inputs.py); what remains
#: hostile in a name is what a file system or a shell would misread.
HOSTILE = """\
title: "../../etc/passwd \\t$(rm -rf ~) ROUTINE"
exercises:
  - name: "../../../escape"
    hold: 2s
  - name: "a/b\\\\c:d*e?f<g>h|i"
    hold: 2s
  - name: "`bell`; and & backspace"
    hold: 2s
  - name: "CON"
    hold: 2s
  - name: "{long}"
    hold: 2s
  - name: "..."
    hold: 2s
"""


def test_hostile_names_stay_inside_the_chosen_folder(tmp_path: Path) -> None:
    (tmp_path / "work").mkdir()
    routine = tmp_path / "work" / "..hostile..yaml"
    routine.write_text(HOSTILE.replace("{long}", "x" * 300), encoding="utf-8")
    before = set(tmp_path.rglob("*"))
    proc = subprocess.run(cli("export", routine.name, "--split", "-o", "out", "--json"),
                          cwd=tmp_path / "work", capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    written = set(tmp_path.rglob("*")) - before
    out = tmp_path / "work" / "out"
    assert written and all(p == out or p.parent == out for p in written), written
    for p in written - {out}:
        assert len(p.name) <= 80
        assert all(c.isalnum() or c in "-._" for c in p.name), p.name
        assert not p.name.startswith(".") and p.name.split(".")[0].lower() != "con"


CUT_CLIP = """\
import json, os, signal, sys, threading, time
from pathlib import Path
from voicecoach import cancel
from voicecoach.storage.cache import ClipCache
from voicecoach.speech import VoiceSettings, get_engine, render_clips

cancel.install()
said_stop = []  # what espeak-ng's synth callback answered: 1 = stop (observed, not changed)
if sys.argv[1] == "espeak":
    from voicecoach.speech import espeak
    collect = espeak._Espeak._collect
    def spy(self, *args):
        said_stop.append(collect(self, *args))
        return said_stop[-1]
    espeak._Espeak._collect = spy
engine, settings = get_engine(sys.argv[1]), VoiceSettings()
text = " ".join(["Breathe in slowly and let your knees fall to the left side."] * int(sys.argv[2]))
took = 1e9
for _ in range(2):  # no cache: how long a whole clip takes (the faster of two)
    began = time.monotonic()
    render_clips(engine, [text], settings)
    took = min(took, time.monotonic() - began)
cache = ClipCache(Path(sys.argv[3]))
signum = int(sys.argv[4])
threading.Timer(took * float(sys.argv[5]), os.kill, (os.getpid(), signum)).start()
began = time.monotonic()
try:
    render_clips(engine, [text], settings, cache)
    signalled = 0
except cancel.Interrupted as stop:
    signalled = stop.signum
stopped = time.monotonic() - began
entries = [str(p) for p in Path(sys.argv[3]).rglob("*") if p.is_file()]
print(json.dumps({"signal": signalled, "entries": entries, "whole": took, "stopped": stopped,
                  "cut": 1 in said_stop}))
"""


@pytest.mark.parametrize("engine", ["espeak", pytest.param("pyttsx3", marks=pytest.mark.slow)])
def test_a_clip_cut_short_by_a_signal_never_enters_the_cache(engine: str, tmp_path: Path) -> None:
    """A signal at a random moment inside one long clip's synthesis; on a loaded machine it may
    land after the clip finished (then the clip is complete and may be kept): try earlier."""
    rng = random.Random(SEED)
    fraction = rng.uniform(0.1, 0.5)  # of the time one whole clip takes: mid-synthesis
    repeats = "60" if engine == "espeak" else "20"  # pyttsx3 gathers audio more slowly
    for attempt in range(5):
        signum = rng.choice(SIGNALS)
        cache = tmp_path / f"cache-{attempt}"
        done = subprocess.run([sys.executable, "-c", CUT_CLIP, engine, repeats, str(cache),
                               str(int(signum)), str(fraction)],
                              capture_output=True, text=True, timeout=120)
        where = f"seed {SEED}, attempt {attempt}, {engine}, {fraction:.2f}: {done.stderr!r}"
        assert done.returncode == 0, where
        seen = json.loads(done.stdout)
        if seen["signal"]:
            assert seen["signal"] == signum, (seen, where)
            assert seen["entries"] == [], (seen, where)  # nothing of the clip was kept
        # espeak: its synth callback said stop, so the clip really was cut mid-way.
        if seen["signal"] and (engine != "espeak" or seen["cut"]):
            return
        fraction /= 3  # the clip was done before the signal came: try earlier
    pytest.fail(f"no signal landed inside the clip ({where})")


# -- --split: the set of parts is replaced whole ----------------------------------------------

SPLIT_OLD = """\
title: Split set
exercises:
  - name: Old one
    hold: 20s
  - name: Old two
    hold: 20s
  - name: Old three
    hold: 20s
"""
SPLIT_NEW = SPLIT_OLD.replace("Old", "New").replace("20s", "40s")


def _listing(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def split_sets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, bytes]]:
    """The old set of parts and the new one, each from a clean export (warm cache)."""
    sets = {}
    for label, text in (("old", SPLIT_OLD), ("new", SPLIT_NEW)):
        folder = tmp_path_factory.mktemp(f"split-{label}")
        (folder / "split-set.yaml").write_text(text, encoding="utf-8")
        began = time.monotonic()
        done = subprocess.run(cli("export", "split-set.yaml", "--split", "-o", "parts"),
                              cwd=folder, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        sets[label] = _listing(folder / "parts")
        SPLIT_TIME[label] = time.monotonic() - began
    return sets


SPLIT_TIME: dict[str, float] = {}


@pytest.mark.slow
def test_an_interrupted_split_leaves_the_old_set_or_the_new_one(
    split_sets: dict[str, dict[str, bytes]], tmp_path: Path, seed: int
) -> None:
    """SIGINT or SIGTERM at random moments of `export --split` over an older set of the same
    routine: the folder holds the old set byte for byte, or the whole new one; no temporary."""
    rng = random.Random(seed)
    problems: list[str] = []
    ends = {"old": 0, "new": 0}
    for i in range(10):
        folder = tmp_path / f"run{i}"
        (folder / "parts").mkdir(parents=True)
        for name, data in split_sets["old"].items():
            (folder / "parts" / name).write_bytes(data)
        (folder / "split-set.yaml").write_text(SPLIT_NEW, encoding="utf-8")
        signum = rng.choice(SIGNALS)
        proc = subprocess.Popen(cli("export", "split-set.yaml", "--split", "-o", "parts"),
                                cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True)
        # Over the whole export, a little past a clean run's time: some end with the new set.
        time.sleep(rng.uniform(0.2, 1.3 * SPLIT_TIME["new"]))
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signum)
        _, err = proc.communicate(timeout=120)
        got = _listing(folder / "parts")
        which = [label for label, want in split_sets.items() if got == want]
        if not which:
            problems.append(f"run {i} ({signum.name}, exit {proc.returncode}): a mix: "
                            f"{sorted(got)}; {err[-300:]!r}")
        # -signum: the signal came before Python had started (nothing was touched).
        elif proc.returncode not in (0, cancel.EXIT_CODES[signum], -signum) or \
                (which == ["old"] and proc.returncode == 0):
            problems.append(f"run {i}: exit {proc.returncode} with the {which[0]} set; {err!r}")
        else:
            ends[which[0]] += 1
        if left := [p.name for p in folder.iterdir() if PART in p.name]:
            problems.append(f"run {i}: temporaries left: {left}")
    print(f"seed {seed}: 10 interrupted splits, {ends['old']} kept the old set, "
          f"{ends['new']} ended with the new one")
    assert not problems, f"seed {seed}:\n" + "\n".join(problems)


@pytest.mark.parametrize("there", ["another routine's parts", "a file of the user's"])
def test_split_never_replaces_what_is_not_its_own_set(
    there: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    folder = tmp_path / "parts"
    folder.mkdir()
    if there == "another routine's parts":
        split_sets: dict[str, dict[str, bytes]] = request.getfixturevalue("split_sets")
        for name, data in split_sets["old"].items():
            (folder / name).write_bytes(data)
        (tmp_path / "other.yaml").write_text(SPLIT_NEW, encoding="utf-8")
        routine, says = "other.yaml", "holds the parts of another routine (split-set.m3u)"
    else:
        (folder / "notes.txt").write_text("mine", encoding="utf-8")
        (tmp_path / "split-set.yaml").write_text(SPLIT_NEW, encoding="utf-8")
        routine, says = "split-set.yaml", "holds files that are not parts of split-set"
    before = _listing(folder)
    done = subprocess.run(cli("export", routine, "--split", "-o", "parts"), cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.splitlines()) == 1 and says in done.stderr, done.stderr
    assert _listing(folder) == before
