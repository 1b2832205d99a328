"""Every Prometheus metric of OrderFlow, defined once, and the small calls services record with.

One process, one set of numbers: each process (gateway, API, stream, a worker set, a relay)
exposes its own `/metrics` and Prometheus scrapes each one (docs/metrics.md), so counters of
several processes add up in PromQL (`sum by (status) (...)`), with no shared files between
processes. Values live in prometheus-client's default registry (with its process collector).

Recording is on the hot path, so it stays cheap: label children are looked up once where they
can be, nothing here does I/O, and what needs a query (the outbox's depth) is sampled when
Prometheus scrapes (`add_sampler`), never per order. Services call the functions below rather
than touch the metric objects, so a test reads a value with `value(...)`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import structlog
from prometheus_client import REGISTRY, Counter, Gauge, Histogram, disable_created_metrics

log = structlog.get_logger()

# The `_created` series (when each counter began) double the output and nothing here reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]

# Seconds: an order crosses its hops in milliseconds when all is well, minutes when retried.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)

ORDERS_ACCEPTED = Counter("orderflow_orders_accepted", "Orders accepted (answered 202) by the API")
ORDERS_FINISHED = Counter(
    "orderflow_orders_finished",
    "Orders that reached a settled status (confirmed or terminal), by that status",
    ["status"],
)
STAGE_SECONDS = Histogram(
    "orderflow_order_stage_seconds",
    "From an order's acceptance (its created_at) to the commit of each status it reaches",
    ["status"],
    buckets=LATENCY_BUCKETS,
)
HANDLER_SECONDS = Histogram(
    "orderflow_handler_batch_seconds",
    "Time to process one fetched batch (call-outs, transaction), by consumer group",
    ["group"],
    buckets=LATENCY_BUCKETS,
)
MESSAGES = Counter(
    "orderflow_messages_processed",
    "Deliveries processed by consumer group and outcome (ack, retry, dead_letter)",
    ["group", "outcome"],
)
REDELIVERED = Counter(
    "orderflow_messages_redelivered",
    "Deliveries handled again (attempt > 1): after a retry, or after the member that held them"
    " crashed",
    ["group"],
)
DEAD_LETTERS = Counter(
    "orderflow_dead_letters",
    "Messages dead-lettered, by consumer group and who found them (consumer: decided by the "
    "consumer loop; sweep: buried by the broker after its lease ran out, found by the relay's "
    "dead-letter sweep)",
    ["group", "found_by"],
)
RELAYED = Counter("orderflow_relay_published_messages", "Outbox messages the relay published")
QUEUE_BACKLOG = Gauge(
    "orderflow_queue_backlog",
    "Messages a consumer group has not settled yet, by group (sampled on scrape where a relay "
    "runs; RabbitMQ counts only those not handed out yet)",
    ["group"],
)
OUTBOX_DEPTH = Gauge("orderflow_outbox_depth", "Outbox rows not published yet (sampled on scrape)")
PROVIDER_SECONDS = Histogram(
    "orderflow_provider_call_seconds",
    "Calls to an external provider, by provider, operation and outcome "
    "(approved, declined, transient_error, error)",
    ["provider", "operation", "outcome"],
    buckets=LATENCY_BUCKETS,
)
HTTP_SECONDS = Histogram(
    "orderflow_http_request_seconds",
    "HTTP requests by route template (never the raw path), method and status "
    "(WebSockets: their handshake, status 101 once accepted)",
    ["route", "method", "status"],
    buckets=LATENCY_BUCKETS,
)
STREAM_CONNECTIONS = Gauge(
    "orderflow_stream_connections", "Open live status connections, by transport", ["transport"]
)

_SAMPLERS: list[Callable[[], Awaitable[None]]] = []


def order_accepted(count: int = 1) -> None:
    ORDERS_ACCEPTED.inc(count)


def status_reached(status: str, placed_at: datetime | None, settled: bool) -> None:
    """An order's status change was recorded; `placed_at` is when it was accepted."""
    if placed_at is not None:
        if placed_at.tzinfo is None:  # SQLite hands timestamps back naive; they are UTC
            placed_at = placed_at.replace(tzinfo=UTC)
        elapsed = (datetime.now(UTC) - placed_at).total_seconds()
        STAGE_SECONDS.labels(status).observe(max(elapsed, 0.0))
    if settled:
        ORDERS_FINISHED.labels(status).inc()


def batch_handled(
    group: str, seconds: float, outcomes: dict[str, int], redelivered: int = 0
) -> None:
    HANDLER_SECONDS.labels(group).observe(seconds)
    if redelivered:
        REDELIVERED.labels(group).inc(redelivered)
    for outcome, count in outcomes.items():
        if count:
            MESSAGES.labels(group, outcome).inc(count)
    if dead := outcomes.get("dead_letter", 0):
        DEAD_LETTERS.labels(group, "consumer").inc(dead)


def dead_letter_swept(group: str, count: int) -> None:
    DEAD_LETTERS.labels(group, "sweep").inc(count)


def relayed(count: int) -> None:
    RELAYED.inc(count)


def provider_call(provider: str, operation: str, outcome: str, seconds: float) -> None:
    PROVIDER_SECONDS.labels(provider, operation, outcome).observe(seconds)


def http_request(route: str, method: str, status: int, seconds: float) -> None:
    HTTP_SECONDS.labels(route, method, str(status)).observe(seconds)


def stream_connection(transport: str, delta: int) -> None:
    STREAM_CONNECTIONS.labels(transport).inc(delta)


def outbox_depth(rows: int) -> None:
    OUTBOX_DEPTH.set(rows)


def queue_backlog(group: str, messages: int) -> None:
    QUEUE_BACKLOG.labels(group).set(messages)


def add_sampler(sampler: Callable[[], Awaitable[None]]) -> Callable[[], None]:
    """Run `sampler` before each scrape (a cheap query that sets a gauge); returns its removal."""
    _SAMPLERS.append(sampler)
    return lambda: _SAMPLERS.remove(sampler)


async def sample(timeout: float = 2.0) -> None:
    """Run the samplers; one that fails or is slow leaves its gauge as it was (logged)."""
    results = await asyncio.gather(
        *(asyncio.wait_for(s(), timeout) for s in _SAMPLERS), return_exceptions=True
    )
    for result in results:
        if isinstance(result, BaseException):
            log.warning("metrics sampler failed", error=repr(result))


def value(name: str, **labels: str) -> float:
    """The sum of the samples named `name` whose labels include `labels` (0 if none): what
    PromQL's `sum(name{labels})` says of this process. For tests; it walks the whole registry."""
    return sum(
        sample.value
        for family in REGISTRY.collect()
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )
