"""`voicecoach serve` over real HTTP: a real server process, real speech, real ffmpeg."""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path

import feedparser
import pytest
from mutagen.id3 import ID3

from serve_support import SHORT, Server, answer_screening, routines_dir
from voicecoach.audio.ffmpeg import decode_pcm
from voicecoach.audio.pcm import SAMPLE_RATE

#: One worker runs this module (pytest-xdist's loadgroup): its shared server (module-scoped)
#: starts once.
pytestmark = pytest.mark.xdist_group("serve")

ROOT = Path(__file__).resolve().parents[1]
PODCAST = "{https://podcastindex.org/namespace/1.0}"
ITUNES = "{http://www.itunes.com/dtds/podcast-1.0.dtd}"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("serve")
    routines_dir(home)
    return home


@pytest.fixture(scope="module")
def server(home: Path):  # type: ignore[no-untyped-def]
    running = Server(home, "--no-library", "--routines", str(home / "routines")).start()
    answer_screening(running)
    yield running
    assert running.stop() == 130, running.log
    assert "Traceback" not in running.log, running.log


def _made(server: Server, rid: str) -> dict:  # type: ignore[type-arg]
    return server.json(f"api/routines/{rid}")  # type: ignore[return-value]


def _show_for_play(home: Path, rid: str) -> dict:  # type: ignore[type-arg]
    done = subprocess.run(
        [sys.executable, "-m", "voicecoach", "show", str(home / "routines" / f"{rid}.yaml"),
         "--for", "play", "--lead-in", "1", "--json"],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "VOICECOACH_DATA_DIR": str(home / "data")})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_served_track_decodes_to_the_live_play_plan(server: Server, home: Path,
                                                    tmp_path: Path) -> None:
    _decodes_to_the_plan(server, home, tmp_path, "two-quick-moves")


@pytest.mark.slow
def test_a_long_served_track_decodes_to_the_live_play_plan(tmp_path: Path) -> None:
    shutil.copy(ROOT / "routines" / "five-minute-back.yaml", routines_dir(tmp_path))
    server = Server(tmp_path, "--no-library", "--routines", str(tmp_path / "routines")).start()
    try:
        answer_screening(server)
        _decodes_to_the_plan(server, tmp_path, tmp_path, "five-minute-back")
    finally:
        assert server.stop() == 130


def _decodes_to_the_plan(server: Server, home: Path, tmp_path: Path, rid: str) -> None:
    made = _made(server, rid)
    status, headers, body = server.get(made["track"])
    assert status == 200 and int(headers["content-length"]) == len(body) == made["size"]
    assert headers["content-type"] == "audio/mpeg"
    (tmp_path / f"{rid}.mp3").write_bytes(body)
    seconds = len(decode_pcm(tmp_path / f"{rid}.mp3")) / 2 / SAMPLE_RATE
    expected = _show_for_play(home, rid)
    assert abs(seconds - expected["duration"]) <= 0.05, (rid, seconds, expected["duration"])
    assert [e["text"] for e in made["events"]] == [e["text"] for e in expected["events"]]


def test_range_requests_return_exactly_those_bytes(server: Server, seed: int) -> None:
    made = _made(server, "two-quick-moves")
    _, _, whole = server.get(made["track"])
    size = len(whole)
    rng = random.Random(seed)
    cases = [(0, 0), (size - 1, size - 1), (0, size - 1)]
    cases += [tuple(sorted(rng.randrange(size) for _ in range(2))) for _ in range(12)]
    for start, end in cases:
        status, headers, body = server.get(made["track"], {"Range": f"bytes={start}-{end}"})
        assert status == 206, (start, end, status)
        assert headers["content-range"] == f"bytes {start}-{end}/{size}"
        assert int(headers["content-length"]) == end - start + 1
        assert body == whole[start:end + 1], (start, end, seed)
    tail = rng.randrange(1, size)
    status, _, body = server.get(made["track"], {"Range": f"bytes=-{tail}"})
    assert status == 206 and body == whole[-tail:]
    start = rng.randrange(size)
    status, _, body = server.get(made["track"], {"Range": f"bytes={start}-"})
    assert status == 206 and body == whole[start:]
    for unsatisfiable in (f"bytes={size}-", f"bytes={size + 10}-{size + 20}"):
        status, headers, _ = server.get(made["track"], {"Range": unsatisfiable})
        assert status == 416 and headers["content-range"] == f"bytes */{size}"
    status, headers, body = server.get(made["track"], method="HEAD")
    assert status == 200 and int(headers["content-length"]) == size and body == b""
    assert headers["accept-ranges"] == "bytes"


def _byteranges(content_type: str, body: bytes) -> list[tuple[str, bytes]]:
    """The parts of a multipart/byteranges body, each (Content-Range, bytes), as a client
    that follows RFC 2046 reads them (CRLF, the boundary from Content-Type)."""
    assert content_type.startswith("multipart/byteranges; boundary="), content_type
    boundary = content_type.split("boundary=", 1)[1].encode()
    assert body.endswith(b"\r\n--" + boundary + b"--\r\n"), body[-80:]
    parts = []
    for chunk in body.split(b"\r\n--" + boundary)[1:-1]:
        head, data = chunk.split(b"\r\n\r\n", 1)
        fields = dict(line.split(b": ", 1) for line in head.split(b"\r\n")[1:])
        assert fields[b"Content-Type"] == b"audio/mpeg"
        parts.append((fields[b"Content-Range"].decode(), data))
    return parts


