"""`voicecoach validate` against broken input: every mistake is one located line, never a crash.

The corpus lives in tests/data/bad (one mistake per file, described in a comment at its top);
tests/data/bad/expected.txt says where the first problem must be reported and what it must say.
Inputs over ~100 KB (10 MB file, 1 MB file, deep block nesting, 50,000+ values) are generated
here in a temporary folder rather than committed.

Speed: the small corpus files are validated in ONE subprocess (validate takes many files);
the heavy inputs (huge, deep, alias bombs, binary, plan bombs) each get their own subprocess,
under a memory limit and a timeout, so a regression cannot take the test machine down with it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from helpers import run_cli as run_in_process
from voicecoach.errors import RoutineErrors
from voicecoach.plan.timeline import build_plan
from voicecoach.routine.durations import MAX_SECONDS, format_clock, format_duration, parse_duration
from voicecoach.routine.loader import load_routine

#: One worker runs this module (pytest-xdist's loadgroup): its measured baseline and its batch
#: of bad files (module-scoped) are run once.
pytestmark = pytest.mark.xdist_group("validate")

ROOT = Path(__file__).resolve().parents[1]
BAD = ROOT / "tests" / "data" / "bad"
GOOD = ROOT / "tests" / "data" / "good"
ROUTINES = ROOT / "routines"
EXPECTED = BAD / "expected.txt"

#: CPU seconds validate may spend on one file: enforced as the child's RLIMIT_CPU (below), not
#: as a wall-clock assertion, which a shared, loaded machine would make flaky.
TIME_LIMIT = 2.0
#: The subprocess timeout only catches hangs; it is generous for interpreter start-up on slow CI.
SUBPROCESS_TIMEOUT = 30.0
#: CPU seconds a measured child may burn (RLIMIT_CPU, then SIGXCPU): twice the validate budget
#: (start-up is ~0.2 s), so a runaway input costs the suite seconds, not the wall-clock timeout.
CPU_LIMIT = 2 * TIME_LIMIT
#: Memory validate may use on top of the interpreter's own baseline (python + pydantic + the CLI).
MEMORY_BUDGET = 200 * 2**20

# ---------------------------------------------------------------------------------------------
# Memory: how it is measured, and why this way.
#
# Measured: the child's peak resident set (ru_maxrss from os.wait4), asserted to stay under
# baseline + 200 MiB, where the baseline is the peak RSS of `python -c "import pydantic, yaml,
# voicecoach.cli"` measured the same way at the start of this module.
#
# Pitfall: Linux keeps the pre-exec peak in ru_maxrss, so a child forked (or vforked) straight
# from pytest reports at least pytest's own RSS (checked: a parent holding 300 MB gives a
# `python -c pass` child ru_maxrss 318 MB). Each measured command is therefore started by a
# tiny launcher (_LAUNCHER, ~9 MB), which forks the real command and reports its wait4 usage;
# the launcher's 9 MB is below the ~37 MB baseline, so it never shows in the numbers.
#
# Enforced: the launcher also sets RLIMIT_AS = baseline VmPeak + 200 MiB (+16 MiB slack for
# libyaml and allocator arenas) and RLIMIT_CPU = CPU_LIMIT before exec, so a runaway input cannot
# swap the machine or hold the suite. Both are needed: at its address-space limit CPython may
# crawl for minutes (every allocation failing in mmap/brk) instead of raising MemoryError, as
# plan-bomb.yaml does; the CPU limit is what ends that.
# Arithmetic, measured here (CPython 3.11, pydantic 2.14): baseline RSS 36.5 MB, VmPeak 42.9 MB
# -> RLIMIT_AS = 42.9 + 209.7 + 16.8 = ~269 MB; RSS assertion limit = 36.5 + 209.7 = ~246 MB.
# The address-space limit is only the guard; the RSS figure is what the assertion checks.
# Measured peaks: every committed and generated heavy input stays under 48 MiB (alias bombs at
# the 50,000-value budget ~47.5 MiB); the batch of ~80 small files ~40 MiB.
# ---------------------------------------------------------------------------------------------

_LAUNCHER = r"""
import os, resource, sys
report, limit, cpu, argv = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
if limit:
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
if cpu:
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
pid = os.fork()
if pid == 0:
    try:
        os.execv(argv[0], argv)
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
with open(report, "w") as f:
    f.write(f"{usage.ru_maxrss}\n")
