"""What one `orderflow bench` run does: the load's shape, the order mix and the outputs."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

Mode = Literal["open", "max"]


@dataclass(frozen=True)
class BenchConfig:
    url: str
    # "open": arrivals on a fixed timetable at `rate`; "max": `connections` workers back to back.
    mode: Mode = "open"
    rate: float = 100.0
    duration: float | None = 10.0  # seconds of arrivals; `orders` bounds the run instead when set
    orders: int | None = None
    connections: int = 64
    # Open loop: an arrival finding this many submissions unanswered is dropped by the client
    # (and counted), rather than silently delayed until a slot frees up.
    max_in_flight: int = 1024
    customers: int = 4
    lines: tuple[int, int] = (1, 5)
    max_quantity: int = 3
    decline_share: float = 0.05
    transient_share: float = 0.0
    idempotency_keys: bool = True  # every order with its own Idempotency-Key, as a store sends
    status_reads: float = 0.0  # order-list reads per second, all customers together
    direct: bool = False  # sign identity assertions locally and talk to the API's own port
    key_dir: Path | None = None  # the gateway's signing keys, for `direct`
    email_prefix: str = "bench"
    password: str = "orderflow-bench"
    settle_timeout: float = 120.0  # how long to wait for accepted orders to reach a final status
    ceiling: bool = False
    ceiling_duration: float = 5.0
    seed: int = 1
    report: Path | None = None
    chart: Path | None = None

    def __post_init__(self) -> None:
        if self.duration is None and self.orders is None:
            raise ValueError("give a duration or a number of orders")
        if self.mode == "open" and self.rate <= 0:
            raise ValueError("the open loop needs a positive rate")
        low, high = self.lines
        if not 1 <= low <= high:
            raise ValueError("lines must be a range like 1-5")
        if self.connections < 1 or self.customers < 1 or self.max_in_flight < 1:
            raise ValueError("connections, customers and max_in_flight must be positive")
        if not 0 <= self.decline_share + self.transient_share <= 1:
            raise ValueError("the decline and transient shares must add up to at most 1")

    def as_json(self) -> dict[str, Any]:
        """The run's settings as the report records them (paths as text, no password)."""
        out = asdict(self)
        out.pop("password")
        for name in ("key_dir", "report", "chart"):
            out[name] = str(out[name]) if out[name] is not None else None
        out["lines"] = list(self.lines)
        return out


def parse_range(text: str) -> tuple[int, int]:
    """`"1-5"` -> (1, 5); `"3"` -> (3, 3)."""
    low, _, high = text.partition("-")
    try:
        return int(low), int(high or low)
    except ValueError as exc:
        raise ValueError(f"not a range like 1-5: {text!r}") from exc
