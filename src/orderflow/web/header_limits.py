"""Request header limits at the HTTP server: 431 before a request head is buffered whole.

An app sees a request only once the server has parsed its head, so a 50 MB header has been
held in memory by then; the limit must sit in the server's protocol. uvicorn leaves it to the
HTTP implementation: h11 bounds an incomplete head (`h11_max_incomplete_event_size`, answered
400), httptools (llhttp) bounds nothing, and neither bounds the number of header fields. These
subclasses of uvicorn's two protocols answer 431 problem+json and end the connection
(Refusal) when the request line and header fields (`max_bytes`, counted as sent, CRLFs
included) or the number of fields (`max_count`) pass the limit:
- h11: its own bound set to `max_bytes` (its error hint is already 431), the count checked on
  the parsed request;
- httptools: bytes fed to the parser while a head is incomplete are counted after each read,
  so at most `max_bytes` plus one socket read is ever buffered; the exact size and count are
  checked once the head is complete. Trailers of a chunked body (fields after it, which it
  buffers alike) are bounded the same way and not added to the request's headers.
`protocol_class(http, limits)` gives the class for `uvicorn.Config(http=...)`.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import h11
import structlog
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from orderflow.web.problems import MEDIA_TYPE, ProblemError, problem_body

log = structlog.get_logger("orderflow.web.server")

HttpImplementation = Literal["h11", "httptools"]


@dataclass(frozen=True, slots=True)
class HeaderLimits:
    max_bytes: int = 16 * 1024  # request line and header fields: nginx's and Node's 16 KiB-ish
    max_count: int = 100  # header fields (Apache's LimitRequestFields default)

    def behind_gateway(self) -> HeaderLimits:
        """For a server the gateway forwards to: what the gateway let through plus what it adds
        (the identity assertion, X-Forwarded-*, X-Request-Id), with room to spare."""
        return HeaderLimits(self.max_bytes + 8 * 1024, self.max_count + 16)


def protocol_class(http: HttpImplementation, limits: HeaderLimits) -> type[asyncio.Protocol]:
    """uvicorn's protocol for `http`, answering 431 past `limits`."""
    if http == "h11":

        class H11(LimitedH11Protocol):
            LIMITS = limits

        return H11

    class HttpTools(LimitedHttpToolsProtocol):
        LIMITS = limits

    return HttpTools


def head_size(start: bytes, fields: list[tuple[bytes, bytes]]) -> int:
    """A request head's size as sent: `start` ("GET /path") + " HTTP/1.1\r\n", then
    "name: value\r\n" per field and the closing "\r\n" (optional whitespace not counted)."""
    return len(start) + 11 + sum(len(name) + len(value) + 4 for name, value in fields) + 2


class Refusal:
    """A connection whose request was refused: what the client still sends is read and dropped
    (up to `LINGER_BYTES`, then no longer read) until the connection is closed.

    `answered`: a 431 is written and the write side shut (FIN), and the connection closed after
    `LINGER_SECONDS`. Closing at once with unread input makes the kernel send a reset, which can
    destroy the answer before the client has read it (nginx lingers alike). `silent`: closed at
    once, no answer (an app's answer may be under way)."""

    LINGER_BYTES = 1024 * 1024
    LINGER_SECONDS = 2.0

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.dropped = 0

    @classmethod
    def answered(
        cls,
        transport: asyncio.Transport,
        client: tuple[str, int] | None,
        limits: HeaderLimits,
        why: str,
    ) -> Refusal:
        if why == "count":
            detail = f"more than {limits.max_count} header fields"
        else:
            detail = f"request line and headers exceed {limits.max_bytes} bytes"
        request_id = uuid.uuid4().hex
        peer = client[0] if client else "unknown"
        log.warning("request head refused", why=detail, client=peer, request_id=request_id)
        if not transport.is_closing():
            body = problem_body(ProblemError(431, detail=detail, reason="headers_too_large"))
            head = (
                "HTTP/1.1 431 Request Header Fields Too Large\r\n"
                f"content-type: {MEDIA_TYPE}\r\n"
                f"content-length: {len(body)}\r\n"
                "x-content-type-options: nosniff\r\n"
                f"x-request-id: {request_id}\r\n"
                "connection: close\r\n\r\n"
            )
            transport.write(head.encode() + body)
            if transport.can_write_eof():
                transport.write_eof()
            asyncio.get_running_loop().call_later(cls.LINGER_SECONDS, transport.close)
        return cls(transport)

    @classmethod
    def silent(cls, transport: asyncio.Transport) -> Refusal:
        transport.close()
        return cls(transport)

    def drop(self, data: bytes) -> None:
        self.dropped += len(data)
        if self.dropped > self.LINGER_BYTES:
            self.transport.pause_reading()  # the kernel's buffers fill, the client waits