sys.exit(os.waitstatus_to_exitcode(status) % 256)
"""


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str
    maxrss: int = 0  # bytes; 0 when not measured
    wall: float = 0.0
    timed_out: bool = False

    @property
    def err_lines(self) -> list[str]:
        return self.stderr.splitlines()


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "VOICECOACH_DEBUG"}
    env["PYTHONIOENCODING"] = "utf-8"
    return env


def run_cli(*args: str | Path, preexec_fn: Callable[[], None] | None = None) -> Run:
    """`voicecoach ARGS` as a user would run it, without measurement: in this process
    (helpers.run_cli) unless the child needs a pre-exec step."""
    start = time.perf_counter()
    if preexec_fn is None:
        done = run_in_process(*args, cwd=ROOT)
        return Run(done.returncode, done.stdout, done.stderr, wall=time.perf_counter() - start)
    proc = subprocess.run(
        [sys.executable, "-m", "voicecoach", *map(str, args)],
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        cwd=ROOT,
        env=_env(),
        timeout=SUBPROCESS_TIMEOUT,
        preexec_fn=preexec_fn,
        stdin=subprocess.DEVNULL,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr, wall=time.perf_counter() - start)


def run_measured(argv: list[str], as_limit: int = 0, cpu_limit: float = 0) -> Run:
    """Run a python command through the launcher: its peak RSS, under optional limits."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "usage"
        start = time.perf_counter()
        limits = [str(as_limit), str(int(cpu_limit))]
        proc = subprocess.Popen(
            [sys.executable, "-c", _LAUNCHER, str(report), *limits, sys.executable, *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            cwd=ROOT,
            env=_env(),
            start_new_session=True,
        )
        timed_out = False
        try:
            out, err = proc.communicate(timeout=SUBPROCESS_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            timed_out = True
        wall = time.perf_counter() - start
        maxrss = int(report.read_text()) * 1024 if report.exists() else 0
    decode = lambda b: b.decode("utf-8", "replace")  # noqa: E731
    return Run(proc.returncode, decode(out), decode(err), maxrss, wall, timed_out)


@dataclass(frozen=True)
class Baseline:
    rss: int
    vm_peak: int

    @property
    def as_limit(self) -> int:
        return self.vm_peak + MEMORY_BUDGET + 16 * 2**20

    @property
    def rss_limit(self) -> int:
        return self.rss + MEMORY_BUDGET


@pytest.fixture(scope="module")
def baseline() -> Baseline:
    if not Path("/proc/self/status").exists():
        pytest.skip("memory limits are measured through Linux /proc and wait4")
    code = "import pydantic, yaml, voicecoach.cli.run; print(open('/proc/self/status').read())"
    run = run_measured(["-c", code])
    assert run.code == 0, run.stderr
    vm_peak = int(re.search(r"^VmPeak:\s+(\d+) kB", run.stdout, re.M).group(1)) * 1024
    return Baseline(rss=run.maxrss, vm_peak=vm_peak)


# ---------------------------------------------------------------------------------------------
# The expected table
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    line: int
    col: int
    fragment: str
    xfail: str | None = None


def _read_expected() -> dict[str, Case]:
    cases: dict[str, Case] = {}
    for raw in EXPECTED.read_text(encoding="utf-8").splitlines():
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        parts = [p.strip() for p in raw.split(" | ", 3)]
        name, where, fragment = parts[:3]
        xfail = parts[3].removeprefix("xfail:").strip() if len(parts) == 4 else None
        line, col = (int(n) for n in where.split(":"))
        assert name not in cases, f"{name} listed twice in {EXPECTED.name}"
        cases[name] = Case(name, line, col, fragment, xfail)
    return cases


CASES = _read_expected()

#: Corpus files that get their own limited subprocess instead of joining the batch: big
#: expansions, deep nesting, binary bytes, and inputs that make the planner explode.
HEAVY = {
    "alias-bomb.yaml",
    "alias-bomb-in-field.yaml",
    "deep-nesting-flow.yaml",
    "deep-nesting-block.yaml",
    "binary-junk.yaml",
    "utf16-without-bom.yaml",
    "breathing-zero-length.yaml",
    "breathing-1ms-for-4h.yaml",
    "plan-bomb.yaml",
}
#: Known to exhaust memory or time today: never validated inside the pytest process.
EXPLOSIVE: set[str] = set()


def _param(case: Case) -> object:
    marks = [pytest.mark.xfail(strict=True, reason=case.xfail)] if case.xfail else []
    return pytest.param(case, id=case.name, marks=marks)


def check_problem_output(run: Run, path: Path, case: Case, *, code: int | None = 2) -> None:
    """The contract for a bad file: exit 2, nothing on stdout, one located line per problem."""
    shown = str(path)
    assert not run.timed_out, f"still running after {SUBPROCESS_TIMEOUT} s"
    assert run.code < 128, f"killed by the limits (exit {run.code}): {run.stderr[-300:]!r}"
    assert "Traceback" not in run.stderr, run.stderr
    if code is not None:
        assert run.code == code, f"exit {run.code}; stdout={run.stdout!r} stderr={run.stderr!r}"
    assert run.stdout == "", f"stdout: {run.stdout!r}"
    lines = run.err_lines
    assert lines, "nothing reported on stderr"
    pattern = re.compile(rf"^{re.escape(shown)}:(\d+):(\d+): (.+)")
    for line in lines:  # every line is a whole problem: no continuation lines
        assert pattern.match(line), f"not PATH:LINE:COL: message: {line!r}"
    first = pattern.match(lines[0])
    assert first is not None
    got = (int(first[1]), int(first[2]))
    want = (case.line, case.col)
    assert got == want, f"first problem at {got}, want {want}: {lines[0]}"
    assert case.fragment in first[3], f"{case.fragment!r} not in the message of {lines[0]!r}"


# ---------------------------------------------------------------------------------------------
# The corpus, validated in one subprocess
# ---------------------------------------------------------------------------------------------


def _split_output(run: Run, files: list[Path]) -> dict[Path, Run]:
    """Each file's share of a many-file validate run (continuation lines stay with their file)."""
    shares = {f: Run(run.code, "", "", run.maxrss, run.wall) for f in files}
    by_prefix = sorted(files, key=lambda f: len(str(f)), reverse=True)
    orphans: list[str] = []
    current: Path | None = None
    for line in run.stdout.splitlines():
        owner = next((f for f in by_prefix if line.startswith(f"{f}: ")), None)
        if owner is not None:
            shares[owner].stdout += line + "\n"
    for line in run.err_lines:
        owner = next((f for f in by_prefix if line.startswith(f"{f}:")), None)
        current = owner or current
        if current is None:
            orphans.append(line)
        else:
            shares[current].stderr += line + "\n"
    if orphans:
        shares[files[0]].stderr = "\n".join(orphans) + "\n" + shares[files[0]].stderr
    return shares


def validate_many(files: list[Path], as_limit: int) -> dict[Path, Run]:
    """Validate files in one process; if validate dies part-way, run the rest without the culprit.

    validate answers for every file in order; a file with no answer at all is where it stopped
    (an uncaught exception ends the loop), so it gets that run's exit code and stray lines.
    """
    if not files:
        return {}
    run = run_measured(["-m", "voicecoach", "validate", *map(str, files)], as_limit, CPU_LIMIT)
    shares = _split_output(run, files)
    silent = [f for f in files if not shares[f].stdout and not shares[f].stderr]
    if not silent:
        return shares
    culprit = silent[0]
    i = files.index(culprit)
    stray = [ln for ln in run.err_lines if not any(ln.startswith(f"{f}:") for f in files)]
    results = {culprit: Run(run.code, "", "\n".join(stray) + "\n" if stray else "", run.maxrss)}
    results |= validate_many(files[:i], as_limit)
    results |= validate_many(files[i + 1 :], as_limit)
    return results


@pytest.fixture(scope="module")
def batch(baseline: Baseline) -> dict[Path, Run]:
    files = [BAD / name for name in sorted(CASES) if name not in HEAVY]
    return validate_many(files, baseline.as_limit)


_heavy_runs: dict[Path, Run] = {}


def heavy_run(path: Path, baseline: Baseline) -> Run:
    """`python -m voicecoach validate PATH` alone, memory-limited and measured (cached)."""
    if path not in _heavy_runs:
        _heavy_runs[path] = run_measured(
            ["-m", "voicecoach", "validate", str(path)], baseline.as_limit, CPU_LIMIT
        )
    return _heavy_runs[path]


def test_expected_table_lists_every_bad_file() -> None:
    on_disk = {p.name for p in BAD.iterdir() if p.name != EXPECTED.name}
    assert sorted(on_disk - set(CASES)) == [], "files without an expected.txt line"
    assert sorted(set(CASES) - on_disk) == [], "expected.txt lines without a file"
    assert len(on_disk) >= 50
    assert on_disk >= HEAVY
    for p in BAD.iterdir():
        assert p.stat().st_size < 100_000, f"{p.name}: generate big inputs in the test instead"


@pytest.mark.parametrize("case", [_param(c) for c in CASES.values()])
def test_bad_file_is_reported_where_the_mistake_is(
    case: Case, batch: dict[Path, Run], baseline: Baseline
) -> None:
    path = BAD / case.name
    run = heavy_run(path, baseline) if case.name in HEAVY else batch[path]
    check_problem_output(run, path, case)


def test_bad_files_validate_quickly_in_process() -> None:
    """The validate work itself (load + plan), timed without interpreter start-up."""
    slow = {}
    for name in sorted(CASES):
        if name in HEAVY:
            continue  # timed after their limited subprocess run, below
        elapsed = validate_seconds(BAD / name)
        if elapsed >= TIME_LIMIT:
            slow[name] = round(elapsed, 2)
    assert slow == {}


def test_batch_stays_within_memory(batch: dict[Path, Run], baseline: Baseline) -> None:
    peak = max(run.maxrss for run in batch.values())
    print(
        f"baseline RSS {baseline.rss / 2**20:.1f} MiB, VmPeak {baseline.vm_peak / 2**20:.1f} MiB;"
        f" batch peak RSS {peak / 2**20:.1f} MiB"
    )
    assert peak < baseline.rss_limit, f"peak RSS {peak / 2**20:.0f} MiB"


# ---------------------------------------------------------------------------------------------
# Heavy input: each alone in a limited, measured subprocess; then timed in-process
# ---------------------------------------------------------------------------------------------


def _generated() -> dict[str, tuple[Callable[[], bytes], Case]]:
    """Inputs too big to commit: how to make each, and where its first problem must be."""
    out: dict[str, tuple[Callable[[], bytes], Case]] = {}

    def add(name: str, make: Callable[[], bytes], line: int, col: int, fragment: str) -> None:
        out[name] = (make, Case(name, line, col, fragment))

    head = b"title: Big\nexercises:\n  - name: Child's pose\n    hold: 30s\n"
    # 10 MB of a plausible routine: a description folded over 280,000 lines.
    add(
        "huge-10mb.yaml",
        lambda: head + b"description: >\n" + b"  Breathe slowly and relax your back.\n" * 280_000,
        1,
        1,
        "at most 1,000,000 bytes",
    )
    # One byte over the limit (and the next case exactly at it): the size check is exact.
    add(
        "over-1mb-by-one-byte.yaml",
        lambda: head + b"# " + b"x" * (1_000_001 - len(head) - 3) + b"\n",
        1,
        1,
        "at most 1,000,000 bytes",
    )
    # Exactly 1,000,000 bytes: within the size limit, so the 997 KB description is what fails.
    add(
        "exactly-1mb-long-description.yaml",
        lambda: (
            b"description: "
            + b"a" * (1_000_000 - len(b"description: ") - len(head) - 1)
            + b"\n"
            + head
        ),
        1,
        14,
        "at most 2000 characters",
    )
    # 400,000 nested flow lists (800 KB): refused at the 32nd `[` (root mapping is level 1).
    add(
        "deep-nesting-flow-400k.yaml",
        lambda: b"title: Deep\nexercises: " + b"[" * 400_000 + b"]" * 400_000 + b"\n",
        2,
        len("exercises: ") + 32,
        "nested more than 32 levels deep",
    )
    # 1,300 nested block mappings, one space per level (850 KB): line 3+k is level 2+k, so
    # level 33 is k = 31: line 34, indented 32 spaces.
    add(
        "deep-nesting-block-map.yaml",
        lambda: (
            b"title: Deep\nexercises:\n"
            + b"".join(b" " * (k + 1) + b"a:\n" for k in range(1_299))
            + b" " * 1_300
            + b"a: x\n"
        ),
        34,
        33,
        "nested more than 32 levels deep",
    )
    # 60,000 list items (360 KB). The loader counts parse events: stream, document and
    # collection start/end included, the items begin at event 17, so event 50,001 is item
    # 49,984, on line 4 + 49,984.
    add(
        "too-many-values.yaml",
        lambda: b"title: x\nexercises: [{name: x, hold: 1s}]\nequipment:\n" + b"  - a\n" * 60_000,
        4 + 49_984,
        5,
        "more than 50000 YAML values",
    )
    # Aliases that expand to ~45,700 values: just inside the 50,000 budget, so they are built
    # and validated (the unknown keys a-d are the first problems).
    add(
        "aliases-within-budget.yaml",
        lambda: (
            b"title: x\nexercises: [{name: x, hold: 1s}]\n"
            b"a: &a [" + b", ".join([b"lol"] * 10) + b"]\n"
            b"b: &b [" + b", ".join([b"*a"] * 10) + b"]\n"
            b"c: &c [" + b", ".join([b"*b"] * 10) + b"]\n"
            b"d: &d [" + b", ".join([b"*c"] * 10) + b"]\n"
            b"cautions: [*d, *d, *d]\n"
        ),
        3,
        1,
        "unknown key 'a'",
    )
    # 1,000 problems in one file (200 exercises x 5 misspelt keys): all reported, quickly.
    add(
        "error-flood.yaml",
        lambda: (
            b"title: x\nexercises:\n"
            + b"".join(
                b"  - {name: n%d, holdx: 1, holdy: 2, holdz: 3, hol: 4, hod: 5}\n" % i
                for i in range(200)
            )
        ),
        3,
        16,
        "unknown key 'holdx'",
    )
    return out


GENERATED = _generated()


@pytest.fixture(scope="module")
def generated_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("generated-bad")
    for name, (make, _) in GENERATED.items():
        (folder / name).write_bytes(make())
    return folder


def validate_seconds(path: Path) -> float:
    """What validate does for one file (load + plan), timed in this process."""
    start = time.perf_counter()
    with contextlib.suppress(Exception):  # timing only: the output checks judge the failure
        build_plan(load_routine(path))
    return time.perf_counter() - start


def check_limits(path: Path, run: Run, baseline: Baseline) -> None:
    """Memory and CPU from the limited subprocess; then, only once that run has shown the input
    is tame, the validate time in this process for the log (a runaway never runs unguarded here)."""
    assert not run.timed_out, f"still running after {SUBPROCESS_TIMEOUT} s"
    assert run.code < 128, f"killed at the CPU or memory limit (exit {run.code})"
    assert run.maxrss < baseline.rss_limit, (
        f"peak RSS {run.maxrss / 2**20:.0f} MiB; limit {baseline.rss_limit / 2**20:.0f} MiB"
    )
    # Time is bounded by the child's CPU limit above (CPU seconds, which a loaded machine does
    # not inflate as it does wall time); the in-process figure is printed, never asserted.
    elapsed = validate_seconds(path)
    print(f"{path.name}: peak RSS {run.maxrss / 2**20:.1f} MiB, validate {elapsed * 1000:.0f} ms")


#: Giants that the fast lane leaves to the full suite: the same limits are met in the fast lane by
#: deep-nesting-flow.yaml (nesting) and over-1mb-by-one-byte.yaml (size).
GIANTS = {"deep-nesting-flow-400k.yaml", "exactly-1mb-long-description.yaml", "huge-10mb.yaml"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow if n in GIANTS else ())
                                  for n in sorted(GENERATED)])
