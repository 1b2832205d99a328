"""From the broker to the hub: this process's own group on `orders.status_changed`.

Every stream process must see every change, so each joins with a group of its own (a group's
members would share the messages instead). The group is ephemeral: the broker deletes it once
the process has been gone for `expires_after`, so instances that come and go leave nothing.
The message says which change happened (order id, version); the change itself, with the order's
customer, is read from the timeline, the one source the resume reads too.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid

import structlog

from orderflow.domain import messages as m
from orderflow.messaging.envelope import MalformedMessageError, decode
from orderflow.ports.broker import Ack, Broker, ConsumerSpec, Delivery
from orderflow.ports.storage import Storage
from orderflow.services.stream.hub import Hub

log = structlog.get_logger("orderflow.stream.feed")
FETCH = 500


def instance_spec(expires_after: float) -> ConsumerSpec:
    host = "".join(c if c.isalnum() else "-" for c in socket.gethostname())[:32]
    return ConsumerSpec(
        group=f"stream-{host}-{os.getpid()}-{uuid.uuid4().hex[:8]}",
        topics=(m.ORDER_STATUS_CHANGED,),
        max_in_flight=FETCH * 2,
        max_attempts=3,
        ack_wait=30.0,
        expires_after=expires_after,
    )


class StatusFeed:
    def __init__(self, broker: Broker, storage: Storage, hub: Hub, spec: ConsumerSpec) -> None:
        self._broker = broker
        self._storage = storage
        self._hub = hub
        self.spec = spec
        self.ready = asyncio.Event()  # the group exists: changes from now on reach the hub

    async def run(self, stop: asyncio.Event) -> None:
        consumer = await self._broker.consumer(self.spec)
        self.ready.set()
        try:
            while not stop.is_set():
                deliveries = await consumer.fetch(FETCH, timeout=1.0)
                if deliveries:
                    await self._forward(deliveries)
                    await consumer.settle([(d, Ack()) for d in deliveries])
        finally:
            await consumer.close()

    async def _forward(self, deliveries: list[Delivery]) -> None:
        keys: list[tuple[str, int]] = []
        for delivery in deliveries:
            try:
                message = decode(delivery.payload)
            except MalformedMessageError:
                log.warning("undecodable status change", message_id=delivery.message_id)
                continue
            if isinstance(message, m.OrderStatusChanged):
                keys.append((message.order_id, message.version))
        if not keys:
            return
        async with self._storage.read() as tx:
            changes = await tx.status_changes.by_version(keys)
        # Oldest first, per order in version order: the order clients see them in.
        changes.sort(key=lambda c: (c.at, c.order_id, c.version))
        self._hub.publish(changes)