class _LimitedConnection(h11.Connection):
    """h11's server side, turning "head too large" and "too many fields" into `refuse(why)`."""

    def __init__(self, limits: HeaderLimits, refuse: Any) -> None:
        super().__init__(h11.SERVER, max_incomplete_event_size=limits.max_bytes)
        self.limits = limits
        self.refuse = refuse
        self.refused = False

    def next_event(self) -> Any:
        if self.refused:
            return h11.NEED_DATA
        try:
            event = super().next_event()
        except h11.RemoteProtocolError as exc:
            if exc.error_status_hint != 431:
                raise  # uvicorn answers it (400)
            return self._refuse("bytes")
        if isinstance(event, h11.Request):
            # h11 bounds only a head still incomplete: one that arrived whole is measured here.
            fields = list(event.headers)
            if len(fields) > self.limits.max_count:
                return self._refuse("count")
            if head_size(event.method + b" " + event.target, fields) > self.limits.max_bytes:
                return self._refuse("bytes")
        return event

    def _refuse(self, why: str) -> Any:
        self.refused = True
        self.refuse(why)
        return h11.NEED_DATA  # uvicorn stops handling events; nothing more is read


class LimitedH11Protocol(H11Protocol):
    LIMITS: ClassVar[HeaderLimits] = HeaderLimits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.conn = self._limited = _LimitedConnection(self.LIMITS, self._refuse)

    def _refuse(self, why: str) -> None:
        self._refusal = Refusal.answered(self.transport, self.client, self.LIMITS, why)

    def data_received(self, data: bytes) -> None:
        if self._limited.refused:
            self._refusal.drop(data)
        else:
            super().data_received(data)


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    LIMITS: ClassVar[HeaderLimits] = HeaderLimits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._refusal: Refusal | None = None
        self._in_head = False  # a request head has begun and is not complete
        self._began = False  # a head began during the current read
        self._head_bytes = 0  # of the incomplete head, as far as reads tell
        self._in_body = False  # a request's head is complete, its message is not
        self._body_seen = False  # body bytes came in the current read
        self._framing_bytes = 0  # read in the body phase since the last body bytes

    def data_received(self, data: bytes) -> None:
        if self._refusal is not None:
            return self._refusal.drop(data)
        continued = self._in_head
        self._began = self._body_seen = False
        super().data_received(data)
        if self._refusal is None and self._in_body and not self._body_seen:
            self._check_framing(len(data))
        if self._refusal is not None or not self._in_head:
            return
        # A head still incomplete. If it began in this read, how much of the read is head is
        # unknown: count it from the next read on (at most one read more is buffered).
        if continued and not self._began:
            self._head_bytes += len(data)
        if self._head_bytes > self.LIMITS.max_bytes:
            self._refuse("bytes")

    def _refuse(self, why: str) -> None:
        self._refusal = Refusal.answered(self.transport, self.client, self.LIMITS, why)

    def _check_framing(self, size: int) -> None:
        """Reads in a chunked body that carry no body byte are chunk framing, extensions or
        trailers, which httptools also buffers whole: past `max_bytes` of them the connection
        is closed (the app may be answering already, so no 431 is written into its answer)."""
        self._framing_bytes += size
        if self._framing_bytes > self.LIMITS.max_bytes:
            peer = self.client[0] if self.client else "unknown"
            log.warning("request trailers refused", client=peer, bytes=self._framing_bytes)
            self._refusal = Refusal.silent(self.transport)

    # Parser callbacks: once refused, the rest of the read is parsed but ignored.
    def on_message_begin(self) -> None:
        if self._refusal is None:
            self._in_head, self._began, self._head_bytes = True, True, 0
            super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        if self._refusal is None:
            super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._refusal is None and self._in_head:  # trailers of a chunked body are not kept
            super().on_header(name, value)

    def on_headers_complete(self) -> None:
        if self._refusal is not None:
            return
        self._in_head = False
        if len(self.headers) > self.LIMITS.max_count:
            return self._refuse("count")
        if (
            head_size(self.parser.get_method() + b" " + self.url, self.headers)
            > self.LIMITS.max_bytes
        ):
            return self._refuse("bytes")
        self._in_body, self._framing_bytes = True, 0
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if self._refusal is None:
            self._body_seen, self._framing_bytes = True, 0
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._refusal is None:
            self._in_body = False
            super().on_message_complete()
