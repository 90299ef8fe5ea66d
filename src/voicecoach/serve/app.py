"""The server's routes: phone page, API, tracks with Range, feed (all behind the token)."""

from __future__ import annotations

import functools
import json
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from voicecoach import cancel
from voicecoach.errors import UserError, VoicecoachError
from voicecoach.serve import core
from voicecoach.serve import feed as feeds
from voicecoach.serve.ranges import FileRanges
from voicecoach.serve.token import matches
from voicecoach.serve.tracks import Made, TrackStore

log = logging.getLogger("voicecoach.serve")

#: The only write a request can make besides the track cache: a history event this size at most.
MAX_EVENT = 4096
#: Sessions reported but not yet ended, kept in memory (the oldest goes when more arrive).
MAX_OPEN = 64
_KEY = re.compile(r"^[0-9a-f]{32}$")
_SESSION = re.compile(r"^[A-Za-z0-9-]{8,64}$")
_HOST = re.compile(r"^[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]{2,45}\](:[0-9]{1,5})?$")
STATIC = {"app.js": "text/javascript", "style.css": "text/css"}


@dataclass
class Open:
    """A session the page has started and not yet ended."""

    decision: core.Decision
    duration: float
    exercises: tuple[str, ...]
    started: float = field(default_factory=time.time)
    position: float = 0.0
    reached: str | None = None
    done: list[str] = field(default_factory=list)
    #: Every exercise the page reached: one begun counts towards its limits, as `play`'s do.
    begun: list[str] = field(default_factory=list)


@dataclass
class State:
    #: The routines served, looked up again at each request: a file added to a folder while
    #: serving is offered, a removed one is gone.
    find: Callable[[], dict[str, Path]]
    store: TrackStore
    fallback: str  # scheme://host:port of the printed URL, for a request without a usable Host
    sessions: OrderedDict[str, Open] = field(default_factory=OrderedDict)

    @property
    def routines(self) -> dict[str, Path]:
        return self.find()


def _no(status: int = 404, text: str = "not found") -> Response:
    return PlainTextResponse(text, status_code=status)


Endpoint = Callable[[Request], Awaitable[Response]]


def guarded(endpoint: Endpoint) -> Endpoint:
    """A mistake (an unknown id, a broken routine file) is the asker's: 4xx. A fault (speech,
    encoder, disk) is one line in the log and a 503, never a traceback."""

    @functools.wraps(endpoint)
    async def run(request: Request) -> Response:
        try:
            return await endpoint(request)
        except UserError as exc:
            return _no(409, exc.line())
        except VoicecoachError as exc:
            log.error("voicecoach serve: %s", exc.line())
            return _no(503, exc.line())
        except OSError as exc:
            log.error("voicecoach serve: %s", exc)
            return _no(503, "the server could not read or write a file; see its log")
        except cancel.Interrupted:  # Ctrl-C while a track was being made: it was not finished
            return _no(503, "the server is stopping")

    return run


def _state(request: Request) -> State:
    return request.app.state.vc  # type: ignore[no-any-return]


def _base(request: Request) -> str:
    """The tokened address this request came to: feeds and pages must use what the phone
    reached, never localhost or another name for this machine."""
    host = request.headers.get("host", "")
    root = f"http://{host}" if _HOST.match(host) else _state(request).fallback
    return f"{root}/{request.scope['vc_token']}"


def _path_of(request: Request, name: str) -> Path | None:
    routines = _state(request).routines
    rid = request.path_params.get(name, "")
    return routines.get(rid) if isinstance(rid, str) else None


async def _decide(path: Path, rid: str) -> core.Decision:
    return await run_in_threadpool(core.decide, path, rid)


async def _made(request: Request) -> Made | None:
    """The finished track named by /{rid}/{key}: looked up, never turned into a path."""
    rid, key = request.path_params.get("rid"), request.path_params.get("key")
    if rid not in _state(request).routines or not isinstance(key, str) or not _KEY.match(key):
        return None
    made = await run_in_threadpool(_state(request).store.find, key)
    return made if made is not None and made.meta.get("routine") == rid else None


@guarded
async def page(request: Request) -> Response:
    if "rid" in request.path_params and _path_of(request, "rid") is None:
        return _no()
    # One page for the list and each routine: its links and assets are relative to the token.
    html = _read("index.html").replace(b"<head>", b'<head>\n<base href="/%s/">'
                                       % request.scope["vc_token"].encode(), 1)
    return Response(html, media_type="text/html", headers={"Cache-Control": "no-cache"})


@guarded
async def static(request: Request) -> Response:
    name = request.path_params["name"]
    return _static(name) if name in STATIC else _no()


def _read(name: str) -> bytes:
    return (resources.files("voicecoach.serve") / "static" / name).read_bytes()


