"""Run the server: the address a phone should open, uvicorn on a socket we bind, Ctrl-C as 130."""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from voicecoach import cancel
from voicecoach.errors import Fault, UserError, check_input
from voicecoach.serve import app as routes
from voicecoach.serve import core, token
from voicecoach.serve.tracks import TrackStore, default_folder

DEFAULT_PORT = 8765


@dataclass(frozen=True)
class Listening:
    url: str
    feed: str


def lan_address() -> str:
    """This machine's address on the home network (the one its default route leaves from)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # a documentation address: nothing is sent
            found = probe.getsockname()[0]
        except OSError:
            found = ""
    if found and not ipaddress.ip_address(found).is_loopback:
        return str(found)
    with contextlib.suppress(OSError):
        for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
            candidate = str(info[4][0])
            if not ipaddress.ip_address(candidate).is_loopback:
                return candidate
    raise Fault("this computer has no address on a network that a phone could reach",
                fix="join the home network (Wi-Fi or cable), or give --host ADDRESS")


def _everywhere(host: str | None) -> bool:
    """Listening on every address (none given, 0.0.0.0 or ::): a phone cannot open that
    address, so the home-network one is printed."""
    if not host:
        return True
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == 98 or "in use" in str(exc):
            raise UserError(f"port {port} is in use", fix="choose another with --port N") from None
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror}",
                        fix="give an address of this computer with --host") from None
    sock.listen(64)
    sock.set_inheritable(True)
    return sock


class _Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, except for its answer to a malformed request: to a HEAD (or
    after the route has answered) it would write a body h11 refuses, and asyncio would log the
    error with a traceback. The 400 is sent as far as it can be; then the connection closes,
    and the route still working on the request is told so (as when a client goes), or uvicorn
    would log its unfinished answer as an ERROR."""

    def send_400_response(self, msg: str) -> None:
        try:
            super().send_400_response(msg)
        except h11.LocalProtocolError:
            self.transport.close()
        if self.cycle is not None:
            self.cycle.disconnected = True
            self.cycle.message_event.set()


class _Server(uvicorn.Server):
    """uvicorn that leaves the signals to voicecoach.cancel: its handlers only set a flag, and
    the main loop's tick (every 0.1 s) sees it and shuts down."""

    on_ready: Callable[[], None] | None = None

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def on_tick(self, counter: int) -> bool:
        if cancel.requested():
            self.should_exit = True
        if self.started and self.on_ready is not None:
            ready, self.on_ready = self.on_ready, None
            ready()
        return await super().on_tick(counter)


def serve(host: str | None, port: int, folders: list[Path], *, new_token: bool,
          with_library: bool, on_ready: Callable[[Listening], None]) -> None:
    """Serve until a signal; raise cancel.Interrupted after a clean shutdown."""
    for folder in folders:
        check_input(folder, "folder of routine files", folder=True)
    found = core.routines(folders, with_library)
    if not found:
        raise UserError("no routines to serve",
                        fix="give a folder of routine files with --routines")
    shown = lan_address() if _everywhere(host) else str(host)
    sock = _bind(host or "0.0.0.0", port)
    secret = token.load_or_make(renew=new_token)
    bound = sock.getsockname()[1]
    name = f"[{shown}]" if ":" in shown else shown
    root = f"http://{name}:{bound}"
    listening = Listening(f"{root}/{secret}/", f"{root}/{secret}/feed")
    store = TrackStore(default_folder())
    app = routes.build(secret, lambda: core.routines(folders, with_library), store, root)
    config = uvicorn.Config(app, http=_Protocol, log_level="warning", access_log=False,
                            lifespan="off",
                            timeout_graceful_shutdown=2, h11_max_incomplete_event_size=16384)
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
    server = _Server(config)
    server.on_ready = lambda: on_ready(listening)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
        routes.finish_open(app.inner.state.vc)  # type: ignore[attr-defined]
    cancel.check()
