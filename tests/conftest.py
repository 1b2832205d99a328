"""Shared fixtures. Test layers: unit/ (pure), contract/ (broker engines), integration/ (real
database and HTTP), e2e/ (the whole system as processes)."""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("ORDERFLOW_SLOW") == "1" or config.getoption("-m"):
        return
    skip_slow = pytest.mark.skip(reason="slow variant; run with ORDERFLOW_SLOW=1 or -m slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_slow)
