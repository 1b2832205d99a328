"""Account changes reach every gateway process: two `orderflow serve gateway` processes share
one gateway database; an account disabled through one of them, or with `orderflow admin` (a
third process), is refused by the other one too, tokens and API keys alike. Each process keeps
an account's state for at most `account_state_max_age` (0.5 s), so the other one follows within
that; the polling below waits for the change to arrive (generously, on a busy machine) and
fails if it never does."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.gateway.gateway_harness import FAST_HASHING_ENV, PASSWORD
from tests.support.system import System

FAST = FAST_HASHING_ENV


def orderflow(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orderflow", *args],
        env={**os.environ, "ORDERFLOW_DATA_DIR": str(data_dir), **FAST},
        capture_output=True,
        text=True,
        timeout=120,
    )


def admin_cli(data_dir: Path, action: str, email: str) -> None:
    done = orderflow(data_dir, "admin", action, "--email", email)
    assert done.returncode == 0, done.stderr[-3000:]


def login(client: httpx.Client, email: str) -> dict[str, str]:
    response = client.post("/auth/token", data={"username": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    tokens: dict[str, str] = response.json()
    return tokens


def bearer(tokens: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def probe(client: httpx.Client, headers: dict[str, str]) -> httpx.Response:
    """A request that passes only the gateway's authentication: a stream ticket for a user, the
    key's own description for an API key (neither reads the account again by itself)."""
    if "X-API-Key" in headers:
        return client.get("/auth/me", headers=headers)
    return client.post("/auth/ticket", headers=headers)


def eventually(client: httpx.Client, headers: dict[str, str], status: int, reason: str) -> None:
    """Probe until the answer is `status` (with `reason`, if refused), or fail."""
    deadline = time.monotonic() + 15
    while True:
        response = probe(client, headers)
        if response.status_code == status and response.json().get("reason") == (reason or None):
            return
        assert time.monotonic() < deadline, (status, reason, response.text)
        time.sleep(0.05)


def test_account_changes_reach_every_gateway_process(tmp_path: Path) -> None:
    data = tmp_path / "data"
    for email in ("root@example.com", "keys@example.com"):
        done = orderflow(data, "admin", "create", "--email", email, "--password", PASSWORD)
        assert done.returncode == 0, done.stderr[-3000:]
    gateways = [System(data, args=("serve", "gateway"), env=FAST) for _ in range(2)]
    for gateway in gateways:
        gateway.start()
    try:
        with (
            httpx.Client(base_url=gateways[0].public_url, timeout=30) as one,
            httpx.Client(base_url=gateways[1].public_url, timeout=30) as two,
        ):
            registered = one.post(
                "/auth/register",
                json={"email": "ann@example.com", "password": PASSWORD, "name": "A"},
            )
            assert registered.status_code == 202
            ann, root = login(two, "ann@example.com"), login(one, "root@example.com")
            created = one.post(
                "/auth/api-keys",
                headers=bearer(login(one, "keys@example.com")),
                json={"name": "sync", "scopes": ["orders:read"]},
            )
            assert created.status_code == 201, created.text
            key = {"X-API-Key": created.json()["key"]}
            # The second gateway has seen both and holds them as active.
            eventually(two, bearer(ann), 200, "")
            eventually(two, key, 200, "")

            ann_id = two.get("/auth/me", headers=bearer(ann)).json()["id"]
            disabled = one.post(f"/auth/accounts/{ann_id}/disable", headers=bearer(root))
            assert disabled.status_code == 200, disabled.text
            eventually(two, bearer(ann), 401, "account_disabled")

            admin_cli(data, "disable", "keys@example.com")
            for gateway in (one, two):
                eventually(gateway, key, 401, "api_key_owner_disabled")
            admin_cli(data, "enable", "keys@example.com")
            eventually(two, key, 200, "")

            admin_cli(data, "delete", "ann@example.com")
            eventually(two, bearer(ann), 401, "account_deleted")
            eventually(one, bearer(ann), 401, "account_deleted")
    finally:
        for gateway in gateways:
            gateway.stop()


def test_the_admin_commands_refuse_clearly(tmp_path: Path) -> None:
    data = tmp_path / "data"
    done = orderflow(data, "admin", "create", "--email", "solo@example.com", "--password", PASSWORD)
    assert done.returncode == 0, done.stderr[-3000:]
    for action in ("disable", "delete"):
        last = orderflow(data, "admin", action, "--email", "solo@example.com")
        assert last.returncode == 2
        assert last.stderr.strip() == "error: at least one enabled admin account must remain"
    unknown = orderflow(data, "admin", "enable", "--email", "nobody@example.com")
    assert unknown.returncode == 2
    assert "no account has the email 'nobody@example.com'" in unknown.stderr
    assert "Traceback" not in unknown.stderr