def test_every_form_of_range_is_answered_as_rfc_9110_says(server: Server, seed: int) -> None:
    """Several ranges in one multipart/byteranges body (out of order, overlapping ones merged),
    a suffix longer than the file (all of it), another unit or an If-Range of another file
    (ignored: the whole file), malformed bytes ranges (416), and never an error in the log."""
    made = _made(server, "two-quick-moves")
    _, headers, whole = server.get(made["track"])
    size, etag = len(whole), headers["etag"]
    rng = random.Random(seed)
    # a past 10 so that a-b stays apart from 5-9 (touching ranges are merged), and at least
    # three apart so that a+1 to b-1 is a range (a reversed one is 416).
    a, b, c = sorted(rng.sample(range(20, size - 10, 3), 3))
    cases = {
        f"bytes={b}-{c}, 0-9": [(0, 9), (b, c)],
        f"bytes=0-4,5-9,{a}-{b}": [(0, 9), (a, b)],  # touching ranges are one
        f"bytes={a}-{b},{a + 1}-{b - 1},-5": [(a, b), (size - 5, size - 1)],
        f"bytes=0-0,{size - 1}-,": [(0, 0), (size - 1, size - 1)],
    }
    for header, want in cases.items():
        status, headers, body = server.get(made["track"], {"Range": header})
        assert status == 206 and int(headers["content-length"]) == len(body), header
        assert "content-range" not in headers, header  # it is in each part
        assert _byteranges(headers["content-type"], body) == [
            (f"bytes {s}-{e}/{size}", whole[s:e + 1]) for s, e in want], (header, seed)
    for header in (f"bytes=-{size * 3}", "bytes=0-" + "9" * 5000, "items=0-9", "0-9", "none"):
        status, headers, body = server.get(made["track"], {"Range": header})
        expected = 206 if header.startswith("bytes") else 200
        assert (status, body) == (expected, whole), header
    status, _, body = server.get(made["track"], {"Range": "bytes=0-9", "If-Range": etag})
    assert (status, body) == (206, whole[:10])
    status, _, body = server.get(made["track"], {"Range": "bytes=0-9", "If-Range": '"other"'})
    assert (status, body) == (200, whole)
    for header in ("bytes=", "bytes=-", "bytes=5-1", "bytes=abc", "bytes=1-2-3", "bytes=--1",
                   "bytes=-0", "bytes=\u0663-", "bytes=0-1," + ",".join(["2-3"] * 40),
                   f"bytes={size}-", "bytes=" + "9" * 5000 + "-"):
        status, headers, body = server.get(made["track"], {"Range": header.encode(
            "utf-8").decode("latin-1")})
        assert (status, headers["content-range"], body) == (416, f"bytes */{size}", b""), header
    status, headers, body = server.get(made["track"], {"Range": "bytes=0-1,4-5"}, method="HEAD")
    assert status == 206 and body == b"" and int(headers["content-length"]) > 4
    assert "ERROR" not in server.log and "Traceback" not in server.log, server.log


def test_feed_holds_every_field(server: Server) -> None:
    status, headers, raw = server.get("feed")
    assert status == 200 and headers["content-type"].startswith("application/rss+xml")
    parsed = feedparser.parse(raw)
    assert not parsed.bozo, parsed.bozo_exception
    assert parsed.version == "rss20"
    assert parsed.feed.get("itunes_block") in (1, "Yes", "yes", True)
    root = ET.fromstring(raw)
    channel = root.find("channel")
    assert channel is not None and channel.findtext(f"{ITUNES}block") == "Yes"
    items = channel.findall("item")
    assert [i.findtext("title") for i in items] == ["Two quick moves"]
    port = server.url.split(":")[2].split("/")[0]
    for entry, item in zip(parsed.entries, items, strict=True):
        enclosure = entry.enclosures[0]
        assert enclosure.href.startswith(f"http://127.0.0.1:{port}/")
        status, _, body = server.get(enclosure.href)
        assert status == 200 and int(enclosure.length) == len(body)
        assert enclosure.type == "audio/mpeg"
        assert entry.id and entry.id == item.findtext("guid")
        duration = entry.itunes_duration
        hours, minutes, seconds = map(int, duration.split(":"))
        rid = enclosure.href.split("/track/")[1].split("/")[0]
        assert abs(hours * 3600 + minutes * 60 + seconds - _made(server, rid)["duration"]) <= 0.5
        chapters = item.find(f"{PODCAST}chapters")
        transcript = item.find(f"{PODCAST}transcript")
        assert chapters is not None and chapters.get("type") == "application/json+chapters"
        assert transcript is not None and transcript.get("type") == "text/vtt"
        status, _, vtt = server.get(transcript.get("url", ""))
        assert status == 200 and vtt.startswith(b"WEBVTT\n")
        texts = [e["text"] for e in _made(server, rid)["events"] if e["text"]]
        assert vtt.decode().count(" --> ") == len(texts)