def test_generated_heavy_input(name: str, generated_dir: Path, baseline: Baseline) -> None:
    path = generated_dir / name
    run = heavy_run(path, baseline)
    check_problem_output(run, path, GENERATED[name][1])
    check_limits(path, run, baseline)


def _heavy_param(name: str) -> object:
    case = CASES[name]
    marks = []
    if name in EXPLOSIVE:
        reason = f"over the time/memory limits: {case.xfail}"
        marks = [pytest.mark.xfail(strict=True, reason=reason)]
    return pytest.param(name, id=name, marks=marks)


@pytest.mark.slow  # the corpus of bombs (aliases, nesting, plans): each under measured limits
@pytest.mark.parametrize("name", [_heavy_param(n) for n in sorted(HEAVY)])
def test_heavy_corpus_file_within_limits(name: str, baseline: Baseline) -> None:
    path = BAD / name
    run = heavy_run(path, baseline)
    assert "Traceback" not in run.stderr
    check_limits(path, run, baseline)


def test_memory_limit_is_enforced(baseline: Baseline) -> None:
    """The RLIMIT_AS guard really stops a runaway child (so the heavy tests are safe to run)."""
    run = run_measured(["-c", f"x = bytearray({MEMORY_BUDGET + 64 * 2**20})"], baseline.as_limit)
    assert run.code != 0 and "MemoryError" in run.stderr


