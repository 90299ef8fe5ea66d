"""The phone page in a real browser (Debian's chromium, driven by Playwright) against a real
`voicecoach serve`: it plays, shows the cue of the moment, seeks with Range, drives the lock
screen, and a session played through on it counts in history."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from serve_support import Server, answer_screening, routines_dir

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--autoplay-policy=no-user-gesture-required",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", "--disable-gpu"]
#: Set by .ci/run: there a missing browser is a failure, not a skip.
REQUIRE = "VOICECOACH_REQUIRE_BROWSER"
MISSING = (f"BROWSER TESTS NOT RUN: {CHROMIUM} is missing; install Debian's chromium "
           "(scripts/test does when it can: apt-get install -y chromium)")
if not Path(CHROMIUM).exists() and not os.environ.get(REQUIRE):
    pytest.skip(MISSING, allow_module_level=True)  # one line for the whole module
#: A real browser against a real server: the slow lane's (seconds of start-up per module).
#: One worker runs this module (pytest-xdist's loadgroup): one browser and server serve it.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("browser")]
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True,
         "has_touch": True}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(MISSING)  # only reached with $VOICECOACH_REQUIRE_BROWSER set (CI)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("serve-browser")
    folder = routines_dir(home)
    shutil.copy(ROOT / "routines" / "five-minute-back.yaml", folder)
    running = Server(home, "--no-library", "--routines", str(folder)).start()
    answer_screening(running)
    yield running
    assert running.stop() == 130, running.log
    assert "Traceback" not in running.log, running.log


def _open(browser: Any, server: Server, rid: str, init: str | None = None) -> Any:
    context = browser.new_context(**PHONE)
    page = context.new_page()
    if init:
        page.add_init_script(init)
    page.goto(f"{server.url}r/{rid}")
    page.wait_for_function("window.voicecoach && window.voicecoach.ready", timeout=180_000)
    return page


def _now(page: Any) -> dict[str, Any]:
    return page.evaluate("""() => ({t: document.getElementById('audio').currentTime,
        paused: document.getElementById('audio').paused,
        cue: document.getElementById('cue').textContent,
        countdown: document.getElementById('countdown').textContent,
        chapter: window.voicecoach.chapter})""")  # type: ignore[no-any-return]


def _cue_at(events: list[dict[str, Any]], t: float) -> str:
    said = [e["text"] for e in events if e["text"] and e["start"] <= t + 1e-3]
    return said[-1] if said else ""


def _wait(page: Any, condition: str, timeout: float = 30) -> None:
    page.wait_for_function(condition, timeout=timeout * 1000)


@pytest.mark.slow
def test_the_shown_cue_follows_the_audio(browser: Any, server: Server) -> None:
    page = _open(browser, server, "five-minute-back")
    events = page.evaluate("window.voicecoach.track.events")
    page.click("#play")
    _wait(page, "document.getElementById('audio').currentTime > 1")
    seen = set()
    first = _now(page)
    for _ in range(5):
        now = _now(page)
        t = now["t"]
        allowed = {_cue_at(events, t + d / 10) for d in range(-5, 6)}
        assert now["cue"] in allowed, (t, now["cue"])
        seen.add(now["cue"])
        time.sleep(0.3)
    assert _now(page)["t"] - first["t"] > 1, "the track did not play"
    # Into a hold: the countdown shows the seconds left of it.
    hold = next(e for e in events if e["kind"] == "hold")
    page.evaluate(f"document.getElementById('audio').currentTime = {hold['start'] + 0.5}")
    _wait(page, f"document.getElementById('audio').currentTime > {hold['start'] + 1}")
    now = _now(page)
    inner = ("countdown", "halfway", "breath", "next-up")
    after = events.index(hold) + 1
    while events[after]["kind"] in inner:
        after += 1
    left = events[after]["start"] - now["t"]
    assert now["countdown"] and abs(int(now["countdown"]) - left) <= 1.5, (now, left)
    page.context.close()


def test_tapping_a_chapter_early_seeks_there_with_range(browser: Any, server: Server) -> None:
    """At once after the page is ready, long before the end of the track could be buffered:
    a browser seeks with Range requests, and a server that ignored them would leave it at 0."""
    ranges: list[tuple[str, int]] = []
    context = browser.new_context(**PHONE)
    page = context.new_page()
    page.on("response", lambda r: "/track/" in r.url and ranges.append(
        (r.request.headers.get("range", ""), r.status)))
    page.goto(f"{server.url}r/five-minute-back")
    page.wait_for_function("window.voicecoach && window.voicecoach.ready", timeout=180_000)
    chapters = page.evaluate("window.voicecoach.track.chapters")
    last = len(chapters) - 1
    page.click(f"#chapters button[data-index='{last}']")
    start = chapters[last]["start"]
    _wait(page, f"document.getElementById('audio').currentTime > {start + 1}")
    now = _now(page)
    assert start <= now["t"] < start + 8 and not now["paused"], (now, start)
    assert now["chapter"] == last
    assert any(status == 206 and header.startswith("bytes=") and header != "bytes=0-"
               for header, status in ranges), ranges
    page.context.close()


RECORD_HANDLERS = """
window.__actions = {};
if (navigator.mediaSession) {
  const original = navigator.mediaSession.setActionHandler.bind(navigator.mediaSession);
  navigator.mediaSession.setActionHandler = (action, handler) => {
    window.__actions[action] = handler;
    return original(action, handler);
  };
}
"""


@pytest.mark.slow
def test_media_session_shows_the_exercise_and_skips_between_them(browser: Any,
                                                                 server: Server) -> None:
    page = _open(browser, server, "five-minute-back", init=RECORD_HANDLERS)
    actions = page.evaluate("Object.keys(window.__actions)")
    assert {"play", "pause", "nexttrack", "previoustrack", "seekto"} <= set(actions)
    chapters = page.evaluate("window.voicecoach.track.chapters")
    page.click("#play")
    _wait(page, "document.getElementById('audio').currentTime > 0.5")

    def metadata() -> list[str]:
        return page.evaluate("(() => { const m = navigator.mediaSession.metadata;"  # type: ignore[no-any-return]
                             " return [m.title, m.artist, m.album]; })()")

    assert metadata() == [chapters[0]["title"], "voicecoach", "Five-minute back"]
    page.evaluate("window.__actions.nexttrack({action: 'nexttrack'})")
    page.evaluate("window.__actions.nexttrack({action: 'nexttrack'})")
    _wait(page, f"document.getElementById('audio').currentTime >= {chapters[2]['start']}")
    assert abs(_now(page)["t"] - chapters[2]["start"]) < 2
    assert metadata()[0] == chapters[2]["title"]
    page.evaluate("window.__actions.previoustrack({action: 'previoustrack'})")
    _wait(page, f"document.getElementById('audio').currentTime < {chapters[2]['start']}")
    assert abs(_now(page)["t"] - chapters[1]["start"]) < 2
    assert metadata()[0] == chapters[1]["title"]
    page.context.close()


def _cli(home: Path, *args: str) -> Any:
    done = subprocess.run([sys.executable, "-m", "voicecoach", *args], capture_output=True,
                          text=True, timeout=300,
                          env={**os.environ, "VOICECOACH_DATA_DIR": str(home / "data")})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.slow
def test_a_session_played_on_the_page_counts(browser: Any, tmp_path: Path) -> None:
    """The page asks the screening questions first (stored where `voicecoach safety` keeps
    them); a session played to the end is a phone session in history, and the once-a-day
    exercise is left out of `show --for play` afterwards."""
    folder = routines_dir(tmp_path)
    server = Server(tmp_path, "--no-library", "--routines", str(folder)).start()
    try:
        context = browser.new_context(**PHONE)
        page = context.new_page()
        page.goto(f"{server.url}r/two-quick-moves")
        page.wait_for_selector("#screening:not([hidden])", timeout=30_000)
        for radio in page.query_selector_all("#questions input[value='no']"):
            radio.check()
        page.click("#questions button[type='submit']")
        page.wait_for_function("window.voicecoach && window.voicecoach.ready", timeout=180_000)
        assert _cli(tmp_path, "safety", "--show", "--json")["answered"] is True
        page.evaluate("document.getElementById('audio').playbackRate = 4")
        page.click("#play")
        page.evaluate("document.getElementById('audio').playbackRate = 4")
        _wait(page, "document.getElementById('audio').ended", timeout=120)
        deadline = time.monotonic() + 30
        while True:
            sessions = _cli(tmp_path, "history", "--json")
            sessions = sessions["sessions"] if isinstance(sessions, dict) else sessions
            if sessions or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        context.close()
    finally:
        assert server.stop() == 130
    assert [(s["kind"], s["completed"], s["exercises_done"], s["counts"]) for s in sessions] == [
        ("phone", True, 2, True)]
    shown = _cli(tmp_path, "show", str(folder / "two-quick-moves.yaml"), "--for", "play",
                 "--json")
    assert [x["exercise"] for x in shown["left_out"]] == ["Shoulder roll"]