def _static(name: str) -> Response:
    return Response(_read(name), media_type=STATIC[name], headers={"Cache-Control": "no-cache"})


@guarded
async def routine_list(request: Request) -> Response:
    items = []
    for rid, path in _state(request).routines.items():
        items.append(await run_in_threadpool(_summary, rid, path))
    return JSONResponse({"screening": await run_in_threadpool(core.screening), "routines": items})


def _summary(rid: str, path: Path) -> dict[str, Any]:
    try:
        decision = core.decide(path, rid)
    except UserError as exc:
        return {"id": rid, "title": rid, "refused": exc.line(), "equipment": [], "left_out": [],
                "duration": 0, "exercises": 0}
    routine = decision.routine
    duration = 0.0 if decision.refused else core.estimate(decision)
    return {
        "id": rid, "title": routine.title, "equipment": list(routine.equipment),
        "exercises": len(routine.exercises), "duration": round(duration, 1),
        "left_out": [{"exercise": n, "reason": r} for n, r in decision.left_out],
        "refused": decision.refused, "detail": decision.detail,
    }


@guarded
async def routine_track(request: Request) -> Response:
    """Today's track of a routine (made now if needed) and everything the page shows of it."""
    path = _path_of(request, "rid")
    if path is None:
        return _no()
    decision = await _decide(path, request.path_params["rid"])
    if decision.refused:
        return _no(409, decision.refused)
    made = await run_in_threadpool(_state(request).store.get, decision)
    rid, base = request.path_params["rid"], _base(request)
    return JSONResponse({**made.meta, "id": rid,
                         "track": f"{base}/track/{quote(rid, safe='')}/{made.key}.mp3"})


@guarded
async def track(request: Request) -> Response:
    made = await _made(request)
    if made is None:
        return _no()
    # Phones seek with Range; the key names the content, so it is the ETag and never changes.
    return FileRanges(made.path, made.key, "audio/mpeg", headers={
        "Cache-Control": "private, max-age=31536000, immutable",
        "Content-Disposition": "inline"})


@guarded
async def chapters(request: Request) -> Response:
    made = await _made(request)
    return JSONResponse(feeds.chapters_json(made), media_type=feeds.CHAPTER_TYPE) if made else _no()


@guarded
async def transcript(request: Request) -> Response:
    made = await _made(request)
    return Response(feeds.webvtt(made), media_type="text/vtt") if made else _no()


@guarded
async def feed(request: Request) -> Response:
    made, refused = [], []
    for rid, path in _state(request).routines.items():
        try:
            decision = await _decide(path, rid)
        except UserError as exc:
            refused.append((rid, exc.line()))
            continue
        if decision.refused:
            refused.append((rid, decision.refused))
            continue
        made.append(await run_in_threadpool(_state(request).store.get, decision))
    return Response(feeds.rss(_base(request), made, refused),
                    media_type="application/rss+xml; charset=utf-8")


async def _body(request: Request) -> Any:
    """The request's JSON, at most MAX_EVENT bytes (read no further than that)."""
    size = request.headers.get("content-length")
    if size is not None and (not size.isdigit() or int(size) > MAX_EVENT):
        raise _Bad(413, "too large")
    data = b""
    try:
        async for chunk in request.stream():
            data += chunk
            if len(data) > MAX_EVENT:
                raise _Bad(413, "too large")
    except ClientDisconnect:
        raise _Bad(400, "the body ended early") from None
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise _Bad(400, "not JSON") from None