def test_feed_and_page_links_use_the_address_the_phone_reached(server: Server) -> None:
    """The phone may reach this machine by another name or address than the printed one: the
    links it is given use what it reached; a Host that is not an address gets the printed one."""
    token = server.url.rstrip("/").rsplit("/", 1)[1]
    printed = server.url.rsplit("/", 2)[0]
    for host, root in (("192.168.1.50:8765", "http://192.168.1.50:8765"),
                       ("[fe80::1]:8765", "http://[fe80::1]:8765"),
                       ("laptop.local:8765", "http://laptop.local:8765"),
                       ("a b", printed), ("x/y@evil", printed)):
        _, _, raw = server.get("feed", {"Host": host})
        urls = [e.get("url") for e in ET.fromstring(raw).iter()
                if e.tag in ("enclosure", f"{PODCAST}chapters", f"{PODCAST}transcript")]
        assert len(urls) == 3 and all(u.startswith(f"{root}/{token}/") for u in urls), (host, urls)
        made = json.loads(server.get("api/routines/two-quick-moves", {"Host": host})[2])
        assert made["track"].startswith(f"{root}/{token}/track/"), (host, made["track"])


@pytest.mark.slow  # a server of its own (the fast lane has the shared one and the phone's)
def test_routines_named_in_any_letters_get_ascii_links_that_work(tmp_path: Path) -> None:
    """A routine file named in other scripts, with a title full of markup characters: the feed
    parses, every link in it and in the page's JSON is a URL (percent-encoded ASCII, as RSS
    and podcast apps need), and each one answers."""
    folder = tmp_path / "routines"
    folder.mkdir()
    (folder / "Übung Rücken.yaml").write_text(
        SHORT.replace("Two quick moves", 'Übung <b>Rücken</b> & "co" ]]>'), encoding="utf-8")
    (folder / "日本.yaml").write_text(SHORT, encoding="utf-8")
    server = Server(tmp_path, "--no-library", "--routines", str(folder)).start()
    try:
        answer_screening(server)
        ids = [r["id"] for r in server.json("api/routines")["routines"]]  # type: ignore[index]
        assert ids == ["übung-rücken", "日本"]
        for rid in ids:
            made = _made(server, urllib.parse.quote(rid))
            assert made["track"].isascii() and server.get(made["track"])[0] == 200, made["track"]
        _, _, raw = server.get("feed")
        parsed = feedparser.parse(raw)
        assert not parsed.bozo, parsed.bozo_exception
        assert [e.title for e in parsed.entries] == ['Übung <b>Rücken</b> & "co" ]]>',
                                                     "Two quick moves"]
        urls = [e.get("url") for e in ET.fromstring(raw).iter() if e.get("url")]
        assert len(urls) == 6
        for url in urls:
            assert url.isascii() and server.get(url)[0] == 200, url
    finally:
        assert server.stop() == 130


@pytest.mark.slow  # a server of its own (the fast lane has the shared one and the phone's)
def test_files_whose_names_make_one_id_are_both_served(tmp_path: Path) -> None:
    """`a b.yaml` and `A&B.yaml` both make the id a-b: neither is silently hidden; the second's
    id carries a suffix from its own name, the same whatever else the folder holds."""
    from voicecoach.serve import core

    folder = tmp_path / "routines"
    folder.mkdir()
    (folder / "a b.yaml").write_text(SHORT, encoding="utf-8")
    (folder / "A&B.yaml").write_text(SHORT.replace("Two quick moves", "Other"), encoding="utf-8")
    found = core.routines([folder], with_library=False)
    assert len(found) == 2 and "a-b" in found
    (other,) = set(found) - {"a-b"}
    assert other.startswith("a-b-")
    (folder / "zz.yaml").write_text(SHORT, encoding="utf-8")
    assert {k: v.name for k, v in core.routines([folder], with_library=False).items()} == {
        **{k: v.name for k, v in found.items()}, "zz": "zz.yaml"}
    server = Server(tmp_path, "--no-library", "--routines", str(folder)).start()
    try:
        answer_screening(server)
        listed = {r["id"]: r["title"] for r in server.json("api/routines")["routines"]}  # type: ignore[index]
        title = {"a b.yaml": "Two quick moves", "A&B.yaml": "Other"}
        assert listed == {"a-b": title[found["a-b"].name], other: title[found[other].name],
                          "zz": "Two quick moves"}
        for rid in ("a-b", other):
            made = _made(server, rid)
            assert made["id"] == rid and server.get(made["track"])[0] == 200
    finally:
        assert server.stop() == 130


def test_json_chapters_equal_the_id3_chapters(server: Server, tmp_path: Path) -> None:
    _, _, raw = server.get("feed")
    for item in ET.fromstring(raw).iter("item"):
        url = item.find(f"{PODCAST}chapters").get("url")  # type: ignore[union-attr]
        enclosure = item.find("enclosure").get("url")  # type: ignore[union-attr]
        chapters = json.loads(server.get(url or "")[2])["chapters"]
        starts = [c["startTime"] for c in chapters]
        assert starts == sorted(starts) and len(chapters) >= 2
        mp3 = tmp_path / "t.mp3"
        mp3.write_bytes(server.get(enclosure or "")[2])
        frames = sorted(ID3(mp3).getall("CHAP"), key=lambda c: c.start_time)
        assert [(c.sub_frames["TIT2"].text[0], c.start_time, c.end_time) for c in frames] == [
            (c["title"], round(c["startTime"] * 1000), round(c["endTime"] * 1000))
            for c in chapters]


