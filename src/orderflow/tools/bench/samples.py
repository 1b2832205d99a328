"""What the load generator records: one sample per arrival, and live counters for the progress bar.

Times are seconds since the run's start on the monotonic clock. `intended` is when the timetable
said the request should go out; latency counted from it includes any time the request waited for
a connection or for the client itself, which is what a user would have waited (no coordinated
omission). `wall_start` maps these times onto the server's wall-clock timestamps.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

DROPPED = "dropped by client"


@dataclass(slots=True)
class Sample:
    index: int
    customer: int
    intended: float
    sent: float = 0.0
    done: float = 0.0
    status: int | None = None  # HTTP status; None when dropped or the transport failed
    error: str | None = None  # DROPPED, or "transport: <exception class>"
    order_id: str | None = None
    title: str | None = None  # an error answer's problem+json title ("Overloaded", ...)

    @property
    def latency(self) -> float:
        return self.done - self.intended

    @property
    def outcome(self) -> str:
        """How the report groups it: the status code, a transport error, or dropped."""
        return self.error if self.error is not None else str(self.status)


@dataclass
class Recorder:
    """Samples of one kind of request (order submissions, or status reads) and live counts."""

    started: float = field(default_factory=time.monotonic)
    wall_start: float = field(default_factory=time.time)
    samples: list[Sample] = field(default_factory=list)
    accepted: list[Sample] = field(default_factory=list)  # answered with an order id, in order
    in_flight: int = 0
    sent: int = 0
    ok: int = 0
    failed: int = 0
    dropped: int = 0

    def now(self) -> float:
        return time.monotonic() - self.started

    def begin(self, sample: Sample) -> None:
        sample.sent = self.now()
        self.in_flight += 1
        self.sent += 1

    def end(self, sample: Sample, ok: bool) -> None:
        sample.done = self.now()
        self.in_flight -= 1
        if ok:
            self.ok += 1
            if sample.order_id is not None:
                self.accepted.append(sample)
        else:
            self.failed += 1
        self.samples.append(sample)

    def drop(self, sample: Sample) -> None:
        sample.error = DROPPED
        sample.sent = sample.done = sample.intended
        self.dropped += 1
        self.samples.append(sample)
