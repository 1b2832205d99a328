"""A payment worker's /readyz shows admins the provider's circuit state, and nobody else: the
real WorkerSet (bootstrap wiring: simulator behind the timeout and breaker) with its health
endpoint on a port, asked over HTTP with gateway-signed identity assertions."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from orderflow.adapters.identity.assertions import HEADER, AssertionSigner, ensure_signing_key
from orderflow.bootstrap import WorkerSet, prepare
from orderflow.config import Settings
from orderflow.domain.identity import Identity
from orderflow.domain.money import Money
from orderflow.ports.payments import TransientPaymentError
from tests.support.system import admin, customer, free_port


@pytest.fixture
async def worker(tmp_path: Path) -> AsyncIterator[tuple[WorkerSet, str]]:
    settings = Settings(
        data_dir=tmp_path,
        health_port=free_port(),
        payment_timeout=0.2,
        payment_breaker_threshold=2,
        payment_breaker_reset=600,
    )
    await prepare(settings)
    workers = WorkerSet(settings, ["payment"], with_relay=False)
    running = asyncio.create_task(workers.run())
    url = f"http://127.0.0.1:{settings.health_port}/readyz"
    try:
        async with httpx.AsyncClient() as client:
            while True:  # the endpoint starts with the worker; nothing to await before it
                try:
                    if (await client.get(url)).status_code == 200:
                        break
                except httpx.ConnectError:
                    await asyncio.sleep(0.05)
        yield workers, url
    finally:
        workers.stop.set()
        await running


def signed(settings: Settings, who: Identity) -> dict[str, str]:
    signer = AssertionSigner(ensure_signing_key(settings.identity_keys_dir))
    return {HEADER: signer.sign(who)}


async def test_only_admins_see_the_payment_circuit_and_it_follows_the_provider(
    worker: tuple[WorkerSet, str],
) -> None:
    workers, url = worker
    as_admin = signed(workers.settings, admin())
    async with httpx.AsyncClient() as client:
        closed = await client.get(url, headers=as_admin)
        assert closed.status_code == 200
        assert closed.json()["details"] == {
            "payment-provider": {"circuit": "closed", "retry_in": 0.0}
        }

        # The simulated provider hangs (2 s) on tok_timeout's first call, and the next call waits
        # behind it: two timeouts (0.2 s) open the circuit.
        gateway = workers.payment_gateway
        assert gateway is not None
        for key in ("authorize:a", "authorize:b"):
            with pytest.raises(TransientPaymentError):
                await gateway.authorize(
                    idempotency_key=key, amount=Money(100, "USD"), token="tok_timeout"
                )
        opened = (await client.get(url, headers=as_admin)).json()
        assert opened["status"] == "ready"  # the worker itself is fine
        assert opened["details"]["payment-provider"]["circuit"] == "opened"
        assert 0 < opened["details"]["payment-provider"]["retry_in"] <= 600

        for headers in ({}, signed(workers.settings, customer()), {HEADER: "forged"}):
            answer = await client.get(url, headers=headers)
            assert answer.status_code == 200
            assert answer.json() == {"status": "ready", "database": "ok", "broker": "ok"}
