"""One real API server per test module (started once: a process start costs about a second)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.api.harness import Api, api_server


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    with api_server(tmp_path_factory.mktemp("api") / "data") as system:
        client = Api(system)
        yield client
        client.close()
