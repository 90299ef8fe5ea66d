"""The terminal side of live play: a big view readable from the mat, keys, or plain cue lines."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import IO, TYPE_CHECKING

from voicecoach import cancel, coach
from voicecoach.errors import os_fault

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.live import Live

    from voicecoach.live.player import Player, PlayerState, Record, SessionResult

HELP = "space pause · n/→ next · p/← back · r repeat · +/- volume · q quit"
#: How often the view is redrawn and the events file written; the audio never waits for it.
TICK = 0.1

# --- keys -------------------------------------------------------------------------------------

_KEYS = {
    b" ": "toggle_pause", b"n": "next_exercise", b"N": "next_exercise",
    b"p": "previous_exercise", b"P": "previous_exercise", b"r": "repeat_last_cue",
    b"R": "repeat_last_cue", b"+": "volume_up", b"=": "volume_up", b"-": "volume_down",
    b"_": "volume_down", b"q": "quit", b"Q": "quit", b"\x03": "quit",
}
_ARROWS = {b"C": "next_exercise", b"D": "previous_exercise"}  # ESC [ C / ESC O C, and D
_WINDOWS_ARROWS = {b"M": "next_exercise", b"K": "previous_exercise"}  # after \x00 or \xe0


class KeyParser:
    """Turns the bytes a terminal sends into commands, across reads that split a sequence."""

    def __init__(self, windows: bool = False) -> None:
        self._buf = b""
        self._windows = windows

    def feed(self, data: bytes) -> list[str]:
        self._buf += data
        out: list[str] = []
        while self._buf:
            b = self._buf
            if self._windows and b[:1] in (b"\x00", b"\xe0"):
                if len(b) < 2:
                    break
                out += [_WINDOWS_ARROWS[b[1:2]]] if b[1:2] in _WINDOWS_ARROWS else []
                self._buf = b[2:]
            elif b[:1] == b"\x1b":
                if len(b) < 2:
                    break  # perhaps the start of an arrow key: wait for the rest
                if b[1:2] not in (b"[", b"O"):
                    self._buf = b[1:]  # a lone Escape, or Alt+key: drop the Escape
                    continue
                # CSI / SS3: optional parameters (Ctrl+arrow is ESC [ 1 ; 5 C), then a final byte.
                j = 2
                while j < len(b) and not 0x40 <= b[j] <= 0x7E:
                    j += 1
                if j == len(b):
                    break
                out += [_ARROWS[b[j : j + 1]]] if b[j : j + 1] in _ARROWS else []
                self._buf = b[j + 1 :]
            else:
                out += [_KEYS[b[:1]]] if b[:1] in _KEYS else []
                self._buf = b[1:]
        return out

    def flush(self) -> None:
        """No more bytes came: an Escape waiting for the rest of a sequence was a lone Escape."""
        self._buf = b""


class KeyReader:
    """Reads single keys on a thread while the terminal is in cbreak mode (no echo, no Enter;
    Ctrl-C still interrupts). The terminal is restored when the block exits, however it exits."""

    def __init__(self, on_command: Callable[[str], None]) -> None:
        self._on_command = on_command
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._saved: list[object] | None = None

    def __enter__(self) -> KeyReader:
        if sys.platform == "win32":
            target = self._read_windows
        else:
            import termios
            import tty

            fd = sys.stdin.fileno()
            self._saved = termios.tcgetattr(fd)
            tty.setcbreak(fd, termios.TCSANOW)
            target = self._read_posix
        self._thread = threading.Thread(target=target, name="voicecoach-keys", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(1.0)
        if self._saved is not None:
            import termios

            termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, self._saved)  # type: ignore[arg-type]  # what tcgetattr gave

    def _read_posix(self) -> None:
        import select

        parser, fd = KeyParser(), sys.stdin.fileno()
        while not self._stop.is_set():
            ready, _, _ = select.select([fd], [], [], 0.05)
            if not ready:
                parser.flush()
                continue
            data = os.read(fd, 64)
            if not data:
                return
            self._dispatch(parser.feed(data))

    def _read_windows(self) -> None:
        import msvcrt

        parser = KeyParser(windows=True)
        while not self._stop.is_set():
            if not msvcrt.kbhit():  # type: ignore[attr-defined]
                time.sleep(0.05)
                continue
            key = msvcrt.getwch()  # type: ignore[attr-defined]
            self._dispatch(parser.feed(key.encode("latin-1", "ignore")))

    def _dispatch(self, commands: list[str]) -> None:
        for command in commands:
            self._on_command(command)


def command_for(player: Player) -> Callable[[str], None]:
    """The function that carries out a key's command on the player."""

    def run(command: str) -> None:
        getattr(player, "stop" if command == "quit" else command)()

    return run


# --- the view ---------------------------------------------------------------------------------

_FONT = {  # 3x5 block digits; each cell is drawn two characters wide
    "0": ("###", "# #", "# #", "# #", "###"), "1": (" # ", "## ", " # ", " # ", "###"),
    "2": ("###", "  #", "###", "#  ", "###"), "3": ("###", "  #", "###", "  #", "###"),
    "4": ("# #", "# #", "###", "  #", "  #"), "5": ("###", "#  ", "###", "  #", "###"),
    "6": ("###", "#  ", "###", "# #", "###"), "7": ("###", "  #", "  #", "  #", "  #"),
    "8": ("###", "# #", "###", "# #", "###"), "9": ("###", "# #", "###", "  #", "###"),
    ":": (" ", "#", " ", "#", " "),
}