@pytest.mark.slow
def test_cpu_limit_is_enforced() -> None:
    """The RLIMIT_CPU guard really ends a spinning child (SIGXCPU: exit 128 + 24)."""
    run = run_measured(["-c", "while True: pass"], cpu_limit=1)
    assert not run.timed_out and run.code >= 128


# ---------------------------------------------------------------------------------------------
# Good files, several files at once, file-system failures
# ---------------------------------------------------------------------------------------------


def _check_ok(files: list[Path]) -> None:
    run = run_cli("validate", *files)
    assert run.stderr == "" and run.code == 0, run.stderr
    assert run.stdout.splitlines() == [f"{f}: ok" for f in files]


def test_good_files_validate() -> None:
    files = sorted(GOOD.glob("*.yaml"))
    assert files, "tests/data/good is empty"
    _check_ok(files)


def test_bundled_routines_validate() -> None:
    files = sorted(ROUTINES.glob("*.yaml"))
    if not files:
        pytest.skip("no bundled routines in routines/ yet")
    _check_ok(files)


def test_several_files_at_once_report_each() -> None:
    good = sorted(GOOD.glob("*.yaml"))[:2]
    bad = [BAD / "hold-zero.yaml", BAD / "misspelled-hold.yaml", BAD / "exercise-lasts-days.yaml"]
    files = [good[0], bad[0], bad[1], good[-1], bad[2]]
    run = run_cli("validate", *files)
    assert run.code == 2
    assert "Traceback" not in run.stderr
    assert run.stdout.splitlines() == [f"{good[0]}: ok", f"{good[-1]}: ok"]
    lines = run.err_lines
    assert len(lines) == 3
    for path, line in zip(bad, lines, strict=True):
        case = CASES[path.name]
        assert line.startswith(f"{path}:{case.line}:{case.col}: "), line


