from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.gateway.gateway_harness import Stack, build_stack


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """One gateway stack per test module (each test uses its own accounts), so modules using it
    mark `loop_scope="module"`."""
    async with build_stack(tmp_path_factory.mktemp("gateway")) as built:
        yield built
