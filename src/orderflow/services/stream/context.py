"""What one stream process holds, built by the composition root."""

from __future__ import annotations

from dataclasses import dataclass, field

from orderflow.ports.broker import Broker
from orderflow.ports.identity import IdentityVerifier
from orderflow.ports.storage import Storage
from orderflow.services.stream.feed import StatusFeed
from orderflow.services.stream.hub import Hub
from orderflow.services.stream.opening import Limits


@dataclass(slots=True)
class StreamContext:
    storage: Storage
    broker: Broker
    verifier: IdentityVerifier
    feed: StatusFeed
    hub: Hub = field(default_factory=Hub)
    limits: Limits = field(default_factory=Limits)
    heartbeat: float = 15.0  # seconds between heartbeats on an idle connection
    send_timeout: float = 10.0  # a client that takes longer to take one message is dropped
