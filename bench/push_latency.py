"""Push latency: from a status change being decided to its arrival at a subscribed client.

    .venv/bin/python bench/push_latency.py --shape embedded --clients 2000 --rate 200 --seconds 20
    .venv/bin/python bench/push_latency.py --shape nats ...   # or rabbitmq: PostgreSQL + broker

It starts a fresh deployment of the shape on ports 18600-18699 and data under /tmp (embedded:
`orderflow run`; nats/rabbitmq: a fresh PostgreSQL database and broker prefix, `serve api`,
`worker all` (relay + consumers), one `serve stream` behind one `serve gateway`, as
tests/stream/conftest.py does), or measures a running one with --url (then pass --stream-pid).

Method:
- The gateway of the bench's own deployment hashes passwords with cheap argon2 settings
  (ORDERFLOW_GATEWAY_ARGON2_TIME_COST=1, _MEMORY_COST=8192) and its registration and login rate
  limits are raised, so 2,000 shoppers sign up in seconds; everything else is the real path.
- --clients WebSockets through the gateway, --clients-per-customer per shopper (1: every change
  goes to exactly one connection), spread over client processes of at most --per-process
  connections each (multiprocessing), each subscribed with scope `mine`.
- The stream process's RSS is read when it is fresh (before any client) and again once every
  client is connected and idle: memory per idle connection.
- The parent places orders at --rate for --seconds through the gateway (open loop, round robin
  over the shoppers). Every `status` message a client receives counts `arrival - at`, where `at`
  is the change's own server-side timestamp (when the writer decided it, just before its commit)
  and arrival is read on the same machine's clock: commit + outbox relay + broker + stream process
  + gateway + client. Only orders placed during the run are counted, and only once drained.
- Each client process reports its CPU share over the load phase: one above ~80% of a core is the
  bottleneck itself, and the figure is then the client's (it says so). The CPU of the deployment's
  processes and the load average are printed too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing as mp
import os
import statistics
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event
from pathlib import Path
from threading import Thread

import httpx
import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support.system import System, order_body

CHEAP_GATEWAY = {
    "ORDERFLOW_GATEWAY_REGISTER_IP_LIMIT": "1000000",
    "ORDERFLOW_GATEWAY_LOGIN_IP_LIMIT": "1000000",
    "ORDERFLOW_GATEWAY_ARGON2_MEMORY_COST": "8192",
    "ORDERFLOW_GATEWAY_ARGON2_TIME_COST": "1",
    "ORDERFLOW_GATEWAY_ARGON2_PARALLELISM": "1",
    "ORDERFLOW_LOG_LEVEL": "WARNING",
}
PASSWORD = "push latency bench"
TICKS = os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process and its waited-for children, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(x) for x in fields[11:15]) / TICKS


@dataclass
class Target:
    url: str  # the gateway
    stream_pid: int
    pids: dict[str, int] = field(default_factory=dict)  # the deployment's processes, for CPU


# ---- deployments ------------------------------------------------------------------------------


@contextlib.contextmanager
def deploy(shape: str, root: Path, base_port: int) -> Iterator[Target]:
    if shape == "embedded":
        env = {**CHEAP_GATEWAY, "ORDERFLOW_STREAM_PORT": str(base_port + 2)}
        system = System(root / "data", env=env, port=base_port, api_port=base_port + 1)
        system.start(180)
        try:
            pids = {
                name: system.child_pid(pattern)
                for name, pattern in (
                    ("gateway", "serve gateway"),
                    ("api", "serve api"),
                    ("stream", "serve stream"),
                    ("worker", "worker all"),
                )
            }
            _wait_ready(f"http://127.0.0.1:{base_port + 2}")
            yield Target(system.public_url, pids["stream"], pids)
        finally:
            system.stop()
        return
    from tests.distributed.cluster import Cluster, broker_url
    from tests.support.databases import fresh_database

    with fresh_database("postgresql", root) as database_url:
        cluster = Cluster(root / "cluster", database_url, broker_url(shape), env=CHEAP_GATEWAY)
        cluster.prepare()
        env = {**cluster.environment(), "ORDERFLOW_DATA_DIR": str(cluster.root)}
        gateway_db = f"sqlite+aiosqlite:///{root / 'gateway.db'}"
        procs = {
            "api": System(root / "api", ("serve", "api"), env, port=base_port + 1),
            "worker": System(root / "worker", ("worker", "all"), env, port=base_port + 3),
            "stream": System(root / "stream", ("serve", "stream"), env, port=base_port + 2),
        }
        procs["gateway"] = System(
            root / "gateway",
            ("serve", "gateway"),
            {
                **env,
                "ORDERFLOW_GATEWAY_DATABASE_URL": gateway_db,
                "ORDERFLOW_GATEWAY_API_UPSTREAM": procs["api"].url,
                "ORDERFLOW_GATEWAY_STREAM_UPSTREAM": procs["stream"].url,
            },
            port=base_port,
        )
        cluster.procs.update(procs)
        try:
            threads = [Thread(target=s.start, args=(180,)) for s in procs.values()]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            _wait_ready(procs["stream"].url)
            pids = {name: s.proc.pid for name, s in procs.items() if s.proc}
            yield Target(procs["gateway"].public_url, pids["stream"], pids)
        finally:
            cluster.stop_all()
            asyncio.run(cluster.destroy_broker_objects())


def _wait_ready(url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise TimeoutError(f"{url} not ready")


# ---- client processes -------------------------------------------------------------------------


def client_process(
    url: str,
    customers: int,
    per_customer: int,
    out: Connection,
    load_started: Event,
    load_done: Event,
) -> None:
    """Sign up `customers` shoppers, open `per_customer` WebSockets each, report the tokens, and
    after `load_done`, the latencies and this process's CPU share during the load."""
    asyncio.run(_client(url, customers, per_customer, out, load_started, load_done))


