"""The composition root: builds adapters from settings and wires them into services.

Tests and other deployments call these same functions with other settings (or hand in their own
adapters) instead of patching anything.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

import structlog
from fastapi import FastAPI

from orderflow.adapters.broker.factory import broker_from_url
from orderflow.adapters.db.engine import Database
from orderflow.adapters.db.migrate import migrate
from orderflow.adapters.identity.assertions import ensure_signing_key, load_verifier
from orderflow.adapters.payments.simulator import SimulatedPaymentGateway
from orderflow.config import Settings
from orderflow.ports.broker import Broker, ConsumerSpec
from orderflow.ports.payments import PaymentGateway
from orderflow.seed import seed_demo_catalog
from orderflow.services.api.app import create_api_app
from orderflow.services.api.catalog_cache import CatalogCache
from orderflow.services.api.context import ApiContext
from orderflow.services.api.intake import OrderIntake
from orderflow.services.inventory.handler import InventoryHandler
from orderflow.services.orders.saga import OrderSaga
from orderflow.services.payment.handler import PaymentHandler
from orderflow.services.relay.relay import OutboxRelay
from orderflow.services.runtime.consumer import ConsumerRunner
from orderflow.services.runtime.handler import Handler

log = structlog.get_logger()


def build_database(settings: Settings) -> Database:
    return Database(settings.database_url, pool_size=settings.db_pool_size)


def build_broker(settings: Settings) -> Broker:
    return broker_from_url(settings.broker_url, settings.broker_prefix)


def build_payment_gateway(settings: Settings) -> PaymentGateway:
    return SimulatedPaymentGateway(settings.payment_simulator_path)


async def prepare(settings: Settings) -> None:
    """Everything `orderflow run` needs before starting services: schema, demo data, keys."""
    db = build_database(settings)
    try:
        await migrate(db)
        if settings.seed_demo_catalog and await seed_demo_catalog(db):
            log.info("seeded the demo catalog")
    finally:
        await db.dispose()
    ensure_signing_key(settings.identity_keys_dir)


def build_api(settings: Settings, db: Database | None = None) -> FastAPI:
    db = db or build_database(settings)
    ctx = ApiContext(
        db=db,
        intake=OrderIntake(db),
        catalog=CatalogCache(db),
        verifier=load_verifier(settings.identity_jwks_file),
    )
    return create_api_app(ctx)


# Each consumer group and the topics it reads.
TOPOLOGY: dict[str, tuple[str, ...]] = {
    cls.group: cls.topics for cls in (OrderSaga, InventoryHandler, PaymentHandler)
}
WORKERS = tuple(TOPOLOGY)


def consumer_spec(name: str, settings: Settings) -> ConsumerSpec:
    return ConsumerSpec(
        group=name,
        topics=TOPOLOGY[name],
        max_in_flight=settings.batch_size,
        max_attempts=settings.max_attempts,
        ack_wait=settings.ack_wait,
    )


async def declare_topology(broker: Broker, settings: Settings) -> None:
    """Every consumer group exists before anything is published, whoever starts first."""
    for name in WORKERS:
        await broker.declare(consumer_spec(name, settings))


def build_handler(name: str, settings: Settings, db: Database) -> Handler:
    match name:
        case "orders":
            return OrderSaga()
        case "inventory":
            return InventoryHandler()
        case "payment":
            return PaymentHandler(build_payment_gateway(settings), db)
    raise ValueError(f"unknown worker {name!r}; choose from {', '.join(WORKERS)}")


@dataclass
class WorkerSet:
    """Some consumers and/or the relay, sharing one database pool and one broker connection."""

    settings: Settings
    names: Sequence[str]
    with_relay: bool
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        db = build_database(self.settings)
        broker = build_broker(self.settings)
        await broker.connect()
        relay = OutboxRelay(db, broker, batch_size=self.settings.batch_size * 2)
        runners = [
            ConsumerRunner(
                build_handler(name, self.settings, db),
                consumer_spec(name, self.settings),
                broker,
                db,
                retry_base=self.settings.retry_base_delay,
                retry_cap=self.settings.retry_max_delay,
                on_committed=relay.wake,
            )
            for name in self.names
        ]
        try:
            await declare_topology(broker, self.settings)
            tasks = [asyncio.create_task(r.run(self.stop), name=r.spec.group) for r in runners]
            if self.with_relay:
                tasks.append(asyncio.create_task(relay.run(self.stop), name="relay"))
            await asyncio.gather(*tasks)
        finally:
            await broker.close()
            await db.dispose()
