"""Cancels racing the running pipeline: every answer is 202 or 409, whatever the interleaving.

The API's cancel and the saga both update the order row; a cancel that lost the race to the saga
(or to another cancel) is tried again, never answered 500, on every database engine.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from orderflow.domain.identity import Identity
from tests.integration.api.harness import Api
from tests.support.databases import ENGINES, fresh_database
from tests.support.system import System, customer

ORDERS_PLACED = 120
CANCELS_PER_ORDER = 3


@pytest.mark.parametrize("engine", ENGINES)
def test_cancels_racing_the_pipeline_answer_202_or_409(engine: str, tmp_path: Path) -> None:
    with fresh_database(engine, tmp_path) as url:
        system = System(tmp_path / "data", env={"ORDERFLOW_DATABASE_URL": url})
        system.start()
        api = Api(system)
        try:
            who = customer()
            # Each order is cancelled several times at once as soon as it is accepted, while
            # the saga moves it (and the others) along.
            with ThreadPoolExecutor(max_workers=16) as pool:
                statuses = [
                    status
                    for burst in pool.map(
                        lambda _: _place_and_cancel(api, who), range(ORDERS_PLACED)
                    )
                    for status in burst
                ]
        finally:
            api.close()
            system.stop()
        logs = system.logs_all()
    assert len(statuses) == ORDERS_PLACED * CANCELS_PER_ORDER
    assert set(statuses) <= {202, 409}, (sorted(set(statuses)), logs[-3000:])


def _place_and_cancel(api: Api, who: Identity) -> list[int]:
    response = api.place(who, [("MUG-WHT", 1)])
    assert response.status_code == 202, response.text
    oid = response.json()["id"]
    with ThreadPoolExecutor(max_workers=CANCELS_PER_ORDER) as pool:
        return list(pool.map(lambda _: api.cancel(oid, who).status_code, range(CANCELS_PER_ORDER)))
