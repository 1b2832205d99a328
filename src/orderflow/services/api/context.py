"""What the API's routes need, built once by bootstrap and kept on app.state."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from orderflow.ports.broker import Broker
from orderflow.ports.identity import IdentityVerifier
from orderflow.ports.storage import Storage
from orderflow.services.api.catalog_cache import CatalogCache
from orderflow.services.orders.backlog import BacklogGate
from orderflow.services.orders.intake import OrderIntake
from orderflow.services.orders.recovery import DeadLetters


@dataclass
class ApiContext:
    db: Storage
    intake: OrderIntake
    catalog: CatalogCache
    verifier: IdentityVerifier
    # The admin's dead-letter tools; None where the API was built without a broker.
    dead_letters: DeadLetters | None = None
    broker: Broker | None = None
    backlog: BacklogGate | None = None  # None: no bound on the pipeline's backlog
    _broker_ready: bool = field(default=False, init=False)
    _broker_lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False)

    async def connected_dead_letters(self) -> DeadLetters | None:
        """The dead-letter tools, their broker connected on first use: orders never wait for
        the broker, so the API must not either (nor fail to start while it is down)."""
        if self.dead_letters is None or self.broker is None:
            return None
        async with self._broker_lock:
            if not self._broker_ready:
                await self.broker.connect()
                self._broker_ready = True
        return self.dead_letters

    async def close(self) -> None:
        if self.broker is not None and self._broker_ready:
            await self.broker.close()
