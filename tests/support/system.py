"""Start OrderFlow as real OS processes for end-to-end tests, and talk to it over real HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from orderflow.adapters.identity.assertions import AssertionSigner, ensure_signing_key
from orderflow.domain.identity import Identity


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def customer(email: str | None = None) -> Identity:
    return Identity(str(uuid.uuid4()), frozenset({"customer"}), email=email)


def admin() -> Identity:
    return Identity(str(uuid.uuid4()), frozenset({"admin"}))


@dataclass
class System:
    """`orderflow <args>` running in its own process group with a private data directory."""

    data_dir: Path
    args: tuple[str, ...] = ("run",)
    env: Mapping[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)  # the public port: the gateway under `run`
    api_port: int = field(default_factory=free_port)
    # Under `run` the stream process listens too: never on its fixed default, which another
    # test run (or a developer's `make run`) on the machine may hold.
    stream_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        """The order API itself; tests sign identity assertions as the gateway would."""
        port = self.api_port if self.args[0] == "run" else self.port
        return f"http://127.0.0.1:{port}"

    @property
    def public_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def signer(self) -> AssertionSigner:
        # The system creates its key on first start; tests sign as the gateway would.
        return AssertionSigner(ensure_signing_key(self.data_dir / "keys"))

    def start(self, timeout: float = 60.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.data_dir / f"system-{int(time.time() * 1000)}.log"
        env = {
            **os.environ,
            "ORDERFLOW_DATA_DIR": str(self.data_dir),
            "ORDERFLOW_LOG_LEVEL": "WARNING",
            "ORDERFLOW_STREAM_PORT": str(self.stream_port),
            # `run` gives its workers a metrics port: a free one, so systems never collide there.
            "ORDERFLOW_WORKERS_PORT": str(free_port()),
            **self.env,
        }
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "orderflow", *self.args, *self._port_args()],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.wait_healthy(timeout)

    def _port_args(self) -> list[str]:
        ports = ["--port", str(self.port)]
        return [*ports, "--api-port", str(self.api_port)] if self.args[0] == "run" else ports

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"system exited early:\n{self.logs()}")
            try:
                if all(
                    httpx.get(f"{url}/healthz", timeout=1).status_code == 200
                    for url in {self.url, self.public_url}
                ):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"system not healthy after {timeout}s:\n{self.logs()}")

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait: the graceful path."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        """kill -9 every process of the system at once, like a power cut of the machine."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def child_pid(self, pattern: str) -> int:
        """The pid of the one child process of the supervisor whose command line matches."""
        assert self.proc is not None
        found = subprocess.run(
            ["pgrep", "-P", str(self.proc.pid), "-f", pattern],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        assert len(found) == 1, found
        return int(found[0])

    def logs_all(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:] if self.log_path else ""


def order_body(items: list[tuple[str, int]], token: str = "tok_visa") -> dict[str, object]:
    return {
        "items": [{"sku": sku, "quantity": qty} for sku, qty in items],
        "shipping_address": {
            "name": "Ada Lovelace",
            "line1": "12 Analytical St",
            "city": "London",
            "postal_code": "N1 9GU",
            "country": "GB",
        },
        "payment": {"token": token},
    }
