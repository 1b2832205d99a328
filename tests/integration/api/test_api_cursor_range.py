"""A forged list cursor whose time is out of range (year 1 or 9999 with an offset that moves it
past the calendar in UTC, or naive): 400 problem+json on every database engine, never a 500."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator

import orjson
import pytest

from orderflow.bootstrap import prepare
from orderflow.config import Settings
from tests.integration.api.harness import ORDERS, Api, assert_problem
from tests.support.databases import ENGINES, fresh_database
from tests.support.system import System, customer

FORGED_TIMES = [
    ("0001-01-01T00:00:00+14:00", 400),  # before year 1 in UTC
    ("9999-12-31T23:59:59-14:00", 400),  # past year 9999 in UTC
    ("0001-01-01T00:00:00+00:00", 200),  # the edges themselves are times: an empty page
    ("9999-12-31T23:59:59.999999+00:00", 200),
    ("0001-01-01T00:00:00", 200),  # naive: taken as UTC
]


@pytest.fixture(scope="module", params=ENGINES)
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    tmp_path = tmp_path_factory.mktemp(request.param)
    with fresh_database(request.param, tmp_path) as url:
        data_dir = tmp_path / "data"
        asyncio.run(prepare(Settings(data_dir=data_dir, database_url=url)))
        system = System(data_dir, args=("serve", "api"), env={"ORDERFLOW_DATABASE_URL": url})
        system.start()
        client = Api(system)
        try:
            yield client
        finally:
            client.close()
            system.stop()


def cursor(created: str) -> str:
    parts = [created, "00000000-0000-0000-0000-000000000000"]
    return base64.urlsafe_b64encode(orjson.dumps(parts)).decode().rstrip("=")


@pytest.mark.parametrize(("created", "status"), FORGED_TIMES)
def test_an_out_of_range_cursor_time_is_a_bad_cursor(api: Api, created: str, status: int) -> None:
    who = customer()
    assert api.place(who).status_code == 202
    response = api.get(ORDERS, who, cursor=cursor(created))
    if status == 200:
        assert response.status_code == 200, response.text
        return
    problem = assert_problem(response, 400)
    assert problem["title"] == "Bad cursor"


def test_an_ordinary_cursor_still_pages(api: Api) -> None:
    who = customer()
    for _ in range(3):
        assert api.place(who).status_code == 202
    assert len(api.listed_ids(who, limit=1)) == 3
