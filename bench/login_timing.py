"""Login timing: does a failed login take longer for an address that has an account?

Run: .venv/bin/python bench/login_timing.py [--attempts N]

Starts `orderflow serve gateway` on a fresh data dir (rate limits raised so they do not answer
first), registers one account, then sends failed logins over real HTTP, interleaved: a wrong
password for the registered address, and addresses that have no account. A gateway that skipped
the password hash for unknown addresses would answer those in microseconds instead of the ~50 ms
an argon2id check takes; the two medians should be within noise of each other.
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_up(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"the gateway exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    sys.exit("the gateway did not start")


def summary(name: str, ms: list[float]) -> str:
    q = statistics.quantiles(ms, n=10)
    median = statistics.median(ms)
    return f"{name:<26} n={len(ms):<4} p10 {q[0]:6.1f}  median {median:6.1f}  p90 {q[-1]:6.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attempts", type=int, default=200, help="failed logins per kind")
    args = parser.parse_args()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as data:
        env = {
            **os.environ,
            "ORDERFLOW_DATA_DIR": data,
            "ORDERFLOW_LOG_LEVEL": "WARNING",
            "ORDERFLOW_GATEWAY_LOGIN_IP_LIMIT": "1000000",
            "ORDERFLOW_GATEWAY_LOGIN_ACCOUNT_LIMIT": "1000000",
            "ORDERFLOW_GATEWAY_LOGIN_CLIENT_LIMITS": "[[1000000, 60]]",
        }
        orderflow = Path(sys.executable).with_name("orderflow")
        cmd = [str(orderflow), "serve", "gateway", "--port", str(port)]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)
        try:
            wait_up(url, proc)
            timings = run(url, args.attempts)
        finally:
            proc.terminate()
            proc.wait(30)
    known, unknown = timings["registered address"], timings["address without account"]
    for name, ms in timings.items():
        print(summary(name, ms))
    gap = statistics.median(known) - statistics.median(unknown)
    print(f"median difference (registered - unknown): {gap:+.1f} ms")


def run(url: str, attempts: int) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {"registered address": [], "address without account": []}
    with httpx.Client(base_url=url, timeout=30) as client:
        body = {"email": "ada@example.com", "password": "correct horse battery", "name": "Ada"}
        assert client.post("/auth/register", json=body).status_code == 202
        kinds = [k for k in timings for _ in range(attempts)]
        random.Random(1).shuffle(kinds)
        for i, kind in enumerate(kinds):
            user = "ada@example.com" if kind == "registered address" else f"nobody{i}@example.com"
            started = time.perf_counter()
            response = client.post("/auth/token", data={"username": user, "password": "wrong!"})
            timings[kind].append((time.perf_counter() - started) * 1000)
            assert response.status_code == 401, response.text
    return timings


if __name__ == "__main__":
    main()