def _paths(server: Server) -> list[str]:
    made = _made(server, "two-quick-moves")
    rest = made["track"].split(server.url, 1)[1]
    key = made["key"]
    return ["", "r/two-quick-moves", "static/app.js", "static/style.css", "api/routines",
            "api/routines/two-quick-moves", "api/screening", "api/events", rest, "feed",
            f"chapters/two-quick-moves/{key}.json", f"transcript/two-quick-moves/{key}.vtt"]


def test_without_the_token_every_route_is_404(server: Server) -> None:
    root, token = server.url.rstrip("/").rsplit("/", 1)
    wrong = [token[:-1] + ("A" if token[-1] != "A" else "B"), token[:-1], token + "x",
             token.upper() if token.upper() != token else token.lower(), "", "%00", ".."]
    for path in _paths(server):
        status, _, _ = server.get(f"{root}/{token}/{path}")
        assert status in (200, 405), path  # the route exists (events is POST only)
        for bad in wrong:
            for method in ("GET", "POST", "HEAD"):
                status, _, _ = server.get(f"{root}/{bad}/{path}", method=method,
                                             data=b"{}" if method == "POST" else None)
                assert status == 404, (bad, path, method, status)
        status, _, _ = server.get(f"{root}/{path}")
        assert status == 404, path


