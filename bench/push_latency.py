"""Push latency: from a status change being decided to its arrival at a subscribed client.

Run against a running deployment (the gateway's URL; the stream process's pid for memory):
    ORDERFLOW_STREAM_PORT=8082 .venv/bin/orderflow run --data-dir $D &   # embedded shape
    .venv/bin/python bench/push_latency.py --url http://127.0.0.1:8080 \\
        --clients 2000 --rate 200 --seconds 20 --stream-pid $(pgrep -f 'serve stream')
It signs up --customers shoppers, opens --clients WebSockets through the gateway spread over
them (scope `mine`), then places orders at --rate for --seconds from those shoppers and records,
for every status message received, `arrival - at`, where `at` is when the writer decided the
change, just before its commit (same machine, same clock): commit + outbox relay + broker +
stream process + gateway + client. p50/p99 over all messages. With --stream-pid it also reports
the stream process's resident memory before and after the idle connections opened (per
connection). Note the gateway holds two sockets per client and this one process both loads and
measures, so on 2 shared cores the figures bound the deployment from above.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path

import httpx
import orjson
from websockets.asyncio.client import ClientConnection, connect

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support.system import order_body


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def sign_up(http: httpx.AsyncClient, url: str) -> str:
    email, password = f"push-{uuid.uuid4().hex[:10]}@example.com", "push latency bench"
    await http.post(
        f"{url}/auth/register", json={"email": email, "password": password, "name": "Bench"}
    )
    answer = await http.post(f"{url}/auth/token", data={"username": email, "password": password})
    answer.raise_for_status()
    return str(answer.json()["access_token"])


async def subscriber(url: str, token: str, latencies: list[float], opened: list[int]) -> None:
    ws_url = url.replace("http", "ws", 1) + "/ws"
    conn: ClientConnection
    async with connect(
        ws_url,
        additional_headers={"Authorization": f"Bearer {token}"},
        open_timeout=60,
        ping_interval=None,
    ) as conn:
        await conn.send('{"type": "subscribe", "scope": "mine"}')
        opened[0] += 1
        async for raw in conn:
            arrived = time.time()
            message = orjson.loads(raw)
            if message["type"] == "status":
                latencies.append(arrived - datetime.fromisoformat(message["at"]).timestamp())


async def main(args: argparse.Namespace) -> None:
    limits = httpx.Limits(max_connections=64)
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        tokens = [await sign_up(http, args.url) for _ in range(args.customers)]
        before = rss_kib(args.stream_pid) if args.stream_pid else 0
        latencies: list[float] = []
        opened = [0]
        tasks = []
        for i in range(args.clients):
            tasks.append(
                asyncio.create_task(
                    subscriber(args.url, tokens[i % len(tokens)], latencies, opened)
                )
            )
            if i % 50 == 49:
                await asyncio.sleep(0.5)  # a ramp: the gateway's and stream's accept queues
        while opened[0] < args.clients:
            await asyncio.sleep(0.2)
            if any(t.done() for t in tasks):
                raise SystemExit(f"a subscriber failed: {next(t for t in tasks if t.done())}")
        await asyncio.sleep(2)
        idle = rss_kib(args.stream_pid) if args.stream_pid else 0
        if args.stream_pid:
            print(
                f"stream process: {args.clients} idle connections, RSS {before} -> {idle} KiB,"
                f" {(idle - before) / args.clients:.1f} KiB per connection"
            )
        interval, placed, failed = 1.0 / args.rate, 0, 0
        start = time.monotonic()
        pending: set[asyncio.Task[httpx.Response]] = set()
        while time.monotonic() - start < args.seconds:
            due = start + placed * interval
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            token = tokens[placed % len(tokens)]
            pending.add(
                asyncio.create_task(
                    http.post(
                        f"{args.url}/api/v1/orders",
                        json=order_body([("MUG-WHT", 1)]),
                        headers={"Authorization": f"Bearer {token}"},
                    )
                )
            )
            placed += 1
            done = {t for t in pending if t.done()}
            failed += sum(1 for t in done if t.exception() or t.result().status_code != 202)
            pending -= done
        await asyncio.gather(*pending, return_exceptions=True)
        await asyncio.sleep(args.drain)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    ms = sorted(x * 1000 for x in latencies)
    rate = placed / args.seconds
    print(
        f"placed {placed} orders ({rate:.0f}/s offered, {failed} refused), {len(ms)} status"
        f" messages to {args.clients} clients"
    )
    if ms:
        p = statistics.quantiles(ms, n=100)
        print(
            f"push latency ms: p50 {p[49]:.1f}  p90 {p[89]:.1f}  p99 {p[98]:.1f}  max {ms[-1]:.1f}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--clients", type=int, default=2000)
    parser.add_argument("--customers", type=int, default=100)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--drain", type=float, default=10, help="seconds to wait for stragglers")
    parser.add_argument("--stream-pid", type=int, default=0)
    asyncio.run(main(parser.parse_args()))
