"""Build the Broker engine a URL names, looked up by its scheme among the installed engines.

Engines register as entry points of the group `orderflow.brokers`, one per URL scheme they
serve, each naming the engine's `engine:from_url` (ours in pyproject.toml; another package can
add an engine the same way). Only the engine a URL asks for is imported, so an optional engine's
library (an extra such as `orderflow[nats]`) is needed only where it is used.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Protocol
from urllib.parse import urlsplit

from orderflow.adapters.broker.settings import BrokerSettings
from orderflow.adapters.urls import redact_url
from orderflow.ports.broker import Broker

ENGINES = "orderflow.brokers"


class BrokerEngine(Protocol):
    """What each engine package offers as `engine.from_url`."""

    def __call__(self, url: str, settings: BrokerSettings, /) -> Broker: ...


def broker_from_url(url: str, settings: BrokerSettings | None = None) -> Broker:
    """The engine for `url`'s scheme (`embedded`, `nats`/`tls`, `amqp`/`amqps`, ...), built
    from the URL and the settings every engine shares. Raises ValueError for a scheme no engine
    serves, and ImportError naming the extra to install for an engine whose library is missing."""
    scheme = urlsplit(url).scheme.lower()
    return engine_for(scheme, url)(url, settings or BrokerSettings())


def engine_for(scheme: str, url: str = "") -> BrokerEngine:
    registered = {ep.value: ep for ep in entry_points(group=ENGINES, name=scheme)}
    if len(registered) > 1:
        raise ValueError(f"broker URL scheme {scheme!r} is claimed by {sorted(registered)}")
    if not registered:
        known = sorted({ep.name for ep in entry_points(group=ENGINES)})
        hint = (
            f"expected one of {', '.join(known)}"
            if known
            else "no engine is registered: is orderflow installed (pip install -e .)?"
        )
        raise ValueError(f"unknown broker URL scheme {scheme!r} in {redact_url(url)!r}: {hint}")
    (entry,) = registered.values()
    built: BrokerEngine = entry.load()
    return built
