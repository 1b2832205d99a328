"""The composition root: builds adapters from settings and wires them into services.

Tests and other deployments call these same functions with other settings (or hand in their own
adapters) instead of patching anything.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, TypeVar

import structlog

from orderflow.adapters.broker import BrokerSettings, broker_from_url
from orderflow.adapters.broker.embedded.broker import EmbeddedBroker, fetch_waker
from orderflow.adapters.db.engine import Database, Timeouts
from orderflow.adapters.db.storage import SqlStorage
from orderflow.adapters.payments.breaker import GuardedPaymentGateway
from orderflow.adapters.payments.simulator import SimulatedPaymentGateway
from orderflow.adapters.urls import redact_url
from orderflow.adapters.wakeup import PostgresWakeup, UnixSocketWakeup
from orderflow.config import RetryPolicySettings, Settings
from orderflow.demo.catalog import seed_demo_catalog
from orderflow.domain.order import OrderStatus
from orderflow.domain.watchdog import StallPolicy
from orderflow.observability import metrics
from orderflow.ports.broker import Broker, ConsumerSpec
from orderflow.ports.identity import IdentityVerifier
from orderflow.ports.storage import Storage
from orderflow.ports.wakeup import OUTBOX, Wakeup
from orderflow.services.inventory.handler import InventoryHandler
from orderflow.services.orders.backlog import BacklogGate
from orderflow.services.orders.expiry import ReservationExpiry
from orderflow.services.orders.intake import OrderIntake
from orderflow.services.orders.recovery import DeadLetters
from orderflow.services.orders.saga import OrderSaga
from orderflow.services.orders.watchdog import OrderWatchdog
from orderflow.services.payment.answers import PaymentAnswer
from orderflow.services.payment.handler import PaymentHandler
from orderflow.services.payment.metered import MeteredPaymentGateway
from orderflow.services.relay.relay import OutboxRelay
from orderflow.services.runtime.backlog import backlog_sampler
from orderflow.services.runtime.consumer import ConsumerRunner
from orderflow.services.runtime.dead_letters import DeadLetterWatcher
from orderflow.services.runtime.handler import Handler
from orderflow.services.runtime.health import HealthServer
from orderflow.services.runtime.periodic import run_every
from orderflow.services.runtime.retention import ProcessedPruner
from orderflow.services.runtime.retrying import (
    Backoff,
    RedeliveryPolicy,
    retry_until_stopped,
    wait_until_reachable,
)
from orderflow.services.runtime.throttle import Throttle

if TYPE_CHECKING:
    # Only the process serving one of these imports it (see each builder): a worker needs no
    # web framework, and the supervisor of `orderflow run` imports none of this module.
    from fastapi import FastAPI
    from sqlalchemy.ext.asyncio import AsyncEngine
    from starlette.applications import Starlette

    from orderflow.services.audit import Violation
    from orderflow.services.gateway import GatewaySettings
    from orderflow.services.gateway.admin import AccountAction

log = structlog.get_logger()

T = TypeVar("T")


def db_timeouts(settings: Settings) -> Timeouts:
    """How long any wait on a database may last: the order database's and the gateway's."""
    return Timeouts(
        lock=settings.db_lock_timeout,
        statement=settings.db_statement_timeout,
        connect=settings.db_connect_timeout,
        migration=settings.db_migration_timeout,
    )


def build_database(settings: Settings, *, answers_clients: bool = True) -> Database:
    """`answers_clients`: its commits are promised to a client (the API's 202) and must be on
    disk first. Other writers skip that wait where the pipeline lives in one SQLite file."""
    durable = answers_clients or not settings.pipeline_in_one_file
    return Database(
        settings.database_url,
        pool_size=settings.db_pool_size,
        durable_commits=durable,
        timeouts=db_timeouts(settings),
    )


def build_storage(db: Database) -> Storage:
    return SqlStorage(db)


def build_broker(settings: Settings) -> Broker:
    shared = BrokerSettings(settings.broker_prefix, settings.broker_partitions or None)
    return broker_from_url(settings.broker_url, shared)


def build_wakeup(settings: Settings) -> Wakeup:
    """How writers wake the relay in other processes: LISTEN/NOTIFY on PostgreSQL, Unix
    sockets beside the data otherwise (the processes share one machine)."""
    if settings.database_url.startswith("postgresql"):
        return PostgresWakeup(settings.database_url)
    return UnixSocketWakeup(settings.data_dir / "wakeup")


def build_outbox_signal(settings: Settings) -> Callable[[], None]:
    """What a process without a broker (the API) calls after committing outbox rows, to wake
    whoever moves them on: the consumers themselves where the outbox trigger publishes at
    commit (database and embedded broker in one file), else the relay."""
    if settings.pipeline_in_one_file:
        return fetch_waker(settings.broker_url)
    return functools.partial(build_wakeup(settings).signal, OUTBOX)


def build_payment_gateway(settings: Settings) -> GuardedPaymentGateway:
    """The provider (its calls metered) behind a timeout and a circuit breaker
    (adapters/payments/breaker.py); a call failed fast never reached the provider."""
    return GuardedPaymentGateway(
        MeteredPaymentGateway(
            SimulatedPaymentGateway(settings.payment_simulator_path), "simulator"
        ),
        timeout=settings.payment_timeout,
        threshold=settings.payment_breaker_threshold,
        reset_after=settings.payment_breaker_reset,
    )


async def audit(settings: Settings) -> tuple[list[Violation], dict[str, int]]:
    """Every invariant checked (money against the provider's own ledger), and orders by status."""
    from orderflow.adapters.db.audit import SqlAuditQueries
    from orderflow.services.audit import run_audit

    # The watchdog's deadlines (ORDERFLOW_WATCHDOG_DEADLINES): an order unmoved for its
    # deadline times (re-drives + 1) is one the watchdog should have re-driven or failed by now.
    patience = settings.watchdog_redrives + 1
    deadlines = {
        OrderStatus(s): timedelta(seconds=d * patience)
        for s, d in settings.watchdog_deadlines.items()
    }
    provider = SimulatedPaymentGateway(settings.payment_simulator_path)
    try:
        async with open_database(settings) as db, db.read() as conn:
            queries = SqlAuditQueries(conn)
            found = await run_audit(queries, provider, deadlines, datetime.now(UTC))
            return found, dict(await queries.status_counts())
    finally:
        provider.close()


@asynccontextmanager
async def open_database(settings: Settings) -> AsyncIterator[Database]:
    """A database for one job (a command, a test), its connections closed afterwards."""
    db = build_database(settings)
    try:
        yield db
    finally:
        await db.dispose()


async def prepare(settings: Settings) -> None:
    """Everything `orderflow run` needs before starting services: schema, demo data, keys."""
    from orderflow.adapters.db.migrate import migrate  # alembic: only here
    from orderflow.adapters.identity.assertions import ensure_signing_key

    async with open_database(settings) as db:
        await migrate(db)
        if settings.seed_demo_catalog and await seed_demo_catalog(db):
            log.info("seeded the demo catalog")
    ensure_signing_key(settings.identity_keys_dir)


def build_api(settings: Settings, db: Database | None = None) -> FastAPI:
    from orderflow.adapters.identity.assertions import load_verifier
    from orderflow.services.api.app import create_api_app
    from orderflow.services.api.catalog_cache import CatalogCache
    from orderflow.services.api.context import ApiContext

    storage = build_storage(db or build_database(settings))
    broker = build_broker(settings)  # connected on an admin's first dead-letter request
    ctx = ApiContext(
        db=storage,
        intake=OrderIntake(
            storage,
            max_waiting=settings.intake_max_waiting,
            on_committed=build_outbox_signal(settings),
        ),
        catalog=CatalogCache(storage),
        verifier=load_verifier(settings.identity_jwks_file),
        dead_letters=DeadLetters(broker, storage, WORKERS),
        broker=broker,
        backlog=BacklogGate(storage, settings.backlog_max, settings.backlog_refresh),
    )
    return create_api_app(ctx, readiness={"database": storage.ping})


def resolve_gateway_settings(
    settings: Settings, gateway_settings: GatewaySettings | None = None
) -> GatewaySettings:
    """The gateway's settings (`ORDERFLOW_GATEWAY_*` unless given), paths filled in."""
    from orderflow.services.gateway import GatewaySettings

    return (gateway_settings or GatewaySettings()).resolved(settings)


def build_gateway(settings: Settings, gateway_settings: GatewaySettings | None = None) -> Starlette:
    """The gateway app with its stores and keys; its database is migrated when it starts."""
    from orderflow.adapters.gateway_db import database as gateway_db
    from orderflow.adapters.gateway_db.accounts import SqlAccounts
    from orderflow.adapters.gateway_db.api_keys import SqlApiKeys
    from orderflow.adapters.gateway_db.refresh_tokens import SqlRefreshTokens
    from orderflow.adapters.identity.access_tokens import EdDsaAccessTokens
    from orderflow.adapters.identity.assertions import AssertionSigner, ensure_signing_key
    from orderflow.adapters.rate_limits import RateLimitStore
    from orderflow.services.gateway import GatewayParts, create_gateway_app

    gw = resolve_gateway_settings(settings, gateway_settings)
    timeouts = db_timeouts(settings)
    engine = gateway_db.create_engine(gw.database_url, timeouts)
    parts = GatewayParts(
        accounts=SqlAccounts(engine),
        refresh_tokens=SqlRefreshTokens(engine, gw.refresh_token_ttl),
        api_keys=SqlApiKeys(engine, gw.api_key_cache_seconds),
        tokens=EdDsaAccessTokens(gw.access_keys_dir, gw.access_token_ttl),
        signer=AssertionSigner(ensure_signing_key(settings.identity_keys_dir)),
        rate_limits=RateLimitStore(gw.rate_limit_storage, gw.rate_limit_prefix),
        readiness={"database": functools.partial(gateway_db.ping, engine)},
        on_start=functools.partial(gateway_db.migrate, engine, timeout=timeouts.migration),
        on_stop=engine.dispose,
    )
    return create_gateway_app(gw, parts)


@asynccontextmanager
async def _gateway_database(gw: GatewaySettings, timeouts: Timeouts) -> AsyncIterator[AsyncEngine]:
    from orderflow.adapters.gateway_db import database as gateway_db

    engine = gateway_db.create_engine(gw.database_url, timeouts)
    try:
        await gateway_db.migrate(engine, timeout=timeouts.migration)
        yield engine
    finally:
        await engine.dispose()


async def migrate_gateway(
    settings: Settings, gateway_settings: GatewaySettings | None = None
) -> None:
    gw = resolve_gateway_settings(settings, gateway_settings)
    async with _gateway_database(gw, db_timeouts(settings)):
        pass


async def create_gateway_admin(
    settings: Settings,
    email: str,
    password: str,
    gateway_settings: GatewaySettings | None = None,
) -> str:
    """Create an admin account (the database migrated first) and return its id; raises
    AdminInputError for a bad email or password, EmailTakenError if the email exists."""
    from orderflow.adapters.gateway_db.accounts import SqlAccounts
    from orderflow.services.gateway.admin import create_admin
    from orderflow.services.gateway.app import passwords_for

    gw = resolve_gateway_settings(settings, gateway_settings)
    async with _gateway_database(gw, db_timeouts(settings)) as engine:
        return await create_admin(
            SqlAccounts(engine),
            passwords_for(gw),
            email,
            password,
            min_length=gw.password_min_length,
        )


async def manage_gateway_account(
    settings: Settings,
    email: str,
    action: AccountAction,
    gateway_settings: GatewaySettings | None = None,
) -> str:
    """Disable, enable or delete the account of `email` and return its id (see
    services/gateway/admin.manage_account for the errors). Running gateways follow within
    `account_state_max_age`."""
    from orderflow.adapters.gateway_db.accounts import SqlAccounts
    from orderflow.services.gateway.admin import manage_account

    gw = resolve_gateway_settings(settings, gateway_settings)
    async with _gateway_database(gw, db_timeouts(settings)) as engine:
        return (await manage_account(SqlAccounts(engine), email, action)).id


def rotate_gateway_key(settings: Settings, gateway_settings: GatewaySettings | None = None) -> str:
    """Add a new access-token signing key and return its kid. Running gateways sign with it once
    they re-read their JWKS (within about a second of their next token check or JWKS fetch;
    adapters/identity/access_tokens.py says exactly when), starting ones at once."""
    from orderflow.adapters.identity.access_tokens import rotate_access_key

    return rotate_access_key(resolve_gateway_settings(settings, gateway_settings).access_keys_dir)


def build_stream(settings: Settings, db: Database | None = None) -> Starlette:
    """The stream service, with the storefront page (static files) beside it."""
    from orderflow.adapters.identity.assertions import load_verifier
    from orderflow.services.stream import (
        Hub,
        Limits,
        StatusFeed,
        StreamContext,
        create_stream_app,
        instance_spec,
    )
    from orderflow.storefront import storefront_routes

    storage = build_storage(db or build_database(settings, answers_clients=False))
    broker = build_broker(settings)
    hub = Hub()
    ctx = StreamContext(
        storage=storage,
        broker=broker,
        verifier=load_verifier(settings.identity_jwks_file),
        feed=StatusFeed(broker, storage, hub, instance_spec(settings.stream_group_expiry)),
        hub=hub,
        limits=Limits(
            buffer=settings.stream_buffer,
            replay_window=settings.stream_replay_window,
            max_replay=settings.stream_max_replay,
        ),
        heartbeat=settings.stream_heartbeat,
    )
    return create_stream_app(ctx, storefront_routes())


# Each consumer group and the topics it reads.
TOPOLOGY: dict[str, tuple[str, ...]] = {
    cls.group: cls.topics for cls in (OrderSaga, InventoryHandler, PaymentHandler)
}
WORKERS = tuple(TOPOLOGY)


def redelivery_policy(name: str, settings: Settings) -> RedeliveryPolicy:
    """The group's retry policy: its entry of `retry_policies` over the general settings."""
    unknown = sorted(set(settings.retry_policies) - set(WORKERS))
    if unknown:
        raise ValueError(
            f"retry_policies names no consumer group: {', '.join(unknown)} "
            f"(the groups: {', '.join(WORKERS)})"
        )
    own = settings.retry_policies.get(name, RetryPolicySettings())
    return RedeliveryPolicy(
        max_attempts=own.max_attempts or settings.max_attempts,
        backoff=Backoff(
            first=own.base_delay or settings.retry_base_delay,
            cap=own.max_delay or settings.retry_max_delay,
        ),
    )


def consumer_spec(name: str, settings: Settings) -> ConsumerSpec:
    return ConsumerSpec(
        group=name,
        topics=TOPOLOGY[name],
        max_in_flight=settings.batch_size,
        max_attempts=redelivery_policy(name, settings).max_attempts,
        ack_wait=settings.ack_wait,
    )


async def declare_topology(broker: Broker, settings: Settings) -> None:
    """Every consumer group exists before anything is published, whoever starts first."""
    for name in WORKERS:
        await broker.declare(consumer_spec(name, settings))


# Each runner is typed by what its handler's call-out answers.
Runner = ConsumerRunner[None] | ConsumerRunner[PaymentAnswer]


def build_runner(
    name: str,
    settings: Settings,
    storage: Storage,
    broker: Broker,
    on_committed: Callable[[], None] = lambda: None,
    gateway: GuardedPaymentGateway | None = None,
) -> Runner:
    match name:
        case "orders":
            return _runner(OrderSaga(), settings, storage, broker, on_committed)
        case "inventory":
            return _runner(InventoryHandler(), settings, storage, broker, on_committed)
        case "payment":
            gateway = gateway or build_payment_gateway(settings)
            payment = PaymentHandler(gateway, storage)
            # While the provider's circuit is open, the consumer fetches nothing (throttle.py).
            return _runner(payment, settings, storage, broker, on_committed, throttle=gateway)
    raise ValueError(f"unknown worker {name!r}; choose from {', '.join(WORKERS)}")


def _runner(
    handler: Handler[T],
    settings: Settings,
    storage: Storage,
    broker: Broker,
    on_committed: Callable[[], None],
    throttle: Throttle | None = None,
) -> ConsumerRunner[T]:
    return ConsumerRunner(
        handler,
        consumer_spec(handler.group, settings),
        broker,
        storage,
        policy=redelivery_policy(handler.group, settings),
        on_committed=on_committed,
        throttle=throttle,
    )


def guards(
    settings: Settings, storage: Storage, stop: asyncio.Event
) -> list[tuple[str, Callable[[], Awaitable[None]]]]:
    """The order service's periodic self-protection: reservation expiry and the watchdog."""
    expiry = ReservationExpiry(storage, settings.reservation_ttl)
    deadlines = {OrderStatus(s): d for s, d in settings.watchdog_deadlines.items()}
    watchdog = OrderWatchdog(storage, StallPolicy(deadlines, settings.watchdog_redrives))
    return [
        ("expiry", functools.partial(run_every, expiry.interval, expiry.sweep, stop)),
        ("watchdog", functools.partial(run_every, watchdog.interval, watchdog.sweep, stop)),
    ]


def _admin_verifier(settings: Settings) -> IdentityVerifier | None:
    """Who sees a worker's /readyz details: admins the gateway vouches for (none without keys)."""
    from orderflow.adapters.identity.assertions import InvalidAssertionError, load_verifier

    try:
        return load_verifier(settings.identity_jwks_file)
    except InvalidAssertionError:
        log.info("no identity keys: /readyz shows no admin details")
        return None


@dataclass
class WorkerSet:
    """Some consumers and/or the relay, sharing one database pool and one broker connection."""

    settings: Settings
    names: Sequence[str]
    with_relay: bool
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    payment_gateway: GuardedPaymentGateway | None = None

    def __post_init__(self) -> None:
        if "payment" in self.names and self.payment_gateway is None:
            self.payment_gateway = build_payment_gateway(self.settings)

    async def run(self) -> None:
        storage = build_storage(build_database(self.settings, answers_clients=False))
        broker = build_broker(self.settings)
        health = self._health_server(storage, broker)
        if health is not None:
            await health.start()
        try:
            if await self._connect(broker):
                await self._serve(storage, broker)
        finally:
            if health is not None:
                await health.close()
            await broker.close()
            await storage.dispose()

    def _health_server(self, storage: Storage, broker: Broker) -> HealthServer | None:
        if not self.settings.health_port:
            return None
        details: dict[str, Callable[[], object]] = {}
        if (gateway := self.payment_gateway) is not None:
            details[gateway.name] = lambda: {
                "circuit": gateway.state,
                "retry_in": round(gateway.seconds_until_retry(), 1),
            }
        return HealthServer(
            self.settings.host,
            self.settings.health_port,
            {"database": storage.ping, "broker": broker.ping},
            details,
            _admin_verifier(self.settings),
        )

    async def _connect(self, broker: Broker) -> bool:
        """Connect, waiting out a broker that is not up yet; False if stopped meanwhile."""
        log.info("connecting to the broker", broker=redact_url(self.settings.broker_url))
        return await wait_until_reachable("broker", broker.connect, self.stop, on=ConnectionError)

    async def _serve(self, storage: Storage, broker: Broker) -> None:
        wakeup = build_wakeup(self.settings)
        relay = OutboxRelay(storage, broker, batch_size=self.settings.batch_size * 2, wakeup=wakeup)

        # Where the outbox trigger publishes at commit, the consumers are woken, not the relay.
        one_file = self.settings.pipeline_in_one_file
        published_by = broker if one_file and isinstance(broker, EmbeddedBroker) else None

        def committed() -> None:
            if published_by is not None:
                published_by.published_at_commit()
                return
            relay.wake()
            if not self.with_relay:
                wakeup.signal(OUTBOX)  # the relay runs in another process

        runners = [
            build_runner(
                name, self.settings, storage, broker, committed, gateway=self.payment_gateway
            )
            for name in self.names
        ]
        await self._until_stopped("topology", lambda: declare_topology(broker, self.settings))
        loops: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            (r.spec.group, functools.partial(r.run, self.stop)) for r in runners
        ]
        if "orders" in self.names:
            loops.extend(guards(self.settings, storage, self.stop))
        if self.with_relay:
            watcher = DeadLetterWatcher(storage, broker, WORKERS)
            loops.append(("relay", functools.partial(relay.run, self.stop)))
            loops.append(("dead letters", functools.partial(watcher.run, self.stop)))
            pruner = ProcessedPruner(storage, self.settings.processed_retention)
            loops.append(("pruning", functools.partial(pruner.run, self.stop)))
        # The outbox's depth and the groups' backlog are sampled where a relay runs, when
        # Prometheus scrapes.
        specs = [consumer_spec(name, self.settings) for name in WORKERS]
        samplers = [relay.sample_depth, backlog_sampler(broker, specs)] if self.with_relay else []
        removals = [metrics.add_sampler(sample) for sample in samplers]
        try:
            await asyncio.gather(*(self._until_stopped(name, step) for name, step in loops))
        finally:
            for remove in removals:
                remove()
            await wakeup.close()

    async def _until_stopped(self, name: str, step: Callable[[], Awaitable[None]]) -> None:
        """Run `step` to completion, starting it again after an error (a broker or database
        outage) with backoff, until it completes or the set is asked to stop."""
        await retry_until_stopped(
            step, self.stop, event="failed; restarting", level=logging.ERROR, task=name
        )
