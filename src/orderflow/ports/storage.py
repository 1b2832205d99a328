"""The unit of work: a transaction that hands out what services keep, one repository per kind.

    async with storage.write() as tx:     # one transaction; committed when the block ends,
        states = await tx.orders...       # rolled back if it raises
        await tx.outbox.add(...)

`read()` gives a transaction for reads that never waits behind writers. Everything a
transaction hands out speaks in batches (a list of ids in, a dict out), so a batch of messages costs
a few statements, not a few per message. Errors the database raises that a service must react to
come out as the errors of `ports.errors`.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Protocol

from orderflow.ports.attempts import AttemptLog
from orderflow.ports.catalog import Catalog
from orderflow.ports.inventory import Inventory
from orderflow.ports.ledger import PaymentLedger
from orderflow.ports.orders import OrderQueries, OrderRepository
from orderflow.ports.outbox import Outbox
from orderflow.ports.processed import ProcessedMessages, ProcessedRetention
from orderflow.ports.status_changes import StatusChanges
from orderflow.ports.watch import OrderWatch, PipelineBacklog


class Reads(Protocol):
    @property
    def queries(self) -> OrderQueries: ...

    @property
    def catalog(self) -> Catalog: ...

    @property
    def payments(self) -> PaymentLedger: ...

    @property
    def outbox(self) -> Outbox: ...

    @property
    def status_changes(self) -> StatusChanges: ...

    @property
    def attempts(self) -> AttemptLog: ...

    @property
    def backlog(self) -> PipelineBacklog: ...


class Writes(Reads, Protocol):
    @property
    def orders(self) -> OrderRepository: ...

    @property
    def inventory(self) -> Inventory: ...

    @property
    def retention(self) -> ProcessedRetention: ...

    @property
    def watch(self) -> OrderWatch: ...

    def processed(self, consumer: str) -> ProcessedMessages:
        """The message ids `consumer` has applied."""
        ...

    def savepoint(self) -> AbstractAsyncContextManager[None]:
        """A nested transaction: what the block wrote is undone if it raises, the rest kept."""
        ...


class Storage(Protocol):
    @property
    def claims_rows(self) -> bool:
        """True where concurrent writers run at once and rows can be claimed (locked, skipping
        what others hold); False where writers take turns (SQLite)."""
        ...

    def read(self) -> AbstractAsyncContextManager[Reads]: ...

    def write(self) -> AbstractAsyncContextManager[Writes]: ...

    async def ping(self) -> None:
        """Raise if the database cannot be reached."""
        ...

    async def dispose(self) -> None:
        """Close every connection."""
        ...
