"""Measure the bare endpoint (see `bare_app`) flat out with the run's own load and connections."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from orderflow.tools.bench.customers import Customer
from orderflow.tools.bench.load import OrderLoad
from orderflow.tools.bench.mix import OrderMix
from orderflow.tools.bench.report import requests_summary
from orderflow.tools.bench.samples import Recorder


async def measure_ceiling(
    customers: list[Customer], mix: OrderMix, connections: int, duration: float
) -> dict[str, Any]:
    """Closed loop for `duration` seconds: the most 202s per second this stack can answer here.
    (Flat out whatever the main run's mode: a fixed rate would only measure that rate.)"""
    async with bare_endpoint() as url:
        connector = aiohttp.TCPConnector(limit=connections)
        async with aiohttp.ClientSession(url, connector=connector) as client:
            recorder = Recorder()
            await OrderLoad(client, customers, mix, recorder).closed_loop(
                connections, None, duration
            )
    summary = requests_summary(recorder, 202)
    return {
        "url": url,
        "mode": "max",
        "connections": connections,
        "duration": duration,
        **{k: summary[k] for k in ("sent", "ok", "errors", "ok_per_s", "latency_ms")},
    }


@contextlib.asynccontextmanager
async def bare_endpoint(timeout: float = 20.0) -> AsyncIterator[str]:
    """The bare app in a subprocess on a free port; stopped (SIGTERM, then SIGKILL) on exit."""
    port = _free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "orderflow.tools.bench.bare_app",
        "--port",
        str(port),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        await _wait_healthy(proc, url, timeout)
        yield url
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 5)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def _wait_healthy(proc: asyncio.subprocess.Process, url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as client:
        while time.monotonic() < deadline:
            if proc.returncode is not None:
                err = await proc.stderr.read() if proc.stderr else b""
                raise RuntimeError(f"the bare endpoint exited early: {err.decode()[-2000:]}")
            with contextlib.suppress(aiohttp.ClientError):
                async with client.get(f"{url}/healthz") as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.05)
    raise TimeoutError(f"the bare endpoint did not answer within {timeout} s")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
