"""VerifiedTokens: tokens whose signature was checked, remembered until they expire.

Checking an Ed25519 signature costs far more than a dict lookup, and the same token arrives many
times (a client's access token, the gateway's reused assertion), so verifiers look here first.
"""

from __future__ import annotations

import time
from collections import OrderedDict

from orderflow.domain.identity import Identity


class VerifiedTokens:
    def __init__(self, size: int) -> None:
        self._entries: OrderedDict[str, tuple[Identity, float]] = OrderedDict()
        self._size = size

    def get(self, token: str) -> Identity | None:
        entry = self._entries.get(token)
        if entry is None or entry[1] <= time.time():
            return None
        return entry[0]

    def expiry(self, token: str) -> float | None:
        entry = self._entries.get(token)
        return None if entry is None or entry[1] <= time.time() else entry[1]

    def put(self, token: str, identity: Identity, expires: float) -> None:
        self._entries[token] = (identity, expires)
        if len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()
