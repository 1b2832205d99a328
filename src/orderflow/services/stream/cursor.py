"""The resume cursor: what a client has been sent, in the event id of every message it gets.

Why not one global number: the timeline's natural global order (a sequence) is not the order in
which PostgreSQL makes rows visible (a transaction that took id 7 may commit after the one that
took id 8), so "everything after N" could skip a row for good. Per order, versions are exact.
The cursor is therefore a time watermark `t` (the newest change sent, in ms) plus the version
sent last of every order that changed within LOOKBACK of it. A change older than `t - LOOKBACK`
had committed before the newest change was decided (no writer transaction lasts LOOKBACK), so the
stream, which forwards changes in commit order give or take the relay, had sent it already; any
other change in scope is missing exactly when its version is above the cursor's for its order.

Text form: `<t>` then `~<order id>:<version>` per order, e.g. `1717000000123~a1b2:3~c4d5:2`; it
never decreases in `t`. Past MAX_ORDERS orders within the window it cannot be exact any more and
becomes `<t>~*`, which the service answers with `resync_required`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

LOOKBACK_MS = 10_000
MAX_ORDERS = 64
MAX_TEXT = 4096
_ENTRY = re.compile(r"^([A-Za-z0-9-]{1,64}):([0-9]{1,9})$")


class CursorError(ValueError):
    """The text is not a cursor this service wrote."""


@dataclass(slots=True)
class Cursor:
    t: int = 0  # ms since the epoch of the newest change covered
    # order id -> (version, ms of that change); only orders changed within LOOKBACK of t
    recent: dict[str, tuple[int, int]] = field(default_factory=dict)
    overflowed: bool = False

    @classmethod
    def starting_at(cls, when: datetime) -> Cursor:
        return cls(t=_ms(when))

    def covers(self, order_id: str, version: int, at: datetime) -> bool:
        """Whether a change is already accounted for by this cursor."""
        entry = self.recent.get(order_id)
        if entry is not None:
            return version <= entry[0]
        return _ms(at) < self.t - LOOKBACK_MS

    def advance(self, order_id: str, version: int, at: datetime) -> None:
        ms = _ms(at)
        self.t = max(self.t, ms)
        previous = self.recent.get(order_id)
        if previous is None or previous[0] < version:
            self.recent[order_id] = (version, ms)
        horizon = self.t - LOOKBACK_MS
        if any(when < horizon for _, when in self.recent.values()):
            self.recent = {o: e for o, e in self.recent.items() if e[1] >= horizon}
        if len(self.recent) > MAX_ORDERS:
            self.overflowed = True

    def encode(self) -> str:
        if self.overflowed:
            return f"{self.t}~*"
        return str(self.t) + "".join(f"~{o}:{v}" for o, (v, _) in self.recent.items())

    @classmethod
    def decode(cls, text: str) -> Cursor:
        if not text or len(text) > MAX_TEXT:
            raise CursorError("bad event id")
        head, *entries = text.split("~")
        if not head.isdigit() or len(head) > 16:
            raise CursorError("bad event id")
        cursor = cls(t=int(head))
        if entries == ["*"]:
            cursor.overflowed = True
            return cursor
        for entry in entries:
            match = _ENTRY.match(entry)
            if match is None or len(cursor.recent) >= MAX_ORDERS:
                raise CursorError("bad event id")
            # Its time is not in the text: assume the newest, so it is kept long enough.
            cursor.recent[match[1]] = (int(match[2]), cursor.t)
        return cursor


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)
