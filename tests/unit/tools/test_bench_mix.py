from __future__ import annotations

import pytest

from orderflow.services.api.schemas import OrderIn
from orderflow.tools.bench.config import BenchConfig, parse_range
from orderflow.tools.bench.mix import APPROVED, DECLINED, TRANSIENT, OrderMix

SKUS = [f"SKU-{n}" for n in range(8)]


def test_orders_follow_the_mix_and_are_valid_api_bodies() -> None:
    mix = OrderMix(
        SKUS,
        customers=3,
        lines=(1, 5),
        max_quantity=3,
        decline_share=0.1,
        transient_share=0.05,
        seed=7,
    )
    arrivals = [mix.next(i) for i in range(4000)]
    for a in arrivals[:200]:
        OrderIn.model_validate(a.body)  # the API's own model accepts every body
    assert {len(a.body["items"]) for a in arrivals} == {1, 2, 3, 4, 5}
    assert {a.customer for a in arrivals} == {0, 1, 2}
    assert len({a.idempotency_key for a in arrivals}) == len(arrivals)
    tokens = [a.body["payment"]["token"] for a in arrivals]
    assert 0.08 < tokens.count(DECLINED) / len(tokens) < 0.12
    assert 0.03 < tokens.count(TRANSIENT) / len(tokens) < 0.07
    assert tokens.count(APPROVED) > 0.8 * len(tokens)


def test_lines_never_exceed_the_products_there_are() -> None:
    mix = OrderMix(SKUS[:2], 1, (1, 5), 1, 0.0, 0.0, seed=1)
    assert max(len(mix.next(i).body["items"]) for i in range(50)) == 2


def test_ranges_and_settings_are_checked() -> None:
    assert parse_range("1-5") == (1, 5)
    assert parse_range("3") == (3, 3)
    with pytest.raises(ValueError, match="range"):
        parse_range("a-b")
    with pytest.raises(ValueError, match="lines"):
        BenchConfig(url="http://x", lines=(3, 2))
    with pytest.raises(ValueError, match="rate"):
        BenchConfig(url="http://x", rate=0)
    assert "password" not in BenchConfig(url="http://x").as_json()
