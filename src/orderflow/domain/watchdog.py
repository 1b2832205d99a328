"""When an order counts as stuck, and what is done about it. Pure: times in, verdicts out.

An order the pipeline still owes a step (pending: its reservation; reserved: its payment; paid:
its stock commit) that has not moved for its status's deadline has its step sent again (a
re-drive, recorded on its timeline, which counts as movement). One that stays in the status
through `redrives` re-drives and one more deadline is given up on: it fails with the reason,
which undoes what it holds. A reserved order is never failed here: the reservation TTL ends it
(expired, with its stock released), so the two never disagree about why it ended.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from orderflow.domain.order import OrderStatus

S = OrderStatus

# The statuses the watchdog looks after: each waits on one step of the pipeline.
WATCHED = (S.PENDING, S.RESERVED, S.PAID)
# Ended by the reservation TTL instead of the watchdog.
_EXPIRES = frozenset({S.RESERVED})


class Verdict(Enum):
    REDRIVE = "redrive"
    GIVE_UP = "give_up"


@dataclass(frozen=True, slots=True)
class StallPolicy:
    deadlines: Mapping[OrderStatus, float]  # seconds without movement, per watched status
    redrives: int = 3  # re-drives before giving up

    def __post_init__(self) -> None:
        unknown = set(self.deadlines) - set(WATCHED)
        if unknown or any(d <= 0 for d in self.deadlines.values()) or self.redrives < 0:
            raise ValueError(
                "deadlines must be positive seconds for pending, reserved or paid, and redrives"
                " not negative"
            )

    def verdict(self, status: OrderStatus, idle_for: float, in_status_for: float) -> Verdict | None:
        """`idle_for`: seconds since the order last changed in any way (a re-drive included);
        `in_status_for`: since it entered its status."""
        deadline = self.deadlines.get(status)
        if deadline is None or idle_for < deadline:
            return None
        if status not in _EXPIRES and in_status_for >= deadline * (self.redrives + 1):
            return Verdict.GIVE_UP
        return Verdict.REDRIVE

    def reason(self, status: OrderStatus, verdict: Verdict, in_status_for: float) -> str:
        waited = f"no progress in {status.value} for {in_status_for:.0f}s"
        if verdict is Verdict.GIVE_UP:
            plural = "" if self.redrives == 1 else "s"
            return f"{waited} after {self.redrives} re-drive{plural}; given up"
        return f"{waited}; its step was sent again"
