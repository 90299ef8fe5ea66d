"""Test set-up: every test runs against private cache and data folders, never the user's."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_private = Path(tempfile.mkdtemp(prefix="voicecoach-tests-"))
#: pytest-xdist workers inherit the controller's environment: this marks a worker.
_WORKER = os.environ.get("PYTEST_XDIST_WORKER")


def pytest_configure(config: pytest.Config) -> None:
    # A shell starts background jobs with Ctrl-C ignored, and children inherit an ignored signal:
    # the commands under test would then never see the SIGINT the tests send them. Handling it
    # here makes every child start with the default, as it does from a terminal.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    # One seed for the whole run (workers and subprocesses inherit it), so a failure names the
    # seed that reproduces it: VOICECOACH_TEST_SEED=N scripts/test ...
    seed = os.environ.get("VOICECOACH_TEST_SEED") or str(random.SystemRandom().randrange(10**6))
    try:
        os.environ["VOICECOACH_TEST_SEED"] = str(int(seed))
    except ValueError:
        raise pytest.UsageError(f"VOICECOACH_TEST_SEED={seed!r} is not a whole number: give "
                                "one (e.g. the one a failed run printed), or unset it") from None
    # Set before any test (and inherited by every subprocess a test starts). The clip cache is
    # shared by the workers of one run (it is safe for concurrent use, and speech is then
    # rendered once); each worker keeps its own history.
    os.environ.setdefault("VOICECOACH_TEST_CACHE", str(_private / "cache"))
    os.environ["VOICECOACH_CACHE_DIR"] = os.environ["VOICECOACH_TEST_CACHE"]
    os.environ["VOICECOACH_DATA_DIR"] = str(_private / "data")
    os.environ.setdefault("COLUMNS", "100")
    os.environ.pop("VOICECOACH_DEBUG", None)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # pytest-xdist hands tests out in this order as workers free up (scripts/test): a long test
    # collected last would run alone while the other workers sit idle. The long ones go first,
    # the shares of one long test dealt apart (the first share of each, then the second...) so
    # that its shares do not all run at once; the short ones fill in around them.
    seen: dict[tuple[str, str], int] = {}

    def order(pair: tuple[int, pytest.Item]) -> tuple[int, int, int]:
        position, item = pair
        if item.get_closest_marker("long") is None:
            return (1, 0, position)
        function = (item.nodeid.split("::")[0], getattr(item, "originalname", item.name))
        seen[function] = seen.get(function, -1) + 1
        return (0, seen[function], position)

    items[:] = [item for _, item in sorted(enumerate(items), key=order)]


def pytest_report_header(config: pytest.Config) -> str:
    return f"VOICECOACH_TEST_SEED={os.environ['VOICECOACH_TEST_SEED']} (set it to repeat this run)"


def pytest_unconfigure(config: pytest.Config) -> None:
    # The run's shared cache is in the controller's private folder, so it goes with it; a
    # VOICECOACH_TEST_CACHE given from outside is someone's folder and is left alone.
    shutil.rmtree(_private, ignore_errors=True)


@pytest.fixture
def seed() -> int:
    """The run's random seed: tests that pick random moments derive theirs from it."""
    return int(os.environ["VOICECOACH_TEST_SEED"])


@pytest.fixture
def run_cli(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Run `voicecoach ARGS` in this process (helpers.run_cli), in tmp_path unless told."""
    import helpers

    def run(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 120, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return helpers.run_cli(*args, cwd=cwd or tmp_path, env=env, timeout=timeout, input=input)

    return run


@pytest.fixture
def run_cli_process(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Run `python -m voicecoach ARGS` in a subprocess, as a user would (for what is about the
    process: signals, start-up, the terminal)."""

    def run(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "voicecoach", *args], capture_output=True, text=True,
            cwd=cwd or tmp_path, env={**os.environ, **(env or {})}, timeout=timeout,
        )

    return run


@pytest.fixture(autouse=True)
def _hangup_as_from_a_terminal() -> None:
    """Every test starts its subprocesses with SIGHUP at its default, as a terminal does: an
    ignored SIGHUP is inherited and means `nohup` (voicecoach then rightly carries on), so one
    left ignored by an earlier in-process command would quietly weaken every hangup moment."""
    if getattr(signal, "SIGHUP", None) is not None and \
            signal.getsignal(signal.SIGHUP) is signal.SIG_IGN:
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
