"""Request header limits at the server (issue 11): a huge header used to be buffered whole and
forwarded. Past `max_header_bytes` (request line and fields) or `max_header_count` the server
answers 431 problem+json and closes, on either HTTP implementation uvicorn may run, before
much more than the limit has been read. Raw sockets: an HTTP client would refuse to send these."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from orderflow.web.header_limits import HttpImplementation
from tests.gateway.gateway_harness import Stack, build_stack, raw_exchange

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["httptools", "h11"])
async def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    http: HttpImplementation = request.param
    async with build_stack(tmp_path_factory.mktemp(f"limits-{http}"), http=http) as built:
        yield built


def head(*fields: bytes) -> bytes:
    lines = [b"GET /public/x HTTP/1.1", b"Host: gw", *fields, b"Connection: close"]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def assert_431(raw: bytes) -> None:
    assert raw.startswith(b"HTTP/1.1 431 "), raw[:200]
    assert b"application/problem+json" in raw
    assert b'"reason":"headers_too_large"' in raw


async def test_a_head_within_the_limits_passes(stack: Stack) -> None:
    # Room for the request line and Host: the limit counts the whole head.
    filler = b"X-Fill: " + b"a" * (stack.settings.max_header_bytes - 200)
    many = [b"X-F%d: 1" % i for i in range(stack.settings.max_header_count - 3)]
    for request in (head(filler), head(*many)):
        status, raw = await raw_exchange(stack.url, request)
        assert status == 200, raw[:300]


async def test_a_head_over_the_byte_limit_is_431(stack: Stack) -> None:
    big = b"X-Big: " + b"a" * stack.settings.max_header_bytes
    _, raw = await raw_exchange(stack.url, head(big))
    assert_431(raw)
    spread = [b"X-S%d: " % i + b"b" * 400 for i in range(50)]  # 20 KB over 50 fields
    _, raw = await raw_exchange(stack.url, head(*spread))
    assert_431(raw)


async def test_too_many_header_fields_is_431(stack: Stack) -> None:
    many = [b"X-F%d: 1" % i for i in range(stack.settings.max_header_count + 1)]
    _, raw = await raw_exchange(stack.url, head(*many))
    assert_431(raw)
    assert f"more than {stack.settings.max_header_count} header fields".encode() in raw


async def stream(url: str, start: bytes, size: int) -> tuple[bytes, int]:
    """Send `start`, then `size` bytes of "a" (then the end of the head) while reading the
    answer: (the answer, how many of the `size` bytes could be sent)."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))

    async def read_all() -> bytes:
        # Until the server closes or resets (it stops reading, so the kernel may reset after
        # the answer): what arrived before is kept.
        received = b""
        try:
            while chunk := await reader.read(65536):
                received += chunk
        except ConnectionError:
            pass
        return received

    answer = asyncio.create_task(read_all())
    sent, chunk = 0, b"a" * 65536
    writer.write(start)
    try:
        while sent < size:
            writer.write(chunk)
            await writer.drain()
            sent += len(chunk)
        writer.write(b"\r\n\r\n")
        await writer.drain()
    except ConnectionError:
        pass  # the server closed: what a refusal looks like to a sender
    raw = await asyncio.wait_for(answer, 30)
    writer.close()
    return raw, sent


TWENTY_MB = 20 * 1024 * 1024


async def test_a_20_mb_header_is_refused_before_it_is_read(stack: Stack) -> None:
    """The answer comes while the header is still being sent, and the server stops reading: the
    client cannot send the 20 MB (nothing reads them), so they were never buffered."""
    raw, sent = await stream(
        stack.url, b"GET /public/x HTTP/1.1\r\nHost: gw\r\nX-Huge: ", TWENTY_MB
    )
    assert_431(raw)
    assert sent < TWENTY_MB


async def test_20_mb_of_chunked_trailers_are_cut_off(stack: Stack) -> None:
    """Trailers (fields after a chunked body) are buffered by the parser like a head: the
    connection ends long before 20 MB of them are read (h11 still answers 431; with httptools
    the app may be answering already, so it is closed without one)."""
    start = (
        b"POST /public/x HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n0\r\nX-Trailer: "
    )
    raw, sent = await stream(stack.url, start, TWENTY_MB)
    assert sent < TWENTY_MB
    assert not raw.startswith(b"HTTP/1.1 200"), raw[:200]


async def test_a_chunked_body_in_tiny_chunks_and_small_trailers_pass(stack: Stack) -> None:
    # The control for the trailer limit: 20 KB of framing, but body bytes all along.
    chunks = b"1\r\nx\r\n" * 20_000
    request = (
        b"POST /public/x HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n"
        b"Connection: close\r\n\r\n" + chunks + b"0\r\nX-Trailer: small\r\n\r\n"
    )
    status, raw = await raw_exchange(stack.url, request)
    assert status == 200, raw[:300]
    assert b'"body_length":20000' in raw