def test_no_answer_sends_the_phone_outside_the_token(server: Server) -> None:
    """Every route with a slash added, doubled or with dots: not found, or a redirect that
    keeps the token (a redirect without it leads to a 404)."""
    root, token = server.url.rstrip("/").rsplit("/", 1)
    for path in _paths(server):
        for variant in (f"{path}/", f"{path}//", f"{path}/.", f"./{path}", f"/{path}"):
            request = urllib.request.Request(f"{root}/{token}/{variant}")
            opener = urllib.request.build_opener(_NoRedirect)
            try:
                with opener.open(request, timeout=60) as answer:
                    status, location = answer.status, answer.headers.get("location")
            except urllib.error.HTTPError as exc:
                status, location = exc.code, exc.headers.get("location")
            assert status in (200, 404, 405) or (
                status in (301, 302, 307, 308) and location.startswith(f"/{token}/")), (
                variant, status, location)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def _raw(port: int, request: bytes, *, complete: bool = True) -> int:
    """Send bytes as they are; the status code of the answer (0: the server closed first).

    An incomplete request (its body shorter than it says, or chunked) is followed by the end of
    the client's writing, as a client that gives up mid-request would, so the server does not
    wait for the rest. A complete one is not: uvicorn takes a client's half-close as a hang-up
    and drops the answer unless it was already written, so whether one got through would depend
    on the starlette version (0.40 answers 404 and 405 from a worker thread) and the load.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        try:
            sock.sendall(request)
            if not complete:
                sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        answer = b""
        while b"\r\n" not in answer:
            try:
                chunk = sock.recv(4096)
            except OSError:
                break
            if not chunk:
                break
            answer += chunk
    if not answer.startswith(b"HTTP/1.1 "):
        return 0
    return int(answer[9:12])


def _malformed(rng: random.Random, token: str, key: str) -> tuple[bytes, bool]:
    """A malformed request, and whether its body is as long as its Content-Length says."""
    paths = [f"/{token}/track/two-quick-moves/{key}.mp3", f"/{token}/api/events",
             f"/{token}/api/screening", f"/{token}/api/routines/{'x' * rng.randrange(300)}",
             f"/{token}/static/../../etc/passwd", f"/{token}/r/%2e%2e%2fsecret",
             f"/{token}/track/two-quick-moves/{'0' * 32}.mp3", f"/{token}/feed",
             f"/{token}/chapters/nope/{key}.json", "/", f"/{token}/" + "a/" * 500,
             f"/{token}/api/routines/%ff%fe", f"/{token}/%00"]
    ranges = ["bytes=", "bytes=-", "bytes=5-1", "bytes=abc", "items=0-1", "bytes=0-1,2-3",
              "bytes=99999999999999999999-", "bytes=--1", "bytes=1-2-3", " bytes = 1 - 2",
              "bytes=-0", "bytes=0-0,-1", "bytes=" + ",".join(["0-1"] * 300), "\x7f"]
    bodies = [b"{", b"[]", b"null", b'{"session": "x"}', b'{"session": "aaaaaaaa", "event": 1}',
              json.dumps({"session": "a" * 10, "event": "start", "routine": "two-quick-moves",
                          "key": "f" * 32}).encode(),
              json.dumps({"session": "a" * 10, "event": "end", "position": 1e308}).encode(),
              json.dumps({"answers": {"chronic": "yes"}}).encode(), b"\xff\xfe" * 10,
              b"x" * rng.choice([10, 5000, 70000]), json.dumps({"answers": []}).encode()]
    method = rng.choice(["GET", "POST", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS", "BREW",
                         "G\x00T"])
    path = rng.choice(paths)
    lines = [f"{method} {path} HTTP/1.1", "Host: " + rng.choice(
        ["127.0.0.1", "evil.example:99999", "x" * 300, "", "[::1]:80", "a b"])]
    if rng.random() < 0.6:
        lines.append("Range: " + rng.choice(ranges))
    if rng.random() < 0.1:
        lines.append("X-Big: " + "y" * rng.choice([100, 20000, 100000]))
    body = rng.choice(bodies) if rng.random() < 0.6 else b""
    length = rng.choice([str(len(body)), str(len(body)), "-1", "abc", "99999999"])
    if rng.random() < 0.2:
        lines.append("Transfer-Encoding: chunked")
    else:
        lines.append(f"Content-Length: {length}")
    lines.append("Content-Type: " + rng.choice(["application/json", "text/plain", "x"]))
    complete = f"Content-Length: {len(body)}" in lines
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body, complete


def _fuzz(server: Server, count: int, seed: int) -> None:
    rng = random.Random(seed)
    token = server.url.rstrip("/").rsplit("/", 1)[1]
    key = _made(server, "two-quick-moves")["key"]
    port = int(server.url.split(":")[2].split("/")[0])
    seen: dict[int, int] = {}
    for n in range(count):
        request, complete = _malformed(rng, token, key)
        status = _raw(port, request, complete=complete)
        seen[status] = seen.get(status, 0) + 1
        assert status < 500, (n, seed, request[:300], status)
        # A request the server has whole is always answered; only a cut one may go unanswered.
        assert status or not complete, (n, seed, request[:300], "no answer")
    assert server.proc is not None and server.proc.poll() is None
    assert not any(word in server.log for word in ("Traceback", "Exception", "ERROR")), server.log
    assert sum(v for k, v in seen.items() if 400 <= k < 500) > count // 2, seen


def test_malformed_requests_get_4xx_never_5xx(server: Server, seed: int) -> None:
    _fuzz(server, 150, seed)


@pytest.mark.slow
def test_a_thousand_malformed_requests_get_4xx_never_5xx(server: Server, seed: int) -> None:
    _fuzz(server, 1200, seed + 1)


def test_events_are_validated_and_small(server: Server) -> None:
    assert server.post("api/events", {"session": "abc"})[0] == 400
    status, _, _ = server.get("api/events", method="POST", data=b"{" * 5000,
                              headers={"Content-Type": "application/json"})
    assert status == 413
    assert server.post("api/events", {"session": "abcdefgh", "event": "end"})[0] == 404
    assert server.post("api/events", {"session": "abcdefgh", "event": "start",
                                      "routine": "two-quick-moves", "key": "0" * 32})[0] == 404
    assert server.post("api/screening", {"answers": {"chronic": True}})[0] == 400


def _history(home: Path) -> dict:  # type: ignore[type-arg]
    done = subprocess.run([sys.executable, "-m", "voicecoach", "history", "--json"],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "VOICECOACH_DATA_DIR": str(home / "data")})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_a_phone_session_counts_like_a_live_one(tmp_path: Path) -> None:
    """Reported over HTTP as the page reports it: recorded as a phone session, and the limit of
    the exercise played through leaves it out of the next session, in `show --for play` too."""
    routines_dir(tmp_path)
    server = Server(tmp_path, "--no-library", "--routines", str(tmp_path / "routines")).start()
    try:
        answer_screening(server)
        made = _made(server, "two-quick-moves")
        assert made["left_out"] == []
        names = [c["title"] for c in made["chapters"] if c["exercise"]]
        assert names == ["Neck turn", "Shoulder roll"]
        session = {"session": "test-session-1"}
        assert server.post("api/events", {**session, "event": "start", "routine":
                                          "two-quick-moves", "key": made["key"]})[0] == 200
        for name in names:
            assert server.post("api/events", {**session, "event": "reached", "exercise": name,
                                              "position": 1})[0] == 200
            assert server.post("api/events", {**session, "event": "done", "exercise": name,
                                              "position": 2})[0] == 200
        status, body = server.post("api/events", {**session, "event": "end", "completed": True,
                                                  "position": made["duration"]})
        assert status == 200 and json.loads(body)["recorded"]
        after = _made(server, "two-quick-moves")
        assert [x["exercise"] for x in after["left_out"]] == ["Shoulder roll"]
        assert after["key"] != made["key"]  # a new track: what it holds changed
    finally:
        assert server.stop() == 130
    history = _history(tmp_path)
    assert [(s["kind"], s["completed"], s["counts"], s["exercises_done"])
            for s in history["sessions"]] == [("phone", True, True, 2)]
    assert history["streak"]["current"] == 1  # a completed phone session keeps the streak
    shown = _show_for_play(tmp_path, "two-quick-moves")
    assert [x["exercise"] for x in shown["left_out"]] == ["Shoulder roll"]


@pytest.mark.slow  # a server of its own; the fast lane's phone session is the one above
def test_a_limited_move_begun_on_the_phone_counts_for_its_limits_only(tmp_path: Path) -> None:
    """The page reached the limited move and the session ended there: the move counts towards
    its daily count (left out of the next track, and of `show --for play`), the session towards
    nothing else."""
    routines_dir(tmp_path)
    server = Server(tmp_path, "--no-library", "--routines", str(tmp_path / "routines")).start()
    try:
        answer_screening(server)
        made = _made(server, "two-quick-moves")
        session = {"session": "test-session-2"}
        assert server.post("api/events", {**session, "event": "start", "routine":
                                          "two-quick-moves", "key": made["key"]})[0] == 200
        assert server.post("api/events", {**session, "event": "reached",
                                          "exercise": "Shoulder roll", "position": 5})[0] == 200
        status, _ = server.post("api/events", {**session, "event": "end", "completed": False,
                                               "position": 6})
        assert status == 200
        after = _made(server, "two-quick-moves")
        assert [x["exercise"] for x in after["left_out"]] == ["Shoulder roll"]
    finally:
        assert server.stop() == 130
    history = _history(tmp_path)
    assert [(s["kind"], s["counts"], s["exercises_done"]) for s in history["sessions"]] == \
        [("phone", False, 0)]
    shown = _show_for_play(tmp_path, "two-quick-moves")
    assert [x["exercise"] for x in shown["left_out"]] == ["Shoulder roll"]


@pytest.mark.slow  # a server of its own (the fast lane has the shared one and the phone's)
def test_a_routine_file_changed_while_serving_is_served_as_it_is_now(tmp_path: Path) -> None:
    """The server keeps what it read of a routine file only while the file is unchanged: an
    edit in place (even one of the same size and modification time), a broken file, a file
    replaced by rename, added or removed are each seen at the next request, in the list, the
    track and the feed."""
    folder = routines_dir(tmp_path)
    path = folder / "two-quick-moves.yaml"
    server = Server(tmp_path, "--no-library", "--routines", str(folder)).start()

    def listed() -> dict:  # type: ignore[type-arg]
        return server.json("api/routines")["routines"][0]  # type: ignore[index,no-any-return]

    def guid() -> str | None:
        return ET.fromstring(server.get("feed")[2]).findtext("channel/item/guid")

    try:
        answer_screening(server)
        first, key, unchanged = listed(), _made(server, "two-quick-moves")["key"], guid()
        assert first["title"] == "Two quick moves" and guid() == unchanged
        before = path.stat()
        path.write_text(SHORT.replace("Two quick moves", "Two quick mover"), encoding="utf-8")
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
        assert path.stat().st_size == before.st_size
        assert listed()["title"] == "Two quick mover"
        assert _made(server, "two-quick-moves")["key"] != key
        assert guid() not in (None, unchanged)  # another track: another episode
        path.write_text(SHORT.replace("hold: 4s", "hold: 40s"), encoding="utf-8")
        longer = listed()
        assert longer["title"] == "Two quick moves" and longer["duration"] > first["duration"] + 60
        path.write_text("title: [broken\n", encoding="utf-8")
        assert f"{path}:1:" in listed()["refused"]
        assert server.get("api/routines/two-quick-moves")[0] == 409
        assert "<item>" not in server.get("feed")[2].decode()
        (folder / "new.tmp").write_text(SHORT, encoding="utf-8")
        (folder / "new.tmp").replace(path)
        assert listed() == first
        assert _made(server, "two-quick-moves")["key"] == key and guid() == unchanged
        # A file added while serving is offered at once; a removed one is gone.
        (folder / "added.yaml").write_text(SHORT.replace("Two quick", "Added"), "utf-8")
        assert [r["title"] for r in server.json("api/routines")["routines"]] == [  # type: ignore[index]
            "Added moves", "Two quick moves"]
        assert server.get(_made(server, "added")["track"])[0] == 200
        path.unlink()
        assert [r["id"] for r in server.json("api/routines")["routines"]] == ["added"]  # type: ignore[index]
        assert server.get("api/routines/two-quick-moves")[0] == 404
        assert server.get("r/two-quick-moves")[0] == 404
    finally:
        assert server.stop() == 130


@pytest.mark.slow  # a server restarted (the fast lane has the shared one and the phone's)
def test_guids_survive_a_restart_and_change_only_with_the_track(home: Path, server: Server) -> None:
    _, _, raw = server.get("feed")
    before = {i.findtext("title"): i.findtext("guid") for i in ET.fromstring(raw).iter("item")}
    again = Server(home, "--no-library", "--routines", str(home / "routines")).start()
    try:
        assert again.url == server.url.replace(server.url.split(":")[2].split("/")[0],
                                               again.url.split(":")[2].split("/")[0])
        _, _, raw = again.get("feed")
    finally:
        assert again.stop() == 130
    after = {i.findtext("title"): i.findtext("guid") for i in ET.fromstring(raw).iter("item")}
    assert after == before and len(before) == 1


@pytest.mark.slow
def test_new_token_replaces_the_old_one(tmp_path: Path) -> None:
    routines_dir(tmp_path)
    args = ("--no-library", "--routines", str(tmp_path / "routines"))
    first = Server(tmp_path, *args).start()
    first.stop()
    second = Server(tmp_path, *args, "--new-token").start()
    try:
        assert second.url.rsplit("/", 2)[1] != first.url.rsplit("/", 2)[1]
        old = first.url.replace(first.url.split("/")[2], second.url.split("/")[2])
        assert second.get(old)[0] == 404
        assert second.get("")[0] == 200
    finally:
        second.stop()


def test_ctrl_c_stops_cleanly_with_130(tmp_path: Path) -> None:
    routines_dir(tmp_path)
    server = Server(tmp_path, "--no-library", "--routines", str(tmp_path / "routines")).start()
    assert server.get("")[0] == 200
    started = time.monotonic()
    assert server.stop(signal.SIGINT) == 130
    assert time.monotonic() - started < 10
    assert server.log.strip().splitlines()[-1] == "stopped", server.log
    assert "Traceback" not in server.log


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_a_server_killed_while_making_a_track_serves_no_partial_track(
        tmp_path: Path, sig: int, seed: int) -> None:
    """Stopped (Ctrl-C, TERM) or killed at a random moment of a random stage of making a track:
    no description of an unfinished track is left, and after a restart the track served is
    whole and decodes to its length."""
    from voicecoach.serve.tracks import LOCK

    rng = random.Random(seed)
    stage, delay = rng.choice(["speaking", "levelling", "encoding", "tagging"]), rng.random() / 2
    routines_dir(tmp_path)
    shutil.copy(ROOT / "routines" / "five-minute-back.yaml", tmp_path / "routines")
    args = ("--no-library", "--routines", str(tmp_path / "routines"))
    server = Server(tmp_path, *args, env={"VOICECOACH_TRACE_STAGES": "1"}).start()
    answer_screening(server)
    answers: list[int] = []

    def ask() -> None:
        with contextlib.suppress(OSError):  # the server is killed mid-answer
            answers.append(server.get("api/routines/five-minute-back", timeout=120)[0])

    asking = threading.Thread(target=ask, daemon=True)
    asking.start()
    deadline = time.monotonic() + 120
    while f"voicecoach-stage: {stage}" not in server.log:
        assert time.monotonic() < deadline and asking.is_alive(), (stage, seed, server.log)
        time.sleep(0.02)
    time.sleep(delay)  # into the stage: ffmpeg may have written part of the MP3
    code = server.stop(sig)
    assert code == {signal.SIGINT: 130, signal.SIGTERM: 143}.get(sig, -signal.SIGKILL), (
        code, server.log)
    asking.join(30)
    assert answers in ([], [503], [200]), answers  # 200: it was finished before the signal
    described = list((tmp_path / "tracks").glob("*.json"))
    if answers:  # a killed server may have finished it just before it could answer
        assert len(described) == (answers == [200]), (described, answers, stage, delay, seed)
    for about in described:  # only a finished track is described, and it is whole
        assert about.with_suffix(".mp3").stat().st_size == json.loads(about.read_text())["size"]
    again = Server(tmp_path, *args).start()
    try:
        made = _made(again, "five-minute-back")
        status, _, body = again.get(made["track"])
        assert status == 200 and len(body) == made["size"]
        (tmp_path / "t.mp3").write_bytes(body)
        seconds = len(decode_pcm(tmp_path / "t.mp3")) / 2 / SAMPLE_RATE
        assert abs(seconds - made["duration"]) <= 0.05
        assert sorted(p.name for p in (tmp_path / "tracks").iterdir() if p.name != LOCK) == [
            f"{made['key']}.json", f"{made['key']}.mp3"]
    finally:
        again.stop()


@pytest.mark.parametrize("everywhere", [  # a server each: the fast lane keeps the default
    (), pytest.param(("--host", "0.0.0.0"), marks=pytest.mark.slow),
    pytest.param(("--host", "::"), marks=pytest.mark.slow)])
def test_the_printed_address_is_the_home_network_one_with_a_qr_code(
        tmp_path: Path, everywhere: tuple[str, ...]) -> None:
    """Listening on every address (no --host, or 0.0.0.0 or ::, which no phone can open):
    this machine's LAN address is printed (never localhost), and its QR code."""
    import segno

    folder = routines_dir(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "voicecoach", "serve", "--port", "0", "--no-library",
         "--routines", str(folder), *everywhere], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
        env={**os.environ, "VOICECOACH_DATA_DIR": str(tmp_path / "data"),
             "VOICECOACH_TRACKS_DIR": str(tmp_path / "tracks")})
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline()]
        if not lines[0]:  # no network here at all: that must be said, not a localhost URL
            assert proc.wait(30) == 1
            assert "no address on a network" in proc.stderr.read()  # type: ignore[union-attr]
            return
        while "Ctrl-C" not in lines[-1]:
            lines.append(proc.stdout.readline())
            assert lines[-1], lines
        url = lines[0].split(": ", 1)[1].strip()
        host = url.split("/")[2].rsplit(":", 1)[0]
        assert host not in ("localhost", "0.0.0.0", "[::]") and not host.startswith("127."), url
        qr = io.StringIO()
        segno.make(url, error="m").terminal(out=qr, compact=True)
        assert "".join(lines[1:-2]) == qr.getvalue()
        with urllib.request.urlopen(url, timeout=30) as page:
            assert page.status == 200
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) in (130, 1)


