"""A real `voicecoach serve` process for the serve tests, and a tiny routine with a limit."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

#: Two short exercises; the second may be done once a day, so a session changes what is left out.
SHORT = """\
title: Two quick moves
description: A short routine for the server tests.
equipment: [mat]
defaults:
  rest: 2s
  countdown: 2
exercises:
  - name: Neck turn
    setup:
      - say: Turn your head to the left.
    hold: 4s
  - name: Shoulder roll
    limits:
      max_per_day: 1
      note: Once a day.
    setup:
      - say: Roll your shoulders back.
    hold: 4s
"""


class Server:
    """`voicecoach serve --json` on 127.0.0.1 in its own data and track folders."""

    def __init__(self, home: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.home = home
        self.env = {**os.environ, "VOICECOACH_DATA_DIR": str(home / "data"),
                    "VOICECOACH_TRACKS_DIR": str(home / "tracks"), **(env or {})}
        self.args = args
        self.proc: subprocess.Popen[str] | None = None
        self.stderr: list[str] = []
        self._lines: queue.Queue[str] = queue.Queue()
        self._err_reader: threading.Thread | None = None

    def start(self, timeout: float = 60) -> Server:
        self.stderr = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "voicecoach", "serve", "--host", "127.0.0.1", "--port", "0",
             "--json", *self.args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self.env)
        self._err_reader = threading.Thread(target=self._read_err, daemon=True)
        self._err_reader.start()
        first = self._first_line(timeout)
        listening = json.loads(first)
        self.url: str = listening["url"]
        assert self.url.startswith("http://127.0.0.1:"), self.url  # --host given: that one
        self.feed: str = listening["feed"]
        return self

    def _first_line(self, timeout: float) -> str:
        assert self.proc is not None and self.proc.stdout is not None
        out = self.proc.stdout
        threading.Thread(target=lambda: self._lines.put(out.readline()), daemon=True).start()
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no address within {timeout} s: {self.stderr}") from None
        assert line, f"serve ended before listening: {''.join(self.stderr)}"
        return line

    def _read_err(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line)

    def get(self, path: str, headers: dict[str, str] | None = None, method: str = "GET",
            data: bytes | None = None, timeout: float = 300) -> tuple[int, dict[str, str], bytes]:
        url = path if path.startswith("http") else self.url + path
        request = urllib.request.Request(url, headers=headers or {}, method=method, data=data)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:
                return answer.status, _lower(answer.headers), answer.read()
        except urllib.error.HTTPError as exc:
            return exc.code, _lower(exc.headers), exc.read()

    def json(self, path: str, **kwargs: object) -> object:
        status, _, body = self.get(path, **kwargs)  # type: ignore[arg-type]
        assert status == 200, (status, body[:300])
        return json.loads(body)

    def post(self, path: str, payload: object) -> tuple[int, bytes]:
        status, _, body = self.get(path, method="POST", data=json.dumps(payload).encode(),
                                   headers={"Content-Type": "application/json"})
        return status, body

    def stop(self, sig: int = signal.SIGINT) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            # Its last lines ("stopped") are read once the pipe ends: the process having
            # exited does not mean the reader has them yet.
            if self._err_reader is not None:
                self._err_reader.join(timeout=10)

    @property
    def log(self) -> str:
        return "".join(self.stderr)


def routines_dir(tmp: Path) -> Path:
    folder = tmp / "routines"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "two-quick-moves.yaml").write_text(SHORT, encoding="utf-8")
    return folder


def answer_screening(server: Server) -> None:
    status, body = server.post("api/screening", {"answers": {
        k: False for k in ("chronic", "diagnosis", "surgery", "pregnant", "condition")}})
    assert status == 200, body


def _lower(headers: object) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}  # type: ignore[attr-defined]
