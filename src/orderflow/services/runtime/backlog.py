"""The consumer groups' backlog (queue depth, or lag) in the metrics, asked of the broker when
Prometheus scrapes a process that runs a relay (never per message)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from orderflow.observability import metrics
from orderflow.ports.broker import Broker, ConsumerSpec


def backlog_sampler(broker: Broker, specs: Sequence[ConsumerSpec]) -> Callable[[], Awaitable[None]]:
    async def sample() -> None:
        counts = await asyncio.gather(*(broker.backlog(spec) for spec in specs))
        for spec, count in zip(specs, counts, strict=True):
            metrics.queue_backlog(spec.group, count)

    return sample