def _printed(tmp_path: Path, env: dict[str, str], tty: bool) -> tuple[str, str]:
    """What `serve` prints before it waits (the address, and the QR code or what stands for
    it), to a pipe or to a terminal; and the address."""
    folder = routines_dir(tmp_path)
    out, into = os.openpty() if tty else os.pipe()
    proc = subprocess.Popen(
        [sys.executable, "-m", "voicecoach", "serve", "--host", "127.0.0.1", "--port", "0",
         "--no-library", "--routines", str(folder)], stdout=into, stderr=subprocess.PIPE,
        env={**os.environ, "VOICECOACH_DATA_DIR": str(tmp_path / "data"),
             "VOICECOACH_TRACKS_DIR": str(tmp_path / "tracks"), **env})
    os.close(into)
    printed = b""
    try:
        while b"Ctrl-C" not in printed:
            chunk = os.read(out, 65536)
            assert chunk, (printed, proc.stderr.read())  # type: ignore[union-attr]
            printed += chunk
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 130
        os.close(out)
    text = printed.decode(env.get("PYTHONIOENCODING", "utf-8")).replace("\r\n", "\n")
    return text, text.split("\n", 1)[0].split(": ", 1)[1]


@pytest.mark.parametrize("encoding", [pytest.param(e, marks=pytest.mark.slow)  # a server each
                                      for e in ("latin-1", "ascii")])
def test_a_terminal_that_cannot_draw_blocks_still_gets_a_code_or_a_word(
        tmp_path: Path, encoding: str) -> None:
    """Where the block characters cannot be printed, the QR code is not a square of '?':
    on a terminal it is drawn in reverse-video spaces, to a pipe a line says to type it."""
    import segno

    env = {"PYTHONIOENCODING": encoding, "LC_ALL": "POSIX"}
    piped, url = _printed(tmp_path, env, tty=False)
    assert "?" not in piped.replace(url, "") and "type the address" in piped, piped
    shown, url = _printed(tmp_path, env, tty=True)
    code = io.StringIO()
    segno.make(url, error="m").terminal(out=code)
    assert code.getvalue().replace("\r\n", "\n") in shown and "?" not in shown.replace(url, "")


@pytest.mark.slow
def test_two_phones_asking_at_once_make_the_track_once(tmp_path: Path) -> None:
    folder = routines_dir(tmp_path)
    server = Server(tmp_path, "--no-library", "--routines", str(folder),
                    env={"VOICECOACH_TRACE_STAGES": "1"}).start()
    try:
        answer_screening(server)
        keys: list[str] = []
        errors: list[BaseException] = []

        def phone_asks() -> None:
            try:
                keys.append(_made(server, "two-quick-moves")["key"])
            except BaseException as exc:  # reported below, with the server's log
                errors.append(exc)

        phones = [threading.Thread(target=phone_asks) for _ in range(3)]
        for phone in phones:
            phone.start()
        for phone in phones:
            phone.join(120)
        assert not errors, (errors, server.log)
        assert len(keys) == 3 and len(set(keys)) == 1, keys
        assert server.log.count("voicecoach-stage: encoding") == 1, server.log
    finally:
        server.stop()


