"""The watchdog's policy: when an unmoved order is re-driven, when it is given up on, and that a
reserved order is left to its reservation TTL."""

from __future__ import annotations

import pytest

from orderflow.domain.order import OrderStatus
from orderflow.domain.watchdog import StallPolicy, Verdict

S = OrderStatus
POLICY = StallPolicy({S.PENDING: 60.0, S.RESERVED: 60.0, S.PAID: 30.0}, redrives=2)


@pytest.mark.parametrize("status", [S.PENDING, S.RESERVED, S.PAID])
def test_an_order_that_moved_within_its_deadline_is_left_alone(status: OrderStatus) -> None:
    assert POLICY.verdict(status, idle_for=29.9, in_status_for=1000.0) is None


def test_an_order_unmoved_past_its_deadline_is_redriven() -> None:
    assert POLICY.verdict(S.PENDING, idle_for=60.0, in_status_for=60.0) is Verdict.REDRIVE
    assert POLICY.verdict(S.PAID, idle_for=30.0, in_status_for=60.0) is Verdict.REDRIVE


def test_after_its_redrives_and_one_more_deadline_the_order_is_given_up_on() -> None:
    # Two re-drives (at 60 s and 120 s), then the third deadline ends it.
    assert POLICY.verdict(S.PENDING, idle_for=60.0, in_status_for=179.0) is Verdict.REDRIVE
    assert POLICY.verdict(S.PENDING, idle_for=60.0, in_status_for=180.0) is Verdict.GIVE_UP
    assert POLICY.verdict(S.PAID, idle_for=30.0, in_status_for=90.0) is Verdict.GIVE_UP


def test_a_reserved_order_is_only_redriven_its_end_is_the_reservation_ttl() -> None:
    assert POLICY.verdict(S.RESERVED, idle_for=60.0, in_status_for=10_000.0) is Verdict.REDRIVE


@pytest.mark.parametrize("status", [S.CONFIRMED, S.SHIPPED, S.CANCELLED, S.FAILED])
def test_statuses_the_pipeline_owes_nothing_are_never_watched(status: OrderStatus) -> None:
    assert POLICY.verdict(status, idle_for=1e9, in_status_for=1e9) is None


def test_a_status_without_a_deadline_is_not_watched() -> None:
    assert StallPolicy({S.PAID: 5.0}).verdict(S.PENDING, 1e9, 1e9) is None


def test_the_reasons_say_where_the_order_stood_and_for_how_long() -> None:
    assert POLICY.reason(S.PAID, Verdict.REDRIVE, 61.4) == (
        "no progress in paid for 61s; its step was sent again"
    )
    assert POLICY.reason(S.PENDING, Verdict.GIVE_UP, 180.0) == (
        "no progress in pending for 180s after 2 re-drives; given up"
    )


@pytest.mark.parametrize(
    ("deadlines", "redrives"),
    [({S.PENDING: 0.0}, 1), ({S.CONFIRMED: 5.0}, 1), ({S.PENDING: 5.0}, -1)],
)
def test_a_policy_that_cannot_work_is_refused(
    deadlines: dict[OrderStatus, float], redrives: int
) -> None:
    with pytest.raises(ValueError, match="deadlines must be positive"):
        StallPolicy(deadlines, redrives)
