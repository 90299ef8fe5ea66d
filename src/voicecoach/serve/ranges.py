"""HTTP Range for the track files (RFC 9110 §14): one range, several, a suffix, If-Range."""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

import anyio
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

#: More parts than this in one Range header is not a player seeking: refused as unsatisfiable.
MAX_PARTS = 32
CHUNK = 64 * 1024
_PART = re.compile(r"^(?:([0-9]+)-([0-9]*)|-([0-9]+))$")
#: Beyond any file size; longer digit strings are clamped to it (int() refuses > 4300 digits).
_HUGE = 10**18


class Unsatisfiable(Exception):
    """The Range names bytes ranges, but none that this file has, or not in RFC 9110's form."""


def _number(digits: str) -> int:
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) < 19 else _HUGE


def parse(header: str | None, size: int) -> list[tuple[int, int]] | None:
    """The byte ranges asked for, as (start, end) with end exclusive, in order and coalesced.
    None: send the whole file (no Range, or a unit other than bytes, which the RFC says to
    ignore). Raises Unsatisfiable when the bytes ranges are malformed or all outside the file."""
    if header is None:
        return None
    unit, eq, spec = header.partition("=")
    if not eq or unit.strip().lower() != "bytes":
        return None
    parts = [p.strip() for p in spec.split(",")]
    if len(parts) > MAX_PARTS:
        raise Unsatisfiable
    ranges = []
    for part in parts:
        if not part:  # list syntax allows empty elements
            continue
        match = _PART.match(part)
        if match is None:
            raise Unsatisfiable
        first, last, suffix = match.groups()
        if suffix is not None:
            length = _number(suffix)
            if length:
                ranges.append((max(0, size - length), size))
            continue
        start = _number(first)
        if last and _number(last) < start:
            raise Unsatisfiable
        if start < size:
            ranges.append((start, min(size, _number(last) + 1) if last else size))
    if not ranges:
        raise Unsatisfiable
    return _coalesce(ranges)


def _coalesce(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Overlapping or touching ranges become one, so no byte is sent twice."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


class FileRanges(Response):
    """A finished, never-changing file (named by its content key, which is its ETag), whole
    or in the ranges asked for; HEAD gets the same headers without the body."""

    def __init__(self, path: Path, etag: str, media_type: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(None, 200, headers, media_type)
        self.path, self.etag = path, f'"{etag}"'

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        head = scope.get("method") == "HEAD"
        try:
            opened = await anyio.open_file(self.path, "rb")
        except OSError:  # removed since it was found (a cleared cache): as if never made
            await Response("not found", 404, media_type="text/plain")(scope, receive, send)
            return
        async with opened as file:
            size = os.fstat(file.wrapped.fileno()).st_size  # the file sent, not a later one
            wanted = request.get("range")
            if request.get("if-range", self.etag) != self.etag:
                wanted = None  # not the file the player holds part of: send it whole
            try:
                ranges = parse(wanted, size)
            except Unsatisfiable:
                await self._start(send, 416, {"content-range": f"bytes */{size}",
                                              "content-length": "0"})
                await send({"type": "http.response.body", "body": b""})
                return
            if ranges is None:
                await self._start(send, 200, {"content-length": str(size)})
                await self._body(send, file, [(0, size)], head)
            elif len(ranges) == 1:
                start, end = ranges[0]
                await self._start(send, 206, {"content-range": f"bytes {start}-{end - 1}/{size}",
                                              "content-length": str(end - start)})
                await self._body(send, file, ranges, head)
            else:
                await self._multipart(send, file, ranges, size, head)

    async def _start(self, send: Send, status: int, extra: dict[str, str]) -> None:
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in self.raw_headers
                   if k not in (b"content-length", b"content-type")}
        headers.update({"accept-ranges": "bytes", "etag": self.etag, **extra})
        if status in (200, 206) and "content-type" not in extra:
            headers["content-type"] = self.media_type or "application/octet-stream"
        await send({"type": "http.response.start", "status": status,
                    "headers": [(k.encode("latin-1"), v.encode("latin-1"))
                                for k, v in headers.items()]})

    async def _body(self, send: Send, file: anyio.AsyncFile[bytes],
                    ranges: list[tuple[int, int]], head: bool,
                    parts: list[bytes] | None = None, tail: bytes = b"") -> None:
        if head:
            await send({"type": "http.response.body", "body": b""})
            return
        for n, (start, end) in enumerate(ranges):
            if parts is not None:
                await send({"type": "http.response.body", "body": parts[n], "more_body": True})
            await file.seek(start)
            while start < end:
                chunk = await file.read(min(CHUNK, end - start))
                if not chunk:  # cannot happen to a file replaced by rename; never spin
                    return
                start += len(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": tail})

    async def _multipart(self, send: Send, file: anyio.AsyncFile[bytes],
                         ranges: list[tuple[int, int]], size: int, head: bool) -> None:
        boundary = secrets.token_hex(16)
        kind = self.media_type or "application/octet-stream"
        parts = [(f"\r\n--{boundary}\r\nContent-Type: {kind}\r\n"
                  f"Content-Range: bytes {start}-{end - 1}/{size}\r\n\r\n").encode("latin-1")
                 for start, end in ranges]
        tail = f"\r\n--{boundary}--\r\n".encode("latin-1")
        length = sum(map(len, parts)) + sum(e - s for s, e in ranges) + len(tail)
        await self._start(send, 206, {
            "content-type": f"multipart/byteranges; boundary={boundary}",
            "content-length": str(length)})
        await self._body(send, file, ranges, head, parts, tail)
