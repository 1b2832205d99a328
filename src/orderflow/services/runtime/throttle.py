"""Throttle: how a consumer's call-out dependency slows the consumer down while it is failing.

A delivery counts as an attempt once a handler sees it, and attempts run out. While a provider's
circuit is open every call fails at once, so fetching would only spend the messages' attempts and
dead-letter healthy orders during an outage. The consumer asks its throttle before each fetch:
fetch nothing for `hold_off()` seconds, and at most `batch_limit()` messages (one while the
provider is being tried again), so an outage of any length costs each message at most the
attempts that were in flight when it began, plus one per failed trial for the trial message.
"""

from __future__ import annotations

from typing import Protocol


class Throttle(Protocol):
    def hold_off(self) -> float:
        """Seconds to fetch nothing now (0: fetch)."""
        ...

    def batch_limit(self) -> int | None:
        """At most this many messages per fetch now (None: the consumer's own batch size)."""
        ...


class Unthrottled:
    def hold_off(self) -> float:
        return 0.0

    def batch_limit(self) -> int | None:
        return None
