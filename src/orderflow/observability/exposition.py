"""The text Prometheus scrapes: the samplers run first, then the registry is rendered."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from orderflow.observability import metrics

CONTENT_TYPE = CONTENT_TYPE_LATEST


async def render() -> bytes:
    await metrics.sample()
    return generate_latest(REGISTRY)