def _drop_root_read_override() -> None:
    """In the child, before exec: drop CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from the
    bounding set, so root is refused a mode-000 file like anyone else (exit 99 if not allowed)."""
    libc = ctypes.CDLL(None, use_errno=True)
    pr_capbset_drop, cap_dac_override, cap_dac_read_search = 24, 1, 2
    for cap in (cap_dac_override, cap_dac_read_search):
        if libc.prctl(pr_capbset_drop, cap, 0, 0, 0) != 0:
            os._exit(99)


def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "locked.yaml"
    path.write_text((GOOD / "minimal.yaml").read_text())
    path.chmod(0)
    preexec = None
    if os.geteuid() == 0:
        # chmod 000 does not stop root: run the child as root without the read override.
        if not sys.platform.startswith("linux"):
            pytest.skip("running as root, and capabilities can only be dropped on Linux")
        preexec = _drop_root_read_override
    run = run_cli("validate", path, preexec_fn=preexec)
    if run.code == 99 and not run.stderr:
        pytest.skip("running as root without CAP_SETPCAP: cannot make a file unreadable")
    assert (run.code, run.stdout) == (2, "")
    assert len(run.err_lines) == 1 and "Traceback" not in run.stderr, run.stderr
    # Today click's own readability check answers first ("error: Invalid value for 'files':
    # path '...' is not readable."), before the loader's "PATH: cannot read (...)".
    line = run.err_lines[0]
    assert str(path) in line and ("cannot read" in line or "not readable" in line), line


@pytest.mark.parametrize(
    "kind", ["missing", "directory", "under-a-file", "symlink-loop", "dangling-symlink"]
)
def test_file_system_mistakes_are_one_line(kind: str, tmp_path: Path) -> None:
    path = {
        "missing": tmp_path / "nope.yaml",
        "directory": tmp_path,
        "under-a-file": GOOD / "minimal.yaml" / "x.yaml",
        "symlink-loop": tmp_path / "loop.yaml",
        "dangling-symlink": tmp_path / "dangling.yaml",
    }[kind]
    if kind == "symlink-loop":
        path.symlink_to(path)
    if kind == "dangling-symlink":
        path.symlink_to(tmp_path / "gone.yaml")
    run = run_cli("validate", path)
    assert (run.code, run.stdout) == (2, "")
    assert len(run.err_lines) == 1 and "Traceback" not in run.stderr
    assert re.match(rf"^{re.escape(str(path))}: .+", run.err_lines[0]), run.err_lines
    want = {
        "missing": "no such file",
        "directory": "is a folder, not a routine file",
        "under-a-file": "is a file, not a folder",
        "symlink-loop": "cannot be read",
        "dangling-symlink": "no such file",
    }[kind]
    assert want in run.err_lines[0]


# ---------------------------------------------------------------------------------------------
# Command-line mistakes: one line on stderr, exit 2, no traceback
# ---------------------------------------------------------------------------------------------