class _Bad(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status, self.text = status, text


def bad_request(endpoint: Endpoint) -> Endpoint:
    @functools.wraps(endpoint)
    async def run(request: Request) -> Response:
        try:
            return await endpoint(request)
        except _Bad as exc:
            return _no(exc.status, exc.text)

    return run


@guarded
@bad_request
async def screening(request: Request) -> Response:
    if request.method == "GET":
        return JSONResponse(await run_in_threadpool(core.screening))
    body = await _body(request)
    answers = body.get("answers") if isinstance(body, dict) else None
    keys = core.question_keys()
    if not isinstance(answers, dict) or set(answers) != set(keys) or not all(
            isinstance(v, bool) for v in answers.values()):
        raise _Bad(400, f"answers: an object of {', '.join(keys)}, each true or false")
    return JSONResponse(await run_in_threadpool(core.save_screening, answers))


@guarded
@bad_request
async def events(request: Request) -> Response:
    """What the page reports of a session: start, each exercise reached or played through, end."""
    body = await _body(request)
    if not isinstance(body, dict):
        raise _Bad(400, "an event is a JSON object")
    sid, kind = body.get("session"), body.get("event")
    if not isinstance(sid, str) or not _SESSION.match(sid):
        raise _Bad(400, "session: 8 to 64 letters, digits or dashes")
    position = body.get("position", 0)
    if not isinstance(position, int | float) or isinstance(position, bool) or \
            not 0 <= position < 1e6:
        raise _Bad(400, "position: seconds into the track")
    state = _state(request)
    if kind == "start":
        return await _start(request, state, sid, body)
    session = state.sessions.get(sid)
    if session is None:
        raise _Bad(404, "no such session (start it first)")
    session.position = min(float(position), session.duration)
    name = body.get("exercise")
    if kind in ("reached", "done"):
        if name not in session.exercises:
            raise _Bad(400, "exercise: one of the track's exercises")
        if kind == "reached":
            session.reached = name
            if name not in session.begun:
                session.begun.append(name)
        elif name not in session.done:
            session.done.append(name)
        return JSONResponse({"ok": True})
    if kind == "end":
        completed = body.get("completed") is True
        del state.sessions[sid]
        await run_in_threadpool(_record, session, completed)
        return JSONResponse({"ok": True, "recorded": True})
    raise _Bad(400, "event: start, reached, done or end")


async def _start(request: Request, state: State, sid: str, body: dict[str, Any]) -> Response:
    rid, key, routines = body.get("routine"), body.get("key"), state.routines
    if not isinstance(rid, str) or rid not in routines or not isinstance(key, str) \
            or not _KEY.match(key):
        raise _Bad(400, "routine and key: those of a track this server made")
    made = await run_in_threadpool(state.store.find, key)
    if made is None or made.meta.get("routine") != rid:
        raise _Bad(404, "no such track")
    decision = await _decide(routines[rid], rid)
    exercises = tuple(c["title"] for c in made.meta["chapters"] if c["exercise"])
    state.sessions[sid] = Open(decision, float(made.meta["duration"]), exercises)
    while len(state.sessions) > MAX_OPEN:
        state.sessions.popitem(last=False)
    return JSONResponse({"ok": True})


def _record(session: Open, completed: bool) -> None:
    done = tuple(n for n in session.exercises if n in session.done)
    core.record_phone_session(
        session.decision, session.started, session.position, completed=completed,
        exercises_done=done, stopped_at=None if completed else session.reached,
        exercises_started=tuple(n for n in session.exercises if n in session.begun))


def finish_open(state: State) -> None:
    """At shutdown, a session the page never ended counts for what was played (as `play`'s do)."""
    while state.sessions:
        _, session = state.sessions.popitem()
        _record(session, completed=False)


class TokenGate:
    """Every path begins with the secret; anything else is 404, the same as an unknown page."""

    def __init__(self, inner: ASGIApp, token: str) -> None:
        self.inner, self.token = inner, token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.inner(scope, receive, send)
            return
        send = _quiet(send)
        path: str = scope.get("path", "")
        given, slash, rest = path[1:].partition("/")
        if not path.startswith("/") or not matches(given, self.token):
            await _no()(scope, receive, send)
            return
        if not slash:  # the page's own relative links need the closing slash
            again = Response(status_code=308, headers={"Location": f"/{given}/"})
            await again(scope, receive, send)
            return
        scope = dict(scope, path=f"/{rest}", vc_token=given, raw_path=f"/{rest}".encode())
        await self.inner(scope, receive, send)


def _quiet(send: Send) -> Send:
    """A send that gives up silently once the connection cannot take more: the client went, or
    uvicorn already answered a malformed body with a 400 while the route was still working."""
    gone = False

    async def sending(message: Any) -> None:
        nonlocal gone
        if gone:
            return
        try:
            await send(message)
        except Exception:
            gone = True

    return sending


def build(token: str, routines: Callable[[], dict[str, Path]], store: TrackStore,
          fallback: str) -> ASGIApp:
    routes = [
        Route("/", page),
        Route("/r/{rid}", page),
        Route("/static/{name}", static),
        Route("/api/routines", routine_list),
        Route("/api/routines/{rid}", routine_track),
        Route("/api/screening", screening, methods=["GET", "POST"]),
        Route("/api/events", events, methods=["POST"]),
        Route("/track/{rid}/{key}.mp3", track, methods=["GET", "HEAD"]),
        Route("/chapters/{rid}/{key}.json", chapters),
        Route("/transcript/{rid}/{key}.vtt", transcript),
        Route("/feed", feed, methods=["GET", "HEAD"]),
    ]
    app = Starlette(routes=routes)
    # Its redirect of "feed/" to "feed" would be built from the path the gate rewrote, without
    # the token: a link to a 404. No page links with a trailing slash; it is simply not found.
    app.router.redirect_slashes = False
    app.state.vc = State(routines, store, fallback)
    return TokenGate(app, token)
