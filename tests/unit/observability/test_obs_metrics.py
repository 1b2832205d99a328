"""The metrics module's own logic: HTTP requests counted by route template, samplers that fail or
hang leave the others alone, provider calls counted by outcome."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route
from structlog.testing import capture_logs

from orderflow.domain.money import Money
from orderflow.observability import metrics
from orderflow.ports.payments import Approved, Declined, ProviderAnswer, TransientPaymentError
from orderflow.services.payment.metered import MeteredPaymentGateway
from orderflow.web.request_context import RequestContextMiddleware

COUNT = "orderflow_http_request_seconds_count"


async def ok(_: Request) -> Response:
    return PlainTextResponse("ok")


def app() -> RequestContextMiddleware:
    inner = Starlette(routes=[Route("/things/{thing_id}", ok), Route("/about", ok)])
    return RequestContextMiddleware(
        Starlette(routes=[Mount("/inner", app=inner), Route("/items/{item_id:int}", ok)])
    )


async def test_requests_are_counted_by_route_template_never_by_raw_path() -> None:
    paths = {
        "/items/1": "/items/{item_id}",
        "/inner/things/abc": "/inner/things/{thing_id}",
        "/inner/about": "/inner/about",
        "/inner/nothing-here": "/inner/unmatched",
        "/no/such/path": "unmatched",
    }
    before = {t: metrics.value(COUNT, route=t, method="GET") for t in paths.values()}
    transport = httpx.ASGITransport(app=app())  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        for path in paths:
            await client.get(path)
        await client.get("/items/2")
    after = {t: metrics.value(COUNT, route=t, method="GET") for t in paths.values()}
    grown = {t: after[t] - before[t] for t in after}
    assert grown == {
        "/items/{item_id}": 2,
        "/inner/things/{thing_id}": 1,
        "/inner/about": 1,
        "/inner/unmatched": 1,
        "unmatched": 1,
    }
    status = metrics.value(COUNT, route="unmatched", method="GET", status="404")
    assert status >= 1


async def test_a_failing_or_hanging_sampler_leaves_the_others_and_is_logged() -> None:
    sampled: list[str] = []

    async def good() -> None:
        sampled.append("good")

    async def broken() -> None:
        raise ConnectionError("database down")

    async def hanging() -> None:
        await asyncio.Event().wait()

    removals = [metrics.add_sampler(s) for s in (broken, hanging, good)]
    try:
        with capture_logs() as logs:
            await metrics.sample(timeout=0.05)
    finally:
        for remove in removals:
            remove()
    assert sampled == ["good"]
    failures = [entry for entry in logs if entry["event"] == "metrics sampler failed"]
    assert len(failures) == 2
    await metrics.sample()  # removed: nothing runs
    assert sampled == ["good"]


class ScriptedGateway:
    """Answers each call with the next item: an answer, or an exception to raise."""

    def __init__(self, *script: ProviderAnswer | Exception) -> None:
        self.script = list(script)

    async def _next(self) -> ProviderAnswer:
        item = self.script.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    async def authorize(self, *, idempotency_key: str, amount: Money, token: str) -> ProviderAnswer:
        return await self._next()

    async def capture(self, *, idempotency_key: str, authorization: str) -> ProviderAnswer:
        return await self._next()

    async def refund(self, *, idempotency_key: str, capture: str) -> ProviderAnswer:
        return await self._next()


async def test_provider_calls_are_counted_by_operation_and_outcome() -> None:
    name = "orderflow_provider_call_seconds_count"
    provider = "scripted-unit-test"
    inner = ScriptedGateway(
        Approved("a1"), Declined("card_declined"), TransientPaymentError("timeout"), ValueError()
    )
    metered = MeteredPaymentGateway(inner, provider)
    amount = Money(100, "USD")
    assert await metered.authorize(idempotency_key="k", amount=amount, token="t") == Approved("a1")
    assert await metered.capture(idempotency_key="k", authorization="a1") == Declined(
        "card_declined"
    )
    with pytest.raises(TransientPaymentError):
        await metered.refund(idempotency_key="k", capture="c")
    with pytest.raises(ValueError):  # noqa: PT011
        await metered.authorize(idempotency_key="k", amount=amount, token="t")

    def seen(operation: str, outcome: str) -> float:
        return metrics.value(name, provider=provider, operation=operation, outcome=outcome)

    assert seen("authorize", "approved") == 1
    assert seen("capture", "declined") == 1
    assert seen("refund", "transient_error") == 1
    assert seen("authorize", "error") == 1
