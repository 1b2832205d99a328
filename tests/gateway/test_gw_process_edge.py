"""The edge as `orderflow serve gateway` runs it (uvloop, httptools, the JSON log on stdout):
header limits answered 431, and a client gone mid-body leaves no traceback in the log."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator

import pytest

from tests.gateway.gateway_harness import raw_exchange
from tests.support.system import System


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    system = System(
        tmp_path_factory.mktemp("gw-process"),
        args=("serve", "gateway"),
        env={"ORDERFLOW_LOG_LEVEL": "INFO", "ORDERFLOW_LOG_JSON": "true"},
    )
    system.start()
    try:
        yield system
    finally:
        system.stop()


def log_lines(system: System) -> list[dict[str, object]]:
    lines = system.logs_all().splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


async def logged(system: System, event: str, timeout: float = 10.0) -> list[dict[str, object]]:
    """The gateway's log once it holds `event` (another process: its file is all there is)."""
    deadline = time.monotonic() + timeout
    while not any(line["event"] == event for line in log_lines(system)):
        assert time.monotonic() < deadline, system.logs()
        await asyncio.sleep(0.05)
    return log_lines(system)


async def stream_header(url: str, size: int) -> tuple[bytes, int]:
    """Send a `size`-byte header while reading: (the answer, bytes of the header sent)."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))

    async def read_all() -> bytes:
        received = b""
        try:
            while chunk := await reader.read(65536):
                received += chunk
        except ConnectionError:
            pass
        return received

    answer = asyncio.create_task(read_all())
    sent, chunk = 0, b"a" * 65536
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: gw\r\nX-Huge: ")
    try:
        while sent < size:
            writer.write(chunk)
            await writer.drain()
            sent += len(chunk)
        writer.write(b"\r\n\r\n")
        await writer.drain()
    except ConnectionError:
        pass
    raw = await asyncio.wait_for(answer, 30)
    writer.close()
    return raw, sent


async def test_huge_and_numerous_headers_are_431(gateway: System) -> None:
    raw, sent = await stream_header(gateway.public_url, 30 * 1024 * 1024)
    assert raw.startswith(b"HTTP/1.1 431 "), raw[:200]
    assert b"application/problem+json" in raw
    assert sent < 30 * 1024 * 1024
    fields = b"".join(b"X-F%d: 1\r\n" % i for i in range(101))
    status, raw = await raw_exchange(
        gateway.public_url, b"GET /healthz HTTP/1.1\r\nHost: gw\r\n" + fields + b"\r\n"
    )
    assert status == 431, raw[:200]
    status, raw = await raw_exchange(
        gateway.public_url, b"GET /healthz HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n"
    )
    assert status == 200, raw[:200]


async def test_a_client_gone_mid_body_leaves_no_traceback(gateway: System) -> None:
    host, port = gateway.public_url.removeprefix("http://").split(":")
    _, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"POST /gone HTTP/1.1\r\nHost: gw\r\nContent-Length: 100000\r\n\r\n" + b"x" * 10)
    await writer.drain()
    writer.close()
    await writer.wait_closed()
    lines = await logged(gateway, "client disconnected")
    assert "Traceback" not in gateway.logs_all()
    assert [line for line in lines if line["level"] in ("error", "critical")] == []
    request = [line for line in lines if line["event"] == "request" and line["path"] == "/gone"]
    assert [line["status"] for line in request] == [499]
