"""Gateway overhead: requests/s and latency p50/p99 through the gateway vs directly upstream.

Run: .venv/bin/python bench/gateway_overhead.py [--requests N] [--concurrency C]
     [--upstream URL --data-dir DIR]
Against the real order API:
    D=$(mktemp -d); for c in migrate seed; do .venv/bin/orderflow $c --data-dir $D; done
    ORDERFLOW_DATA_DIR=$D .venv/bin/orderflow serve api --port 8081 &
    .venv/bin/python bench/gateway_overhead.py --upstream http://127.0.0.1:8081 --data-dir $D
By default the upstream is a small Starlette app that verifies the identity assertion (as every
backend must) and answers a JSON POST like an order submission; once the order API runs, point
--upstream at it. Each server runs in its own process (uvicorn, uvloop, httptools); the load is
generated with aiohttp from this process over keep-alive connections. The gateway logs every
request at INFO as JSON (to /dev/null), as in production.

Recorded on the 2-core development VM, shared with other test runs (load average ~3), so +-40%:
  small upstream, defaults (5,000 POSTs, concurrency 32): direct 2,600-5,300 req/s, gateway
      1,200-1,660 req/s (53-69% of a trivial upstream's throughput), +6-9 ms p50
  real order API (`serve api` alone, 2,000 POSTs, concurrency 16): direct 468 req/s, gateway
      376 req/s: 20% of throughput, +9 ms p50, +91 ms p99
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import multiprocessing
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import uvicorn

BODY = json.dumps(
    {
        "items": [{"sku": "MUG-WHT", "quantity": 1}],
        "shipping_address": {
            "name": "Ada Lovelace",
            "line1": "12 Analytical St",
            "city": "London",
            "postal_code": "N1 9GU",
            "country": "GB",
        },
        "payment": {"token": "tok_visa"},
    }
).encode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_upstream(port: int, jwks: str) -> None:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from orderflow.adapters.identity.assertions import HEADER, InvalidAssertionError, load_verifier

    verifier = load_verifier(Path(jwks))

    async def orders(request: Request) -> Response:
        try:
            identity = verifier.verify(request.headers.get(HEADER))
        except InvalidAssertionError:
            return JSONResponse({"detail": "no assertion"}, status_code=401)
        await request.body()
        return JSONResponse({"status": "pending", "customer": identity.subject}, status_code=202)

    app = Starlette(routes=[Route("/api/v1/orders", orders, methods=["POST"])])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def run_gateway(port: int, data_dir: str, upstream: str) -> None:
    import structlog

    from orderflow.bootstrap import build_gateway
    from orderflow.config import Settings
    from orderflow.services.gateway import GatewaySettings

    sink = open("/dev/null", "w")  # noqa: SIM115 - lives as long as the process
    structlog.configure(
        processors=[
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=structlog.WriteLoggerFactory(sink),
    )
    settings = Settings(data_dir=Path(data_dir))
    gw = GatewaySettings(api_upstream=upstream, login_ip_limit=10_000)
    app = build_gateway(settings, gw)
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        proxy_headers=False,
    )


async def wait_up(url: str) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(200):
            try:
                async with session.get(url) as response:
                    await response.read()
                    return
            except aiohttp.ClientError:
                await asyncio.sleep(0.05)
    raise RuntimeError(f"{url} did not start")


async def load(
    url: str, headers: dict[str, str], requests: int, concurrency: int
) -> dict[str, float]:
    latencies: list[float] = []
    remaining = requests
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                started = time.perf_counter()
                async with session.post(url, data=BODY, headers=headers) as response:
                    await response.read()
                    if response.status != 202:
                        raise RuntimeError(f"{url}: {response.status} {await response.text()}")
                latencies.append(time.perf_counter() - started)

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    latencies.sort()
    return {
        "rps": len(latencies) / elapsed,
        "p50": statistics.median(latencies) * 1000,
        "p99": latencies[int(len(latencies) * 0.99) - 1] * 1000,
    }


async def main(args: argparse.Namespace) -> None:
    from orderflow.adapters.identity.assertions import AssertionSigner, ensure_signing_key
    from orderflow.domain.identity import Identity

    data_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="gw-bench-"))
    keys = ensure_signing_key(data_dir / "keys")  # the gateway signs with this same key
    jwks = str(data_dir / "keys" / "identity.jwks.json")
    ctx = multiprocessing.get_context("spawn")
    processes = []
    upstream = args.upstream
    if upstream is None:
        upstream_port = free_port()
        upstream = f"http://127.0.0.1:{upstream_port}"
        processes.append(ctx.Process(target=run_upstream, args=(upstream_port, jwks), daemon=True))
    gateway_port = free_port()
    gateway = f"http://127.0.0.1:{gateway_port}"
    processes.append(
        ctx.Process(target=run_gateway, args=(gateway_port, str(data_dir), upstream), daemon=True)
    )
    for process in processes:
        process.start()
    try:
        await wait_up(gateway + "/healthz")
        async with aiohttp.ClientSession(base_url=gateway) as session:
            body = {"email": "bench@example.com", "password": "bench-password-1", "name": "B"}
            async with session.post("/auth/register", json=body) as response:
                assert response.status == 202, await response.text()
            form = {"username": body["email"], "password": body["password"]}
            async with session.post("/auth/token", data=form) as response:
                token = (await response.json())["access_token"]
            async with session.get("/auth/me", headers={"Authorization": f"Bearer {token}"}) as r:
                subject = (await r.json())["id"]
        assertion = AssertionSigner(keys, ttl=3600).sign(
            Identity(subject, frozenset({"customer"}), email=body["email"])
        )
        direct_headers = {"X-OrderFlow-Identity": assertion, "Content-Type": "application/json"}
        gateway_headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        path = "/api/v1/orders"
        warm = max(200, args.requests // 10)
        await load(upstream + path, direct_headers, warm, args.concurrency)
        await load(gateway + path, gateway_headers, warm, args.concurrency)
        direct = await load(upstream + path, direct_headers, args.requests, args.concurrency)
        through = await load(gateway + path, gateway_headers, args.requests, args.concurrency)
    finally:
        for process in processes:
            process.terminate()
            process.join(5)
    print(f"{args.requests} POSTs, concurrency {args.concurrency}, upstream {upstream}")
    for name, figures in (("direct", direct), ("gateway", through)):
        print(
            f"  {name:8} {figures['rps']:8.0f} req/s   p50 {figures['p50']:6.2f} ms"
            f"   p99 {figures['p99']:6.2f} ms"
        )
    cost = 1 - through["rps"] / direct["rps"]
    print(
        f"  overhead: {cost:.0%} of throughput, +{through['p50'] - direct['p50']:.2f} ms p50,"
        f" +{through['p99'] - direct['p99']:.2f} ms p99"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--upstream", help="an already running upstream (e.g. the order API)")
    parser.add_argument("--data-dir", help="data dir whose keys the upstream trusts (--upstream)")
    asyncio.run(main(parser.parse_args()))
    sys.exit(0)
