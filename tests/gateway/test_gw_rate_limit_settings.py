"""Rate limit settings that cannot work are refused at start, in one line naming the setting and
never showing the value (a Redis URL may hold a password)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from orderflow.services.gateway import GatewaySettings


def test_an_unusable_storage_url_is_refused_without_echoing_it(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "orderflow", "serve", "gateway"],
        env={
            **os.environ,
            "ORDERFLOW_DATA_DIR": str(tmp_path),
            "ORDERFLOW_GATEWAY_RATE_LIMIT_STORAGE": "http://user:s3cret@cache:6379",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        "orderflow: ORDERFLOW_GATEWAY_RATE_LIMIT_STORAGE must start with memory://, redis://"
        " or rediss://"
    )
    assert "Traceback" not in done.stderr
    assert "s3cret" not in done.stdout + done.stderr


@pytest.mark.parametrize("tiers", [[(0, 60)], [(5, 0)], [(5, 60), (-1, 900)]])
def test_login_tiers_need_attempts_and_a_window(tiers: list[tuple[int, float]]) -> None:
    with pytest.raises(ValidationError):
        GatewaySettings(login_client_limits=tiers)


def test_tiers_come_from_the_environment_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERFLOW_GATEWAY_LOGIN_CLIENT_LIMITS", "[[3, 30], [6, 600]]")
    assert GatewaySettings().login_client_limits == [(3, 30.0), (6, 600.0)]