async def _client(
    url: str,
    customers: int,
    per_customer: int,
    out: Connection,
    load_started: Event,
    load_done: Event,
) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=120) as http:
        gate = asyncio.Semaphore(8)

        async def sign_up() -> str:
            email = f"push-{uuid.uuid4().hex[:12]}@example.com"
            async with gate:
                answer = await http.post(
                    "/auth/register", json={"email": email, "password": PASSWORD, "name": "B"}
                )
                answer.raise_for_status()
                answer = await http.post(
                    "/auth/token", data={"username": email, "password": PASSWORD}
                )
                answer.raise_for_status()
                return str(answer.json()["access_token"])

        tokens = await asyncio.gather(*(sign_up() for _ in range(customers)))
    samples: list[tuple[float, float]] = []  # (at, arrival)
    ready = asyncio.Event()
    opened = 0
    target = customers * per_customer

    retried = 0

    async def opening(token: str) -> ClientConnection:
        """Connect; a refused opening (the gateway's 504/503 while thousands open at once) is
        retried a few times and counted."""
        nonlocal retried
        for attempt in range(5):
            try:
                return await connect(
                    url.replace("http", "ws", 1) + "/ws",
                    additional_headers={"Authorization": f"Bearer {token}"},
                    open_timeout=120,
                    ping_interval=None,
                    max_queue=None,
                )
            except InvalidStatus:
                if attempt == 4:
                    raise
                retried += 1
                await asyncio.sleep(1 + attempt)
        raise AssertionError("unreachable")

    def _ending(task: asyncio.Task[None]) -> str:
        """How a lost connection ended: its close code and reason, or the error."""
        error = task.exception()
        if isinstance(error, ConnectionClosed) and error.rcvd is not None:
            return f"close {error.rcvd.code} {error.rcvd.reason}".strip()
        return str(error) if isinstance(error, RuntimeError) else type(error).__name__

    async def subscriber(token: str) -> None:
        nonlocal opened
        async with await opening(token) as conn:
            await conn.send('{"type": "subscribe", "scope": "mine"}')
            async for raw in conn:
                arrived = time.time()
                message = orjson.loads(raw)
                kind = message["type"]
                if kind == "status":
                    samples.append((datetime.fromisoformat(message["at"]).timestamp(), arrived))
                elif kind == "subscribed":
                    opened += 1
                    if opened == target:
                        ready.set()
            # The server ended it with a normal close code (the loop ends without an error).
            raise RuntimeError(f"close {conn.close_code} {conn.close_reason or ''}".strip())

    tasks = []
    for i in range(target):
        tasks.append(asyncio.create_task(subscriber(tokens[i % customers])))
        if i % 50 == 49:
            await asyncio.sleep(0.5)  # a ramp: the gateway's and the stream's accept queues
    waiting = asyncio.create_task(ready.wait())
    await asyncio.wait([waiting, *tasks], return_when=asyncio.FIRST_COMPLETED)
    if not ready.is_set():
        failed = next(t for t in tasks if t.done())
        out.send(("error", repr(failed.exception())))
        return
    out.send(("ready", (tokens, retried)))
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, load_started.wait)
    cpu0, wall0 = time.process_time(), time.monotonic()
    await loop.run_in_executor(None, load_done.wait)
    cpu = (time.process_time() - cpu0) / (time.monotonic() - wall0)
    broken = Counter(_ending(t) for t in tasks if t.done())
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    out.send(("done", samples, cpu, broken))


# ---- the run ----------------------------------------------------------------------------------