@pytest.mark.slow
def test_two_servers_on_one_data_dir_make_a_track_once(tmp_path: Path) -> None:
    """A second `serve` on the same folders, asked for a track while the first is making it,
    waits for it and serves the same bytes; it does not make it again."""
    folder = routines_dir(tmp_path)
    shutil.copy(ROOT / "routines" / "five-minute-back.yaml", folder)
    args = ("--no-library", "--routines", str(folder))
    env = {"VOICECOACH_TRACE_STAGES": "1"}
    first, second = Server(tmp_path, *args, env=env).start(), Server(tmp_path, *args, env=env)
    second.start()
    try:
        answer_screening(first)
        answers: dict[str, dict] = {}  # type: ignore[type-arg]
        asking = threading.Thread(target=lambda: answers.update(
            first=_made(first, "five-minute-back")))
        asking.start()
        deadline = time.monotonic() + 120
        while "voicecoach-stage: speaking" not in first.log:
            assert time.monotonic() < deadline and asking.is_alive(), first.log
            time.sleep(0.02)
        answers["second"] = _made(second, "five-minute-back")
        asking.join(300)
        assert answers["first"]["key"] == answers["second"]["key"]
        stages = first.log + second.log
        assert stages.count("voicecoach-stage: encoding") == 1, stages
        assert first.get(answers["first"]["track"])[2] == second.get(answers["second"]["track"])[2]
    finally:
        assert [first.stop(), second.stop()] == [130, 130]


def test_a_history_from_before_phone_sessions_takes_them_and_keeps_its_rows(
        tmp_path: Path) -> None:
    import sqlite3

    from voicecoach.safety.history import _SCHEMA, History, SessionRecord

    old = _SCHEMA.replace("'live', 'export', 'phone'", "'live', 'export'").replace(
        ",\n    finished INTEGER NOT NULL DEFAULT 1", "")
    with sqlite3.connect(tmp_path / "history.sqlite3") as conn:
        conn.executescript(old + "; PRAGMA user_version = 1;")
        conn.execute("INSERT INTO sessions (routine, title, kind, started, ended, completed,"
                     " position) VALUES ('r', 'R', 'live', 1, 2, 1, 5)")
        conn.execute("INSERT INTO exercises_done VALUES (1, 'r', 'A', 2, 0)")
    history = History(tmp_path)
    history.record(SessionRecord("r", "R", "phone", 10, 20, True, 9.0, ("A",)))
    assert [(s.kind, s.exercises_done, s.counts) for s in history.sessions()] == [
        ("phone", 1, True), ("live", 1, True)]
    assert history.live_sessions("r") == 2
    history.close()