def _one_line_error(run: Run) -> str:
    assert run.code == 2, (run.code, run.stderr)
    assert run.stdout == ""
    assert "Traceback" not in run.stderr
    assert len(run.err_lines) == 1, run.stderr
    return run.err_lines[0]


def test_show_unknown_routine_suggests_close_matches() -> None:
    line = _one_line_error(run_cli("show", "five-minute-bak"))
    assert "unknown routine 'five-minute-bak'" in line
    if not (ROUTINES / "five-minute-back.yaml").exists():
        pytest.skip("routines/five-minute-back.yaml is not bundled yet: no close match to offer")
    assert "did you mean five-minute-back" in line


@pytest.mark.parametrize(
    ("args", "want"),
    [
        (["show", "no-such-routine"], "unknown routine 'no-such-routine'"),
        (["show", "missing/routine.yaml"], "missing/routine.yaml: no such file"),
        (["show"], "Missing argument"),
        (["validate"], "Missing argument"),
        (["validate", "--frobnicate", "x.yaml"], "No such option: --frobnicate"),
        (["show", "--pace", "fast", "five-minute-back"], "--pace"),
        (["frobnicate"], "No such command 'frobnicate'"),
    ],
    ids=[
        "unknown-id",
        "missing-path",
        "show-no-arg",
        "validate-no-arg",
        "unknown-option",
        "bad-option-value",
        "unknown-command",
    ],
)
def test_command_line_mistakes_are_one_line(args: list[str], want: str) -> None:
    assert want in _one_line_error(run_cli(*args))


# ---------------------------------------------------------------------------------------------
# durations.py
# ---------------------------------------------------------------------------------------------



