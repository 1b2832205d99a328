"""`orderflow audit` is itself tested: on a clean database (orders that went through the real
pipeline) it finds nothing; after one corruption it reports exactly that invariant for exactly
that order, one line, and exits non-zero. Money is reconciled against the payment provider's own
ledger, so corruptions of either ledger are found. Every case runs on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.integration.audit.world import World, build_world
from tests.support.databases import ENGINES, fresh_database

CAPTURE_OF = (
    "kind = 'capture' AND parent = "
    "(SELECT reference FROM operations WHERE idempotency_key = 'authorize:' || ?)"
)
REFUND_OF = (
    "kind = 'refund' AND parent = (SELECT reference FROM operations WHERE kind = 'capture' AND "
    "parent = (SELECT reference FROM operations WHERE idempotency_key = 'authorize:' || ?))"
)
COLUMNS = "kind, approved, reference, decline_reason, amount, currency, parent"


def _again_at_provider(world: World, which: str, order_id: str) -> None:
    """The provider approved the same capture or refund a second time (another idempotency key)."""
    world.provider_execute(
        f"INSERT INTO operations SELECT 'again:' || idempotency_key, kind, approved, "
        f"reference || '_again', decline_reason, amount, currency, parent FROM operations "
        f"WHERE {which}",
        order_id,
    )


def order_without_event(w: World) -> tuple[str, str]:
    w.execute("DELETE FROM order_events WHERE order_id = :id", id=w.pending)
    return "order-without-event", w.pending


def status_differs(w: World) -> tuple[str, str]:
    w.execute("UPDATE orders SET status = 'paid' WHERE id = :id", id=w.confirmed)
    return "status-differs-from-event", w.confirmed


def timeline_gap(w: World) -> tuple[str, str]:
    w.execute("DELETE FROM order_events WHERE order_id = :id AND seq = 1", id=w.confirmed)
    return "timeline-gap", w.confirmed


def stock_does_not_add_up(w: World) -> tuple[str, str]:
    w.execute(
        "UPDATE stock SET reserved = reserved + 1 WHERE sku = 'MUG-WHT' AND warehouse = "
        "(SELECT MIN(warehouse) FROM stock)"
    )
    return "stock-does-not-add-up", "MUG-WHT@" + w.first_warehouse()


def paid_without_capture(w: World) -> tuple[str, str]:
    w.execute("DELETE FROM payments WHERE order_id = :id", id=w.confirmed)
    w.provider_execute(f"DELETE FROM operations WHERE {CAPTURE_OF}", w.confirmed)
    return "paid-without-capture", w.confirmed


def captured_twice(w: World) -> tuple[str, str]:
    _again_at_provider(w, CAPTURE_OF, w.confirmed)
    return "captured-twice", w.confirmed


def capture_amount_differs(w: World) -> tuple[str, str]:
    w.execute("UPDATE payments SET amount = amount + 1 WHERE order_id = :id", id=w.confirmed)
    return "capture-amount-differs", w.confirmed


def unfulfilled_without_refund(w: World) -> tuple[str, str]:
    w.execute("DELETE FROM payments WHERE order_id = :id AND kind = 'refund'", id=w.refunded)
    w.provider_execute(f"DELETE FROM operations WHERE {REFUND_OF}", w.refunded)
    return "unfulfilled-without-refund", w.refunded


def refunded_twice(w: World) -> tuple[str, str]:
    _again_at_provider(w, REFUND_OF, w.refunded)
    return "refunded-twice", w.refunded


def capture_the_provider_never_made(w: World) -> tuple[str, str]:
    w.provider_execute(f"DELETE FROM operations WHERE {CAPTURE_OF}", w.confirmed)
    return "ledger-not-at-provider", w.confirmed


def capture_never_recorded(w: World) -> tuple[str, str]:
    w.execute("DELETE FROM payments WHERE order_id = :id", id=w.confirmed)
    return "provider-not-in-ledger", w.confirmed


def charge_for_an_unknown_order(w: World) -> tuple[str, str]:
    """The provider authorized and captured for an order id the application never stored."""
    stranger = "00000000-0000-4000-8000-000000000000"
    w.provider_execute(
        "INSERT INTO operations SELECT 'authorize:' || ?, kind, approved, 'auth_stranger', "
        "decline_reason, amount, currency, parent FROM operations "
        "WHERE idempotency_key = 'authorize:' || ?",
        stranger,
        w.confirmed,
    )
    w.provider_execute(
        f"INSERT INTO operations SELECT 'capture:' || ?, kind, approved, 'capt_stranger', "
        f"decline_reason, amount, currency, 'auth_stranger' FROM operations WHERE {CAPTURE_OF}",
        stranger,
        w.confirmed,
    )
    return "money-for-unknown-order", stranger


def stuck_past_deadline(w: World) -> tuple[str, str]:
    w.execute(
        "UPDATE orders SET updated_at = :at WHERE id = :id",
        at=datetime.now(UTC) - timedelta(days=1),
        id=w.pending,
    )
    return "stuck-past-deadline", w.pending


CORRUPTIONS: list[Callable[[World], tuple[str, str]]] = [
    order_without_event,
    status_differs,
    timeline_gap,
    stock_does_not_add_up,
    paid_without_capture,
    captured_twice,
    capture_amount_differs,
    unfulfilled_without_refund,
    refunded_twice,
    capture_the_provider_never_made,
    capture_never_recorded,
    charge_for_an_unknown_order,
    stuck_past_deadline,
]


@pytest.fixture(scope="module", params=ENGINES)
def clean_world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    root = tmp_path_factory.mktemp(f"audit-{request.param}")
    with fresh_database(request.param, root) as url:
        yield asyncio.run(build_world(root / "clean", url))


@pytest.mark.parametrize("corrupt", CORRUPTIONS, ids=lambda c: c.__name__)
def test_audit_reports_exactly_the_corrupted_invariant(
    clean_world: World, corrupt: Callable[[World], tuple[str, str]], tmp_path: Path
) -> None:
    with clean_world.copy(tmp_path / "world") as world:
        clean = world.audit()
        assert clean.exit_code == 0, clean.output
        assert "all invariants hold" in clean.stdout
        assert "VIOLATION" not in clean.stdout

        invariant, subject = corrupt(world)
        found = world.audit()
        assert found.exit_code == 1, found.output
        violations = [line for line in found.stdout.splitlines() if line.startswith("VIOLATION")]
        assert [line.split(":", 1)[0] for line in violations] == [
            f"VIOLATION {invariant} {subject}"
        ], found.stdout


def test_the_stuck_deadline_is_the_watchdogs(clean_world: World, tmp_path: Path) -> None:
    """The audit shares the watchdog's settings: an order unmoved for longer than its status's
    deadline times (re-drives + 1) is stuck. The same order, an hour old, is stuck past a
    half-hour deadline and not past a two-hour one."""
    with clean_world.copy(tmp_path / "world") as world:
        world.execute(
            "UPDATE orders SET updated_at = :at WHERE id = :id",
            at=datetime.now(UTC) - timedelta(hours=1),
            id=world.pending,
        )
        patient = world.audit(watchdog_deadlines='{"pending": 7200}', watchdog_redrives="0")
        assert patient.exit_code == 0, patient.output
        strict = world.audit(watchdog_deadlines='{"pending": 600}', watchdog_redrives="2")
        assert strict.exit_code == 1, strict.output
        assert f"VIOLATION stuck-past-deadline {world.pending}:" in strict.output
