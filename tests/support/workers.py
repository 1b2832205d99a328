"""`orderflow worker ...` as a real OS process beside a test's API server, on its data directory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support.system import free_port


@contextmanager
def worker_process(
    data_dir: Path, *names: str, env: Mapping[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Start `orderflow worker <names>`, wait until its /healthz answers, SIGTERM it at the end."""
    port = free_port()
    log_path = data_dir / f"worker-{'-'.join(names)}-{port}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "orderflow", "worker", *names, "--health-port", str(port)],
            env={
                **os.environ,
                "ORDERFLOW_DATA_DIR": str(data_dir),
                "ORDERFLOW_LOG_LEVEL": "WARNING",
                **(env or {}),
            },
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"worker exited early:\n{log_path.read_text()[-5000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"worker not healthy:\n{log_path.read_text()[-5000:]}")
            time.sleep(0.1)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
