"""Starting a subscription: who may watch what, then what the client missed, then live.

The subscription joins the hub before the database is read, so a change committed after the
read reaches it live and one committed before is in the read (both, if in the window between:
the per-order versions drop the second copy).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from orderflow.domain.identity import Identity
from orderflow.ports.status_changes import Scope, StatusChange
from orderflow.ports.storage import Storage
from orderflow.services.stream.cursor import LOOKBACK_MS, Cursor, CursorError
from orderflow.services.stream.hub import Hub
from orderflow.services.stream.protocol import BadMessageError, Subscribe
from orderflow.services.stream.subscription import Subscription


@dataclass(frozen=True, slots=True)
class Limits:
    buffer: int = 256  # changes waiting to be sent to one client before it is dropped
    replay_window: float = 24 * 3600.0  # seconds of history a resume may ask for
    max_replay: int = 1000  # changes one resume may send; beyond, resync_required


@dataclass(slots=True)
class Opened:
    subscription: Subscription
    missed: list[tuple[StatusChange, str]]  # (change, event id) to send before the live feed
    resync: str | None  # why the client must re-read its orders, if it must


async def scope_for(storage: Storage, who: Identity, request: Subscribe) -> Scope:
    """The scope the caller may have; BadMessageError if none. Someone else's order is answered
    exactly like a missing one, so nobody learns which order ids exist."""
    match request.scope:
        case "all":
            if not who.is_admin:
                raise BadMessageError("forbidden", "only admins can watch every order")
            return Scope()
        case "mine":
            return Scope(customer_id=who.subject)
    assert request.order_id is not None
    async with storage.read() as tx:
        owner = await tx.status_changes.owner(request.order_id)
    if owner is None or (owner != who.subject and not who.is_admin):
        raise BadMessageError("not_found", "no such order")
    return Scope(order_id=request.order_id)


async def open_subscription(
    storage: Storage, hub: Hub, who: Identity, request: Subscribe, limits: Limits
) -> Opened:
    scope = await scope_for(storage, who, request)
    sub = Subscription(scope, with_customer=who.is_admin, buffer=limits.buffer)
    sub.on_close = hub.discard
    hub.add(sub)
    try:
        return await _catch_up(storage, sub, request.last_event_id, limits)
    except BaseException:
        hub.discard(sub)
        raise


async def _catch_up(
    storage: Storage, sub: Subscription, last_event_id: str | None, limits: Limits
) -> Opened:
    now = datetime.now(UTC)
    resync = None
    if last_event_id is not None:
        try:
            cursor = Cursor.decode(last_event_id)
        except CursorError:
            cursor, resync = None, "unknown_event_id"
        if cursor is not None and cursor.overflowed:
            cursor, resync = None, "too_many_changes"
        elif cursor is not None and cursor.t < (now.timestamp() - limits.replay_window) * 1000:
            cursor, resync = None, "event_id_too_old"
        if cursor is not None:
            sub.cursor = cursor
            since = datetime.fromtimestamp((cursor.t - LOOKBACK_MS) / 1000, UTC)
            async with storage.read() as tx:
                found = await tx.status_changes.since(sub.scope, since, limits.max_replay + 1)
            missed = [c for c in found if not cursor.covers(c.order_id, c.version, c.at)]
            if len(found) <= limits.max_replay:
                return Opened(sub, [(c, eid) for c in missed if (eid := sub.accept(c))], None)
            resync = "too_many_changes"
    # A fresh start (or a restart after resync_required): live from now. What changed just before
    # now counts as known, so a resume from this point does not send it as missed.
    sub.cursor = Cursor.starting_at(now)
    since = now - timedelta(milliseconds=LOOKBACK_MS)
    async with storage.read() as tx:
        recent = await tx.status_changes.since(sub.scope, since, limits.max_replay + 1)
    for change in recent:
        sub.mark_sent(change)
    return Opened(sub, [], resync)
