"""One real API server per test module (started once: a process start costs about a second)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.api.harness import Api, api_server
from tests.support.databases import ENGINES, fresh_database


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    with api_server(tmp_path_factory.mktemp("api") / "data") as system:
        client = Api(system)
        yield client
        client.close()


@pytest.fixture(params=ENGINES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh SQLite file, then a fresh PostgreSQL database: for tests that run on both."""
    with fresh_database(request.param, tmp_path) as url:
        yield url
