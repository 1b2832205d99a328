"""Cross-process wake-up latency of ports/wakeup.py's adapters: ping-pong between two processes.

    .venv/bin/python bench/wakeup_latency.py unix /tmp/wakeup-bench
    .venv/bin/python bench/wakeup_latency.py postgres postgresql+asyncpg://postgres@127.0.0.1/postgres

Each round trip is two signals (ping, then pong) and two wake-ups; half of it is one hop.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time

from orderflow.adapters.wakeup import PostgresWakeup, UnixSocketWakeup
from orderflow.ports.wakeup import Wakeup


def make(kind: str, where: str) -> Wakeup:
    return UnixSocketWakeup(where) if kind == "unix" else PostgresWakeup(where)


async def echo(kind: str, where: str) -> None:
    wakeup = make(kind, where)
    await wakeup.wait("ping", 0.01)
    print("ready", flush=True)
    while await wakeup.wait("ping", 10.0):
        wakeup.signal("pong")
    await wakeup.close()


async def main(kind: str, where: str, rounds: int = 500) -> None:
    wakeup = make(kind, where)
    await wakeup.wait("pong", 0.01)
    child = await asyncio.create_subprocess_exec(
        sys.executable, __file__, kind, where, "--echo", stdout=asyncio.subprocess.PIPE
    )
    assert child.stdout is not None
    await child.stdout.readline()
    await asyncio.sleep(0.2)
    hops = []
    for _ in range(rounds):
        started = time.perf_counter()
        wakeup.signal("ping")
        if not await wakeup.wait("pong", 5.0):
            raise SystemExit("lost a wake-up")
        hops.append((time.perf_counter() - started) * 1000 / 2)
    child.terminate()
    await child.wait()
    await wakeup.close()
    hops.sort()
    p50, p90, p99 = (hops[int(q * (len(hops) - 1))] for q in (0.5, 0.9, 0.99))
    print(
        f"{kind}: one hop (ms) p50 {p50:.3f} p90 {p90:.3f} p99 {p99:.3f} "
        f"max {hops[-1]:.3f} mean {statistics.mean(hops):.3f} ({rounds} round trips)"
    )


if __name__ == "__main__":
    if sys.argv[3:] == ["--echo"]:
        asyncio.run(echo(sys.argv[1], sys.argv[2]))
    else:
        asyncio.run(main(sys.argv[1], sys.argv[2]))
