"""The order state machine: documented paths, the transition table, and properties over any
event sequence (valid moves only, terminal stays terminal, replay is a no-op, cancellation
compensates)."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from orderflow.domain import messages as m
from orderflow.domain.errors import (
    InvalidTransitionError,
    OrderNotCancellableError,
    OrderNotResumableError,
)
from orderflow.domain.order import (
    ALLOWED_TRANSITIONS,
    NO_CHANGE,
    TERMINAL_STATUSES,
    Decision,
    OrderState,
    OrderStatus,
    check_transition,
    decide,
    evolve,
    place,
)

S = OrderStatus
OID = "order-1"
TOTAL, CURRENCY, TOKEN = 4_250, "EUR", "tok_visa"
LINES = (m.Line("sku-a", 2), m.Line("sku-b", 1))

CANCEL = m.CancellationRequested(OID, actor="customer", reason="changed my mind")
FAILED = m.ProcessingFailed(OID, stage="payment", reason="retries exhausted")

# One event of every type, as the saga or the API would hand them to `decide`.
ONE_OF_EACH: tuple[m.Event, ...] = (
    m.StockReserved(OID),
    m.StockRejected(OID, reason="out of stock: sku-a"),
    m.StockCommitted(OID),
    m.StockReleased(OID),
    m.PaymentCaptured(OID, payment_id="pay-1", amount=TOTAL, currency=CURRENCY),
    m.PaymentDeclined(OID, reason="insufficient funds"),
    m.PaymentRefunded(OID, payment_id="pay-1"),
    CANCEL,
    FAILED,
    m.ReservationExpired(OID, reason="reservation expired"),
)

CANCELLABLE = sorted(s for s in S if S.CANCELLED in ALLOWED_TRANSITIONS[s])
NOT_CANCELLABLE = sorted(
    s for s in S if s is not S.CANCELLED and S.CANCELLED not in ALLOWED_TRANSITIONS[s]
)


def order(status: OrderStatus) -> OrderState:
    return OrderState(OID, status, TOTAL, CURRENCY, TOKEN)


def step(state: OrderState, event: m.Event) -> tuple[OrderState, Decision | None]:
    """Apply one event; a refused cancellation (OrderNotCancellableError) leaves the order as is."""
    try:
        decision = decide(state, event)
    except OrderNotCancellableError:
        assert isinstance(event, m.CancellationRequested)
        assert S.CANCELLED not in ALLOWED_TRANSITIONS[state.status]
        return state, None
    return evolve(state, decision), decision


def fold(events: list[m.Event], start: OrderStatus = S.PENDING) -> OrderState:
    state = order(start)
    for event in events:
        state, _ = step(state, event)
    return state


# --- documented paths ---------------------------------------------------------------------


def test_placing_an_order_starts_pending_and_reserves_every_line() -> None:
    assert place(OID, LINES) == (S.PENDING, (m.ReserveStock(OID, LINES),))


def test_happy_path_pending_reserved_paid_confirmed() -> None:
    reserved = decide(order(S.PENDING), m.StockReserved(OID))
    assert reserved == Decision(S.RESERVED, (m.CapturePayment(OID, TOTAL, CURRENCY, TOKEN),))

    captured = m.PaymentCaptured(OID, payment_id="pay-1", amount=TOTAL, currency=CURRENCY)
    assert decide(order(S.RESERVED), captured) == Decision(S.PAID, (m.CommitStock(OID),))

    assert decide(order(S.PAID), m.StockCommitted(OID)) == Decision(S.CONFIRMED)


def test_stock_rejected_rejects_the_order_with_the_reason() -> None:
    decision = decide(order(S.PENDING), m.StockRejected(OID, reason="out of stock: sku-a"))
    assert decision == Decision(S.REJECTED, (), reason="out of stock: sku-a")


def test_payment_declined_fails_payment_and_releases_the_stock() -> None:
    decision = decide(order(S.RESERVED), m.PaymentDeclined(OID, reason="insufficient funds"))
    assert decision == Decision(S.PAYMENT_FAILED, (m.ReleaseStock(OID),), "insufficient funds")


@pytest.mark.parametrize(
    ("status", "compensation"),
    [
        (S.PENDING, ()),
        (S.RESERVED, (m.ReleaseStock(OID),)),
        (S.PAID, (m.ReleaseStock(OID), m.RefundPayment(OID))),
        (S.CONFIRMED, (m.ReleaseStock(OID), m.RefundPayment(OID))),
    ],
)
def test_cancellation_compensates_what_the_order_holds(
    status: OrderStatus, compensation: tuple[m.Command, ...]
) -> None:
    assert decide(order(status), CANCEL) == Decision(S.CANCELLED, compensation, CANCEL.reason)


def test_late_stock_reservation_after_cancellation_is_released() -> None:
    assert decide(order(S.CANCELLED), m.StockReserved(OID)) == Decision(
        None, (m.ReleaseStock(OID),)
    )


def test_late_payment_capture_after_cancellation_is_refunded() -> None:
    captured = m.PaymentCaptured(OID, payment_id="pay-1", amount=TOTAL, currency=CURRENCY)
    assert decide(order(S.CANCELLED), captured) == Decision(None, (m.RefundPayment(OID),))


@pytest.mark.parametrize(
    ("status", "compensation"),
    [
        # A failed StockReserved or PaymentCaptured may be the reason, so what may be held goes.
        (S.PENDING, (m.ReleaseStock(OID),)),
        (S.RESERVED, (m.ReleaseStock(OID), m.RefundPayment(OID))),
        (S.PAID, (m.ReleaseStock(OID), m.RefundPayment(OID))),
        (S.CONFIRMED, (m.ReleaseStock(OID), m.RefundPayment(OID))),
        (S.SHIPPED, ()),
    ],
)
def test_processing_failure_fails_a_live_order_and_compensates_it(
    status: OrderStatus, compensation: tuple[m.Command, ...]
) -> None:
    expected = Decision(S.FAILED, compensation, "payment: retries exhausted")
    assert decide(order(status), FAILED) == expected


def test_a_lost_hold_is_still_compensated_when_its_event_arrives_after_a_failure() -> None:
    # Failed while pending: the release went out in case; the reservation it may have missed
    # (made before or after) is released again when its event arrives, which is harmless.
    state, _ = step(order(S.PENDING), FAILED)
    assert decide(state, m.StockReserved(OID)) == Decision(None, (m.ReleaseStock(OID),))
    captured = m.PaymentCaptured(OID, payment_id="pay-1", amount=TOTAL, currency=CURRENCY)
    state, _ = step(order(S.RESERVED), FAILED)
    assert decide(state, captured) == Decision(None, (m.RefundPayment(OID),))


def test_late_events_after_a_failure_are_compensated() -> None:
    captured = m.PaymentCaptured(OID, payment_id="pay-1", amount=TOTAL, currency=CURRENCY)
    assert decide(order(S.FAILED), m.StockReserved(OID)) == Decision(None, (m.ReleaseStock(OID),))
    assert decide(order(S.FAILED), captured) == Decision(None, (m.RefundPayment(OID),))


@pytest.mark.parametrize("status", sorted(TERMINAL_STATUSES))
def test_processing_failure_leaves_a_terminal_order_alone(status: OrderStatus) -> None:
    assert decide(order(status), FAILED) == NO_CHANGE


@pytest.mark.parametrize("status", NOT_CANCELLABLE)
def test_orders_past_the_warehouse_or_finished_cannot_be_cancelled(status: OrderStatus) -> None:
    with pytest.raises(OrderNotCancellableError, match=status.value):
        decide(order(status), CANCEL)


def test_not_cancellable_covers_shipped_delivered_and_every_terminal_but_cancelled() -> None:
    expected = {S.SHIPPED, S.DELIVERED} | (TERMINAL_STATUSES - {S.CANCELLED})
    assert set(NOT_CANCELLABLE) == expected


def test_cancelling_a_cancelled_order_changes_nothing() -> None:
    assert decide(order(S.CANCELLED), CANCEL) == NO_CHANGE


@pytest.mark.parametrize(
    ("status", "event"),
    [
        (S.RESERVED, m.StockReserved(OID)),
        (S.PAID, m.StockReserved(OID)),
        (S.PENDING, m.PaymentCaptured(OID, payment_id="p", amount=TOTAL, currency=CURRENCY)),
        (S.PAID, m.PaymentCaptured(OID, payment_id="p", amount=TOTAL, currency=CURRENCY)),
        (S.RESERVED, m.StockRejected(OID, reason="late")),
        (S.PAID, m.PaymentDeclined(OID, reason="late")),
        (S.RESERVED, m.StockCommitted(OID)),
        (S.CONFIRMED, m.StockCommitted(OID)),
    ],
)
def test_stale_or_out_of_order_events_change_nothing(status: OrderStatus, event: m.Event) -> None:
    assert decide(order(status), event) == NO_CHANGE


@pytest.mark.parametrize("status", list(S))
@pytest.mark.parametrize("event", [m.StockReleased(OID), m.PaymentRefunded(OID, "pay-1")])
def test_compensation_confirmations_never_change_the_status(
    status: OrderStatus, event: m.Event
) -> None:
    assert decide(order(status), event) == NO_CHANGE


def test_check_transition_refuses_a_move_outside_the_table() -> None:
    check_transition(S.PENDING, S.RESERVED)
    with pytest.raises(InvalidTransitionError, match="delivered -> pending"):
        check_transition(S.DELIVERED, S.PENDING)


def test_terminal_statuses_are_those_without_a_way_out_and_failed() -> None:
    assert set(ALLOWED_TRANSITIONS) == set(S)
    assert {S.DELIVERED, S.REJECTED, S.PAYMENT_FAILED, S.CANCELLED, S.FAILED} == TERMINAL_STATUSES
    # The pipeline is done with a failed order; only an admin's resume takes it back.
    assert ALLOWED_TRANSITIONS[S.FAILED] == {S.PENDING}


RESUME = m.ProcessingResumed(OID, actor="admin:root", reason="dead letter inventory/7 replayed")


def test_a_failed_order_that_undid_nothing_resumes_to_pending() -> None:
    failed = fold([m.ProcessingFailed(OID, stage="inventory", reason="boom")])
    assert failed.status is S.FAILED
    decision = decide(failed, RESUME)
    assert decision == Decision(S.PENDING, (), RESUME.reason)
    # From there the replayed reservation carries it on as if nothing had happened.
    resumed = evolve(failed, decision)
    assert decide(resumed, m.StockReserved(OID)).status is S.RESERVED


def test_a_failed_order_that_gave_stock_back_cannot_resume() -> None:
    failed = fold([m.StockReserved(OID), m.ProcessingFailed(OID, stage="payment", reason="boom")])
    assert (failed.status, failed.compensated) == (S.FAILED, frozenset({"stock"}))
    with pytest.raises(OrderNotResumableError, match="stock went back"):
        decide(failed, RESUME)


def test_a_failed_order_whose_stock_went_back_restarts_with_a_new_reservation() -> None:
    failed = fold([m.StockReserved(OID), m.ProcessingFailed(OID, stage="payment", reason="boom")])
    restart = m.ProcessingResumed(OID, actor="admin:root", reason="replayed", lines=LINES)
    decision = decide(failed, restart)
    assert decision == Decision(S.PENDING, (m.ReserveStock(OID, LINES),), "replayed")
    restarted = evolve(failed, decision)
    assert restarted.compensated == frozenset()  # a new run: what it holds now is new
    assert decide(restarted, m.StockReserved(OID)).status is S.RESERVED


def test_a_failed_order_whose_payment_went_back_cannot_resume() -> None:
    paid = fold([m.StockReserved(OID), m.PaymentCaptured(OID, "pay-1", TOTAL, CURRENCY)])
    failed = evolve(paid, decide(paid, FAILED))
    assert failed.compensated == frozenset({"stock", "payment"})
    restart = m.ProcessingResumed(OID, actor="admin:root", reason="replayed", lines=LINES)
    with pytest.raises(OrderNotResumableError, match="payment was refunded"):
        decide(failed, restart)


@pytest.mark.parametrize("status", sorted(set(S) - {S.FAILED}))
def test_only_a_failed_order_resumes(status: OrderStatus) -> None:
    with pytest.raises(OrderNotResumableError, match=f"status {status}"):
        decide(order(status), RESUME)


@pytest.mark.parametrize("status", list(S))
@pytest.mark.parametrize("event", ONE_OF_EACH, ids=lambda e: type(e).__name__)
def test_decide_only_returns_statuses_the_table_allows(status: OrderStatus, event: m.Event) -> None:
    """Every (status, event type) pair: the answer is no change, a refused cancellation, or an
    allowed transition; never an InvalidTransitionError."""
    try:
        decision = decide(order(status), event)
    except OrderNotCancellableError:
        assert isinstance(event, m.CancellationRequested)
        assert S.CANCELLED not in ALLOWED_TRANSITIONS[status]
        return
    assert decision.status is None or decision.status in ALLOWED_TRANSITIONS[status]


# --- properties over event sequences ------------------------------------------------------

reasons = st.sampled_from(["out of stock", "declined", "timeout"])
payment_ids = st.sampled_from(["pay-1", "pay-2"])

events: st.SearchStrategy[m.Event] = st.one_of(
    st.just(m.StockReserved(OID)),
    st.builds(m.StockRejected, st.just(OID), reason=reasons),
    st.just(m.StockCommitted(OID)),
    st.just(m.StockReleased(OID)),
    st.builds(
        m.PaymentCaptured,
        st.just(OID),
        payment_id=payment_ids,
        amount=st.just(TOTAL),
        currency=st.just(CURRENCY),
    ),
    st.builds(m.PaymentDeclined, st.just(OID), reason=reasons),
    st.builds(m.PaymentRefunded, st.just(OID), payment_id=payment_ids),
    st.builds(
        m.CancellationRequested,
        st.just(OID),
        actor=st.sampled_from(["customer", "admin"]),
        reason=reasons,
    ),
    st.builds(
        m.ProcessingFailed,
        st.just(OID),
        stage=st.sampled_from(["inventory", "payment"]),
        reason=reasons,
    ),
)
sequences = st.lists(events, max_size=15)

# No example database: these tests must not write into the shared working tree.
fast = settings(max_examples=300, database=None, deadline=None)


@fast
@given(sequences)
def test_no_event_sequence_leaves_the_transition_table(sequence: list[m.Event]) -> None:
    state = order(S.PENDING)
    for event in sequence:
        before = state.status
        state, decision = step(state, event)
        if decision is not None and decision.status is not None:
            assert decision.status in ALLOWED_TRANSITIONS[before]


@fast
@given(sequences)
def test_terminal_statuses_stay_terminal(sequence: list[m.Event]) -> None:
    state = order(S.PENDING)
    terminal: OrderStatus | None = None
    for event in sequence:
        state, decision = step(state, event)
        if terminal is not None:
            assert decision is None or decision.status is None
            assert state.status is terminal
        elif state.status in TERMINAL_STATUSES:
            terminal = state.status


@fast
@given(st.sampled_from(sorted(TERMINAL_STATUSES)), sequences)
def test_no_event_moves_an_order_out_of_any_terminal_status(
    start: OrderStatus, sequence: list[m.Event]
) -> None:
    assert fold(sequence, start).status is start


# Replaying an event right after it was applied is a no-op: no new status and no commands. The two
# late events that trigger compensation on a cancelled or failed order are the delicate case: the
# order records what was already undone (`compensated`), so a duplicate is not compensated twice.


@settings(max_examples=300, database=None, deadline=None, derandomize=True)
@given(sequences, events)
def test_replaying_an_event_right_after_it_was_applied_changes_nothing(
    prefix: list[m.Event], event: m.Event
) -> None:
    state, first = step(fold(prefix), event)
    assume(first is not None)  # a refused cancellation was never applied
    assert decide(state, event) == NO_CHANGE


@fast
@given(sequences, events)
def test_replaying_an_event_right_after_it_was_applied_never_changes_the_status(
    prefix: list[m.Event], event: m.Event
) -> None:
    """The status half of the replay property, checked with more examples."""
    state, first = step(fold(prefix), event)
    assume(first is not None)
    again, replayed = step(state, event)
    assert replayed is not None
    assert replayed.status is None
    assert again == state


def test_replayed_late_stock_reservation_is_not_released_twice() -> None:
    cancelled = order(S.CANCELLED)
    state, first = step(cancelled, m.StockReserved(OID))
    assert first == Decision(None, (m.ReleaseStock(OID),))
    assert decide(state, m.StockReserved(OID)) == NO_CHANGE


def test_replayed_late_payment_capture_is_not_refunded_twice() -> None:
    captured = m.PaymentCaptured(OID, payment_id="pay-1", amount=TOTAL, currency=CURRENCY)
    state, first = step(order(S.CANCELLED), captured)
    assert first == Decision(None, (m.RefundPayment(OID),))
    assert decide(state, captured) == NO_CHANGE


@fast
@given(
    sequences,
    st.one_of(
        st.builds(m.CancellationRequested, st.just(OID), st.just("customer"), reasons),
        st.builds(m.ProcessingFailed, st.just(OID), st.just("payment"), reasons),
        st.builds(m.ReservationExpired, st.just(OID), reasons),
    ),
)
def test_a_cancelled_or_failed_order_holds_no_stock_and_no_money(
    sequence: list[m.Event],
    cancel: m.CancellationRequested | m.ProcessingFailed | m.ReservationExpired,
) -> None:
    """Model the outside world from the messages: stock is held from the first StockReserved until
    a ReleaseStock (placing the order always asked for the reservation); money is taken by the
    first PaymentCaptured once a CapturePayment was sent, until a RefundPayment. Whatever the
    order of events around a cancellation or a failure, the order ends holding neither."""
    cut = len(sequence) // 2
    status, _ = place(OID, LINES)
    state = order(status)
    capture_sent = stock_held = money_taken = reserved_once = captured_once = False
    for event in [*sequence[:cut], cancel, *sequence[cut:]]:
        state, decision = step(state, event)
        # Reservations and captures are made once per order (inventory and the payment provider
        # answer a repeat with the first result), so only the first of each holds anything.
        if isinstance(event, m.StockReserved) and not reserved_once:
            stock_held = reserved_once = True
        if isinstance(event, m.PaymentCaptured) and capture_sent and not captured_once:
            money_taken = captured_once = True
        for command in decision.commands if decision else ():
            match command:
                case m.CapturePayment():
                    capture_sent = True
                case m.ReleaseStock():
                    stock_held = False
                case m.RefundPayment():
                    money_taken = False
    assume(state.status in (S.CANCELLED, S.FAILED))
    assert not stock_held, f"stock still reserved for a {state.status} order"
    assert not money_taken, f"money still captured for a {state.status} order"


# Reservation expiry and the watchdog's re-drive (issue 11).

EXPIRED = m.ReservationExpired(OID, reason="reservation expired: not paid within 900s")
CAPTURED = m.PaymentCaptured(OID, payment_id="pay-1", amount=TOTAL, currency=CURRENCY)


def test_an_expired_reservation_cancels_the_order_and_releases_its_stock() -> None:
    decision = decide(order(S.RESERVED), EXPIRED)
    assert decision == Decision(S.CANCELLED, (m.ReleaseStock(OID),), EXPIRED.reason)


@pytest.mark.parametrize("status", [s for s in S if s is not S.RESERVED])
def test_expiry_leaves_an_order_that_is_not_waiting_for_its_payment_alone(
    status: OrderStatus,
) -> None:
    assert decide(order(status), EXPIRED) == NO_CHANGE


def test_a_payment_that_lands_after_the_expiry_is_refunded_and_its_stock_stays_released() -> None:
    expired, _ = step(order(S.RESERVED), EXPIRED)
    after, late = step(expired, CAPTURED)
    assert late == Decision(None, (m.RefundPayment(OID),))
    assert after.status is S.CANCELLED


def test_a_payment_that_lands_first_wins_and_the_expiry_then_changes_nothing() -> None:
    paid, decision = step(order(S.RESERVED), CAPTURED)
    assert decision == Decision(S.PAID, (m.CommitStock(OID),))
    assert decide(paid, EXPIRED) == NO_CHANGE


@pytest.mark.parametrize(
    ("status", "command"),
    [
        (S.PENDING, m.ReserveStock(OID, LINES)),
        (S.RESERVED, m.CapturePayment(OID, TOTAL, CURRENCY, TOKEN)),
        (S.PAID, m.CommitStock(OID)),
    ],
)
def test_a_stalled_order_has_the_step_it_waits_on_sent_again(
    status: OrderStatus, command: m.Command
) -> None:
    stalled = m.OrderStalled(OID, status.value, reason="no progress", lines=LINES)
    assert decide(order(status), stalled) == Decision(None, (command,), "no progress")


@pytest.mark.parametrize("status", [S.RESERVED, S.PAID, S.CONFIRMED, S.CANCELLED])
def test_a_stall_seen_in_a_status_the_order_has_left_changes_nothing(status: OrderStatus) -> None:
    stalled = m.OrderStalled(OID, S.PENDING.value, reason="no progress", lines=LINES)
    assert decide(order(status), stalled) == NO_CHANGE