def big_text(text: str) -> str:
    """Digits and colons as five lines of block characters, for a countdown seen from afar."""
    rows = []
    for r in range(5):
        cells = "  ".join(_FONT[ch][r] for ch in text if ch in _FONT)
        rows.append(cells.replace("#", "██").replace(" ", "  "))
    return "\n".join(rows)


def _clock(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}" if whole >= 3600 else (
        f"{whole // 60}:{whole % 60:02d}")


def countdown_text(seconds: float) -> str:
    whole = max(0, int(seconds + 0.999))  # 2.3 s left shows 3, as a person counts down
    return f"{whole // 60}:{whole % 60:02d}" if whole >= 60 else str(whole)


def render(state: PlayerState, title: str) -> RenderableType:
    """The whole screen: exercise, cue, big countdown, next up, progress, status and keys."""
    from rich.align import Align
    from rich.console import Group
    from rich.panel import Panel
    from rich.progress_bar import ProgressBar
    from rich.table import Table
    from rich.text import Text

    if state.exercise is None:
        heading = "Getting ready"
    elif state.resting:
        heading = "Rest"
    else:
        heading = state.exercise
    where = (f"exercise {state.exercise_number} of {state.exercise_count}"
             if state.exercise_number else "")
    cue = state.cue.text if state.cue else ""
    if state.repeating:
        cue = f"(again) {cue}"
    parts: list[RenderableType] = [
        Text(heading.upper(), style="bold cyan", justify="center"),
        Text(where, style="dim", justify="center"),
        Text(""),
        Text(cue, style="bold", justify="center"),
        Text(""),
    ]
    if state.remaining is not None and not state.done:
        parts.append(Align.center(Text(big_text(countdown_text(state.remaining)),
                                       style="bold yellow" if state.resting else "bold green")))
    else:
        parts.append(Text("\n" * 4))
    parts.append(Text(""))
    upcoming = state.next_exercise or "the end"
    parts.append(Text(f"Next: {upcoming}", style="cyan", justify="center"))
    parts.append(Text(""))
    bar = Table.grid(expand=True, padding=(0, 1))
    bar.add_column(ratio=1)
    bar.add_column(justify="right")
    bar.add_row(ProgressBar(total=max(state.total, 0.001), completed=state.position),
                f"{_clock(state.position)} / {_clock(state.total)}")
    parts.append(bar)
    status = "⏸  PAUSED — space to continue" if state.paused else "▶  playing"
    volume = f"volume {state.gain_db:+.0f} dB"
    parts.append(Text(f"{status}    {volume}",
                      style="bold magenta" if state.paused else "", justify="center"))
    parts.append(Text(HELP, style="dim", justify="center"))
    return Panel(Group(*parts), title=title, border_style="magenta" if state.paused else "blue")


def cue_line(record: Record) -> str | None:
    """One plain line for a spoken cue (when there is no live view), or None."""
    if not isinstance(record, coach.Onset):
        return None
    where = record.event.exercise or ""
    again = " (again)" if record.repeat else ""
    return f"{coach.format_clock(record.planned):>7}  {where:<24}  {record.event.text}{again}"


# --- the session loop -------------------------------------------------------------------------


def watch(
    player: Player,
    *,
    title: str,
    interactive: bool,
    events: IO[str] | None = None,
    lines: IO[str] | None = None,
) -> SessionResult:
    """Start the player and follow it to the end: the live view and keys when interactive, the
    events file, and plain cue lines on `lines`. Every exit path stops the audio and puts the
    terminal back."""
    with contextlib.ExitStack() as stack:
        player.start()  # first: no sound device fails before the screen is touched
        stack.callback(player.close)
        live = None
        if interactive:
            live = stack.enter_context(_live_screen())
            stack.enter_context(KeyReader(command_for(player)))
        shown = None
        while True:
            cancel.check()  # Ctrl-C or SIGTERM: stop the audio, restore the terminal, report
            result = player.wait(TICK)
            _write(player.drain(), events, lines)
            if live is not None:
                state = player.state()
                key = (round(state.position), state.remaining is not None and
                       countdown_text(state.remaining), state.paused, state.gain_db,
                       state.event, state.repeating)
                if key != shown:
                    live.update(render(state, title), refresh=True)
                    shown = key
            if result is not None:
                return result
    raise AssertionError("unreachable")


def _write(records: list[Record], events: IO[str] | None, lines: IO[str] | None) -> None:
    try:
        _write_records(records, events, lines)
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise os_fault(exc, "writing the events file") from None


def _write_records(records: list[Record], events: IO[str] | None, lines: IO[str] | None) -> None:
    for record in records:
        if events is not None:
            events.write(json.dumps(record.as_json(), ensure_ascii=False) + "\n")
        if lines is not None and (line := cue_line(record)) is not None:
            lines.write(line + "\n")
    for stream in (events, lines):
        if records and stream is not None:
            stream.flush()


@contextlib.contextmanager
def _live_screen() -> Iterator[Live]:
    from rich.console import Console
    from rich.live import Live

    console = Console(stderr=True)
    with Live(console=console, screen=True, auto_refresh=False, redirect_stdout=False,
              redirect_stderr=False, transient=True) as live:
        yield live