@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("20s", 20),
        ("1m30s", 90),
        ("1h", 3600),
        ("90", 90),
        ("1.5m", 90),
        (90, 90),
        (2.5, 2.5),
        (" 20 s ", 20),
        ("1H30M", 5400),
        ("1h 30m", 5400),
        ("4h", MAX_SECONDS),
        ("0.5", 0.5),
        ("500ms", 0.5),
        ("1s500ms", 1.5),
    ],
)
def test_parse_duration_accepts(value: object, seconds: float) -> None:
    assert parse_duration(value) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "value",
    [
        "0",
        0,
        0.0,
        "-5s",
        -5,
        "abc",
        "10^9 s",
        "1e9",
        1e9,
        "5 hours",
        "30 seconds",
        True,
        False,
        None,
        [],
        {},
        "",
        "   ",
        "4h1s",
        MAX_SECONDS + 1,
        float("nan"),
        float("inf"),
        "1m30",
        "20s s",
        "s",
        "1:30",
    ],
    ids=repr,
)
def test_parse_duration_rejects(value: object) -> None:
    with pytest.raises(ValueError, match=r".{10}"):
        parse_duration(value)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (20, "20s"),
        (90, "1m30s"),
        (3600, "1h"),
        (3661, "1h1m1s"),
        (0.5, "0.5s"),
        (60, "1m"),
        (14400, "4h"),
        (7200 + 5, "2h5s"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_format_duration_round_trips_every_whole_second() -> None:
    for seconds in range(1, int(MAX_SECONDS) + 1):
        assert parse_duration(format_duration(seconds)) == seconds


@pytest.mark.parametrize("seconds", [0.001, 0.25, 1.5, 2.75, 12.125, 59.4])
def test_format_duration_round_trips_fractions(seconds: float) -> None:
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds)


def _parse_clock(text: str) -> float:
    parts = text.split(":")
    assert all(float(p) < 60 for p in parts[1:]), f"{text!r} has a field of 60 or more"
    total = 0.0
    for p in parts:
        total = total * 60 + float(p)
    return total


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0:00.0"),
        (5.25, "0:05.2"),
        (59.5, "0:59.5"),
        (90, "1:30.0"),
        (3599.5, "59:59.5"),
        (3600, "1:00:00"),
        (3661, "1:01:01"),
        (14400, "4:00:00"),
    ],
)
def test_format_clock(seconds: float, text: str) -> None:
    assert format_clock(seconds) == text


def test_format_clock_round_trips_to_a_tenth() -> None:
    for tenths in range(0, 36_000):  # every tenth of a second in the first hour
        seconds = tenths / 10
        assert _parse_clock(format_clock(seconds)) == pytest.approx(seconds, abs=0.051)
    for seconds in range(3600, int(MAX_SECONDS) + 1, 7):  # h:mm:ss keeps whole seconds
        assert _parse_clock(format_clock(seconds)) == seconds


@pytest.mark.parametrize("seconds", [59.97, 119.96, 3599.97])
def test_format_clock_never_shows_sixty_seconds(seconds: float) -> None:
    _parse_clock(format_clock(seconds))


_TAGS = ("!!int", "!!float", "!!bool", "!!null", "!!str", "!!timestamp")
_ODD = ("", "''", "0x", "0b", "0o", "_", "1_", ":", "-", "+", ".", "1:2:", "0xg", "1e", "nan",
        "9" * 400, "2026-13-45", "2026-01-01T25:61", "-:", "+.inf", "0b2", "٣")


@pytest.mark.parametrize("tag", _TAGS)
def test_every_plain_tag_on_odd_text_is_a_located_mistake(tag: str, tmp_path: Path) -> None:
    """PyYAML's constructors fail in their own ways (`!!int ` is an IndexError): whatever a
    tagged scalar holds, the answer is a value or a located mistake, never an internal error."""
    for i, odd in enumerate(_ODD):
        for where in (f"sides: [{tag} {odd}]", f"hold: {tag} {odd}", f"name: {tag} {odd}"):
            path = tmp_path / f"t{i}.yaml"
            body = "title: X\nexercises:\n  - name: A\n    hold: 2s\n"
            body = body.replace("    hold: 2s\n", f"    {where}\n") if not where.startswith(
                "name") else body.replace("  - name: A\n", f"  - {where}\n")
            path.write_text(body, encoding="utf-8")
            try:
                load_routine(path)
            except RoutineErrors as exc:
                line = exc.line()
                assert line.startswith(f"{path}:"), (where, line)
