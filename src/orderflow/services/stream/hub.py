"""The subscriptions of one stream process, indexed by what they watch."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from orderflow.ports.status_changes import StatusChange
from orderflow.services.stream.subscription import Subscription


class Hub:
    def __init__(self) -> None:
        self._by_customer: defaultdict[str, set[Subscription]] = defaultdict(set)
        self._by_order: defaultdict[str, set[Subscription]] = defaultdict(set)
        self._everything: set[Subscription] = set()

    def __len__(self) -> int:
        return (
            sum(map(len, self._by_customer.values()))
            + sum(map(len, self._by_order.values()))
            + len(self._everything)
        )

    def subscriptions(self) -> Iterable[Subscription]:
        yield from self._everything
        for subs in (*self._by_customer.values(), *self._by_order.values()):
            yield from subs

    def add(self, sub: Subscription) -> None:
        self._index(sub).add(sub)

    def discard(self, sub: Subscription) -> None:
        index = self._index(sub)
        index.discard(sub)
        # Drop empty sets, or every order ever watched would stay a key for ever.
        if not index and sub.scope.order_id is not None:
            del self._by_order[sub.scope.order_id]
        elif not index and sub.scope.customer_id is not None:
            del self._by_customer[sub.scope.customer_id]

    def publish(self, changes: Iterable[StatusChange]) -> None:
        """Hand each change to every subscription that watches it; never waits."""
        for change in changes:
            for sub in self._everything:
                sub.offer(change)
            for sub in self._by_customer.get(change.customer_id, ()):
                sub.offer(change)
            for sub in self._by_order.get(change.order_id, ()):
                sub.offer(change)

    def _index(self, sub: Subscription) -> set[Subscription]:
        scope = sub.scope
        if scope.order_id is not None:
            return self._by_order[scope.order_id]
        if scope.customer_id is not None:
            return self._by_customer[scope.customer_id]
        return self._everything