async def place_orders(url: str, tokens: list[str], rate: float, seconds: float) -> tuple[int, int]:
    """Open loop: order i is due at i / rate; prints the rate the API actually accepted."""
    limits = httpx.Limits(max_connections=512, max_keepalive_connections=512)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as http:
        placed, interval = 0, 1.0 / rate
        start = time.monotonic()
        answered: list[float] = []

        async def place(token: str) -> bool:
            answer = await http.post(
                "/api/v1/orders",
                json=order_body([("MUG-WHT", 1)]),
                headers={"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex},
            )
            answered.append(time.monotonic() - start)
            return answer.status_code == 202

        pending: list[asyncio.Task[bool]] = []
        while (due := start + placed * interval) < start + seconds:
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            pending.append(asyncio.create_task(place(tokens[placed % len(tokens)])))
            placed += 1
        results = await asyncio.gather(*pending, return_exceptions=True)
        refused = sum(1 for r in results if r is not True)
        last = max(answered, default=seconds)
        print(
            f"  accepted: {placed - refused} orders, the last 202 after {last:.1f} s:"
            f" {(placed - refused) / last:.0f} orders/s achieved"
        )
        return placed, refused


def measure(target: Target, args: argparse.Namespace) -> None:
    per_customer = args.clients_per_customer
    customers = args.clients // per_customer
    processes = max(1, -(-args.clients // args.per_process))
    fresh = rss_kib(target.stream_pid) if target.stream_pid else 0
    ctx = mp.get_context("spawn")
    started, done = ctx.Event(), ctx.Event()
    pipes, procs = [], []
    for i in range(processes):
        share = customers // processes + (1 if i < customers % processes else 0)
        here, there = ctx.Pipe()
        proc = ctx.Process(
            target=client_process, args=(target.url, share, per_customer, there, started, done)
        )
        proc.start()
        pipes.append(here)
        procs.append(proc)
    t0 = time.monotonic()
    tokens: list[str] = []
    retried = 0
    try:
        for pipe in pipes:
            kind, payload = pipe.recv()
            if kind != "ready":
                raise SystemExit(f"a client process failed: {payload}")
            tokens.extend(payload[0])
            retried += payload[1]
        print(
            f"{customers} shoppers signed up, {customers * per_customer} WebSockets open in"
            f" {processes} client processes after {time.monotonic() - t0:.0f} s"
            f" ({retried} openings refused once and retried)"
        )
        time.sleep(3)
        idle = rss_kib(target.stream_pid) if target.stream_pid else 0
        n = customers * per_customer
        print(
            f"stream process (pid {target.stream_pid}): fresh RSS {fresh} KiB, with {n} idle"
            f" connections {idle} KiB: {(idle - fresh) / n:.1f} KiB per connection"
        )
        cpu0 = {name: cpu_seconds(pid) for name, pid in target.pids.items()}
        load0, wall0 = os.getloadavg()[0], time.monotonic()
        started.set()
        placed, refused = asyncio.run(place_orders(target.url, tokens, args.rate, args.seconds))
        time.sleep(args.drain)
        wall = time.monotonic() - wall0
        cpu = {name: (cpu_seconds(pid) - cpu0[name]) / wall for name, pid in target.pids.items()}
        load1 = os.getloadavg()[0]
        done.set()
        samples: list[tuple[float, float]] = []
        client_cpu: list[float] = []
        broken: Counter[str] = Counter()
        for pipe in pipes:
            kind, got, share, lost = pipe.recv()
            samples.extend(got)
            client_cpu.append(share)
            broken += lost
    finally:
        done.set()
        for proc in procs:
            proc.join(30)
            if proc.is_alive():
                proc.terminate()
    ms = sorted((arrival - at) * 1000 for at, arrival in samples)
    print(
        f"placed {placed} orders at {args.rate:.0f}/s offered for {args.seconds:.0f} s"
        f" ({refused} not accepted), {len(ms)} status messages received"
        f" (expected {4 * (placed - refused) * per_customer} for 4 changes each),"
        f" {sum(broken.values())} connections lost" + (f" {dict(broken)}" if broken else "")
    )
    if len(ms) > 1:
        p = statistics.quantiles(ms, n=100)
        print(
            f"push latency ms: p50 {p[49]:.1f}  p90 {p[89]:.1f}  p99 {p[98]:.1f}  max {ms[-1]:.1f}"
        )
    shares = ", ".join(f"{c:.0%}" for c in client_cpu)
    print(f"client processes' CPU during the load (of one core): {shares}")
    if max(client_cpu, default=0) > 0.8:
        print("  a client process was above 80%: these figures are partly the client's")
    print(
        "deployment CPU (of one core): "
        + ", ".join(f"{name} {share:.0%}" for name, share in cpu.items())
        + f"; load average {load0:.1f} -> {load1:.1f} on {os.cpu_count()} cores"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=["embedded", "nats", "rabbitmq"], default="embedded")
    parser.add_argument("--url", help="measure a running deployment's gateway instead")
    parser.add_argument("--stream-pid", type=int, default=0, help="with --url")
    parser.add_argument("--base-port", type=int, default=18600, help="gateway; +1 API, +2 stream")
    parser.add_argument("--clients", type=int, default=2000)
    parser.add_argument("--clients-per-customer", type=int, default=1)
    parser.add_argument("--per-process", type=int, default=500, help="connections per client")
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--drain", type=float, default=10, help="seconds to wait for stragglers")
    args = parser.parse_args()
    print(f"$ {' '.join(sys.argv)}  ({datetime.now().isoformat(timespec='seconds')})")
    if args.url:
        pids = {"stream": args.stream_pid} if args.stream_pid else {}
        measure(Target(args.url, args.stream_pid, pids), args)
        return
    root = Path(f"/tmp/push-latency-{args.shape}-{uuid.uuid4().hex[:8]}")
    with deploy(args.shape, root, args.base_port) as target:
        measure(target, args)


if __name__ == "__main__":
    main()
