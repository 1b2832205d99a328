"""What every broker engine is built from besides its URL.

Options of one engine alone go in its URL (`embedded:///path?synchronous=normal`), so adding an
engine never adds a field here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BrokerSettings:
    # Namespaces topics on a shared server, so deployments and test runs never meet.
    prefix: str = "orderflow"
    # Shards per topic; None leaves it to the engine (engines that order without shards ignore it).
    partitions: int | None = None
