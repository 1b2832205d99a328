"""The distributed shape as real OS processes: PostgreSQL, a networked broker, and every service
started alone (`orderflow serve api`, `orderflow worker <name>` x N, `orderflow relay`), each
with its own health port, sharing nothing but configuration in the environment.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from orderflow.adapters.identity.assertions import AssertionSigner, ensure_signing_key
from orderflow.bootstrap import WORKERS, build_broker, declare_topology
from orderflow.config import Settings
from orderflow.demo.catalog import PLENTY, SCARCE
from tests.support.databases import stock_levels
from tests.support.orders import Planned, captures_per_order
from tests.support.services import require_service
from tests.support.system import System

BROKERS = {"nats": "nats://127.0.0.1:4222", "rabbitmq": "amqp://guest:guest@127.0.0.1:5672/"}


def broker_url(engine: str) -> str:
    service = require_service(engine)
    assert f":{service.port}" in BROKERS[engine]
    return BROKERS[engine]


@dataclass
class Cluster:
    root: Path
    database_url: str
    broker_url: str
    env: Mapping[str, str] = field(default_factory=dict)
    prefix: str = field(default_factory=lambda: f"dist.{uuid.uuid4().hex[:12]}")
    procs: dict[str, System] = field(default_factory=dict)

    @property
    def keys_dir(self) -> Path:
        return self.root / "keys"

    @property
    def payments_ledger(self) -> Path:
        return self.root / "payment-simulator.db"

    def environment(self) -> dict[str, str]:
        return {
            "ORDERFLOW_DATABASE_URL": self.database_url,
            "ORDERFLOW_BROKER_URL": self.broker_url,
            "ORDERFLOW_BROKER_PREFIX": self.prefix,
            "ORDERFLOW_IDENTITY_KEYS_DIR": str(self.keys_dir),
            "ORDERFLOW_PAYMENT_SIMULATOR_PATH": str(self.payments_ledger),
            # Deliveries a killed worker held come back within seconds.
            "ORDERFLOW_ACK_WAIT": "5",
            **self.env,
        }

    def orderflow(self, *args: str) -> str:
        """Run a one-shot `orderflow` command (migrate, seed, audit) with this configuration."""
        result = subprocess.run(
            [sys.executable, "-m", "orderflow", *args],
            env={**os.environ, "ORDERFLOW_DATA_DIR": str(self.root), **self.environment()},
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    def prepare(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        ensure_signing_key(self.keys_dir)
        self.orderflow("migrate")
        self.orderflow("seed")

    def start(self, processes: Mapping[str, tuple[str, ...]]) -> None:
        """Start these processes at once, each in its own process group, and wait until every
        one answers /healthz (the API's own, or the worker's --health-port)."""
        made = {
            name: System(self.root / name, args=args, env=self.environment())
            for name, args in processes.items()
        }
        with ThreadPoolExecutor(len(made)) as pool:
            for future in [pool.submit(s.start, 90.0) for s in made.values()]:
                future.result()
        self.procs.update(made)

    def start_all(self, instances: int = 2) -> None:
        processes = {"api": ("serve", "api"), "relay": ("relay",)}
        for worker in WORKERS:
            for i in range(1, instances + 1):
                processes[f"{worker}-{i}"] = ("worker", worker)
        self.start(processes)

    @property
    def api_url(self) -> str:
        return self.procs["api"].url

    def signer(self) -> AssertionSigner:
        return AssertionSigner(ensure_signing_key(self.keys_dir), ttl=3600)

    def kill(self, name: str) -> None:
        self.procs[name].kill()

    def stop_all(self) -> dict[str, int | None]:
        """SIGTERM every process still running; their exit codes (None: had to be killed)."""
        codes: dict[str, int | None] = {}
        running = {n: s for n, s in self.procs.items() if s.proc and s.proc.poll() is None}
        for system in running.values():
            assert system.proc is not None
            system.proc.send_signal(signal.SIGTERM)
        for name, system in running.items():
            assert system.proc is not None
            try:
                codes[name] = system.proc.wait(30)
            except subprocess.TimeoutExpired:
                system.kill()
                codes[name] = None
        return codes

    def logs(self) -> str:
        return "\n".join(f"--- {n}\n{s.logs()[-1500:]}" for n, s in self.procs.items())

    def ready(self, name: str) -> httpx.Response:
        return httpx.get(f"{self.procs[name].url}/readyz", timeout=5)

    async def destroy_broker_objects(self) -> None:
        """Delete this run's streams / queues from the shared server."""
        settings = Settings(broker_url=self.broker_url, broker_prefix=self.prefix)
        broker = build_broker(settings)
        try:
            await broker.connect()
            await declare_topology(broker, settings)
            await broker.destroy()  # type: ignore[attr-defined]
        finally:
            await broker.close()

    async def check_outcome(
        self, accepted: Mapping[str, Planned], final: Mapping[str, dict[str, object]]
    ) -> None:
        """Every accepted order is right, settled once, with a contiguous timeline; stock and
        payments add up; `orderflow audit` agrees."""
        assert set(final) == set(accepted)
        for oid, planned in accepted.items():
            doc = final[oid]
            if planned.expected is not None:
                assert doc["status"] == planned.expected, (planned.token, doc)
            else:
                assert doc["status"] in {"confirmed", "rejected"}, doc
            timeline: list[dict[str, object]] = doc["timeline"]  # type: ignore[assignment]
            assert [e["seq"] for e in timeline] == list(range(1, len(timeline) + 1)), timeline
            entered = [e["status"] for e in timeline if e["status"] != e["previous_status"]]
            assert entered.count(doc["status"]) == 1, timeline
        scarce = Counter(final[o]["status"] for o, p in accepted.items() if p.expected is None)
        units = sum(SCARCE["LIMITED-TEE"].values())
        if sum(scarce.values()) >= units:
            assert scarce["confirmed"] == units, scarce

        sold: Counter[str] = Counter()
        for doc in final.values():
            if doc["status"] == "confirmed":
                for line in doc["lines"]:  # type: ignore[attr-defined]
                    sold[line["sku"]] += line["quantity"]
        for sku, (on_hand, reserved) in (await stock_levels(self.database_url)).items():
            initial = sum(SCARCE[sku].values()) if sku in SCARCE else 2 * PLENTY
            assert reserved == 0, sku
            assert on_hand == initial - sold[sku], sku

        charges = captures_per_order(self.payments_ledger)
        assert {o for o, d in final.items() if d["status"] == "confirmed"} == set(charges)
        assert set(charges.values()) == {1}, "one capture per confirmed order"
        assert "all invariants hold" in self.orderflow("audit", "--database-url", self.database_url)
