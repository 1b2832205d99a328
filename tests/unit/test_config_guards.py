"""The guards' settings (issue 11) refuse what cannot work, at start, naming the setting."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from orderflow.config import Settings


def test_the_defaults_watch_every_status_the_pipeline_owes_a_step() -> None:
    settings = Settings()
    assert settings.watchdog_deadlines == {"pending": 120.0, "reserved": 120.0, "paid": 120.0}
    assert settings.reservation_ttl > 0
    assert settings.backlog_max > 0


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ORDERFLOW_WATCHDOG_DEADLINES", '{"confirmed": 10}'),
        ("ORDERFLOW_WATCHDOG_DEADLINES", '{"pending": 0}'),
        ("ORDERFLOW_WATCHDOG_DEADLINES", "120"),
        ("ORDERFLOW_RESERVATION_TTL", "0"),
        ("ORDERFLOW_BACKLOG_MAX", "-1"),
        ("ORDERFLOW_WATCHDOG_REDRIVES", "-1"),
    ],
)
def test_a_setting_that_cannot_work_is_refused(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(
        (ValidationError, ValueError), match=name.removeprefix("ORDERFLOW_").lower()
    ):
        Settings()
