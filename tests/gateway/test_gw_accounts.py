"""Account controls over the API: admins disable, enable and delete accounts; a disabled or
deleted account is refused on its next request, by access token and by the API keys it created;
no change leaves the gateway without an enabled admin."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from tests.gateway.gateway_harness import Stack, admin, bearer, build_stack, customer, login

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def _id(client: httpx.AsyncClient, tokens: dict[str, Any]) -> str:
    me = await client.get("/auth/me", headers=bearer(tokens))
    assert me.status_code == 200, me.text
    return str(me.json()["id"])


async def _act(stack: Stack, root: dict[str, Any], action: str, account_id: str) -> httpx.Response:
    if action == "delete":
        return await stack.client.delete(f"/auth/accounts/{account_id}", headers=bearer(root))
    return await stack.client.post(f"/auth/accounts/{account_id}/{action}", headers=bearer(root))


async def _new_key(stack: Stack, tokens: dict[str, Any], **extra: Any) -> dict[str, Any]:
    body = {"name": "sync", "scopes": ["orders:read"], **extra}
    response = await stack.client.post("/auth/api-keys", headers=bearer(tokens), json=body)
    assert response.status_code == 201, response.text
    key: dict[str, Any] = response.json()
    return key


def _refused(response: httpx.Response, reason: str) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["reason"] == reason


async def test_a_disabled_customer_is_refused_at_once_and_can_come_back(stack: Stack) -> None:
    root = await admin(stack.client, stack.settings, stack.gw, "acc-root@example.com")
    ann = await customer(stack.client, "acc-ann@example.com")
    ann_id = await _id(stack.client, ann)
    assert (await stack.client.get("/api/orders", headers=bearer(ann))).status_code == 200

    found = await stack.client.get(
        "/auth/accounts", params={"email": "ACC-Ann@example.com"}, headers=bearer(root)
    )
    assert found.json()["items"][0]["id"] == ann_id

    ticket = (await stack.client.post("/auth/ticket", headers=bearer(ann))).json()["ticket"]
    with capture_logs() as logs:
        disabled = await _act(stack, root, "disable", ann_id)
    assert [e["account_id"] for e in logs if e["event"] == "account_disabled"] == [ann_id]
    assert disabled.status_code == 200, disabled.text
    assert disabled.json()["disabled"] is True
    # The 15-minute access token stops on its very next request, everywhere it is used.
    for path in ("/api/orders", "/auth/me"):
        _refused(await stack.client.get(path, headers=bearer(ann)), "account_disabled")
    _refused(await stack.client.post("/auth/ticket", headers=bearer(ann)), "account_disabled")
    # A stream ticket taken before is refused too.
    _refused(await stack.client.get("/events", params={"ticket": ticket}), "account_disabled")
    refreshed = await stack.client.post(
        "/auth/refresh", json={"refresh_token": ann["refresh_token"]}
    )
    assert refreshed.status_code == 401
    wrong = await stack.client.post(
        "/auth/token", data={"username": "acc-ann@example.com", "password": "correct horse battery"}
    )
    assert wrong.status_code == 401

    enabled = await _act(stack, root, "enable", ann_id)
    assert enabled.status_code == 200
    assert enabled.json()["disabled"] is False
    again = await login(stack.client, "acc-ann@example.com")
    assert (await stack.client.get("/api/orders", headers=bearer(again))).status_code == 200
    # Disabling signed the account out everywhere: the old session stays ended.
    old = await stack.client.post("/auth/refresh", json={"refresh_token": ann["refresh_token"]})
    assert old.status_code == 401


async def test_an_admins_api_keys_stop_while_the_admin_is_disabled(stack: Stack) -> None:
    root = await admin(stack.client, stack.settings, stack.gw, "acc-root2@example.com")
    other = await admin(stack.client, stack.settings, stack.gw, "acc-keys@example.com")
    key = await _new_key(stack, other)
    with_key = {"X-API-Key": key["key"]}
    assert (await stack.client.get("/api/orders", headers=with_key)).status_code == 200

    other_id = await _id(stack.client, other)
    assert (await _act(stack, root, "disable", other_id)).status_code == 200
    _refused(await stack.client.get("/api/orders", headers=with_key), "api_key_owner_disabled")
    # The disabled admin's own token can no longer mint keys (which never expire).
    minted = await stack.client.post(
        "/auth/api-keys", headers=bearer(other), json={"name": "n", "scopes": ["orders:read"]}
    )
    _refused(minted, "account_disabled")

    assert (await _act(stack, root, "enable", other_id)).status_code == 200
    assert (await stack.client.get("/api/orders", headers=with_key)).status_code == 200


async def test_deleting_an_account(stack: Stack) -> None:
    root = await admin(stack.client, stack.settings, stack.gw, "acc-root3@example.com")
    bob = await customer(stack.client, "acc-bob@example.com")
    bob_id = await _id(stack.client, bob)
    other = await admin(stack.client, stack.settings, stack.gw, "acc-gone@example.com")
    key = await _new_key(stack, other)
    other_id = await _id(stack.client, other)

    root_id = await _id(stack.client, root)
    with capture_logs() as logs:
        assert (await _act(stack, root, "delete", bob_id)).status_code == 204
    audit = [e for e in logs if e["event"] == "account_deleted"]
    assert audit == [
        {"event": "account_deleted", "account_id": bob_id, "by": root_id, "log_level": "info"}
    ]
    _refused(await stack.client.get("/api/orders", headers=bearer(bob)), "account_deleted")
    assert (await _act(stack, root, "delete", bob_id)).status_code == 404
    assert (await _act(stack, root, "disable", bob_id)).status_code == 404
    # The address is free again.
    await customer(stack.client, "acc-bob@example.com")

    assert (await _act(stack, root, "delete", other_id)).status_code == 204
    refused = await stack.client.get("/api/orders", headers={"X-API-Key": key["key"]})
    _refused(refused, "invalid_api_key")  # revoked with its creator, for good
    listed = (await stack.client.get("/auth/api-keys", headers=bearer(root))).json()["items"]
    assert next(k for k in listed if k["id"] == key["id"])["revoked_at"] is not None


async def test_only_admin_users_manage_accounts(stack: Stack) -> None:
    cat = await customer(stack.client, "acc-cat@example.com")
    cat_id = await _id(stack.client, cat)
    for action in ("disable", "enable", "delete"):
        assert (await _act(stack, cat, action, cat_id)).status_code == 403
    found = await stack.client.get(
        "/auth/accounts", params={"email": "acc-cat@example.com"}, headers=bearer(cat)
    )
    assert found.status_code == 403
    assert (await stack.client.post(f"/auth/accounts/{cat_id}/disable")).status_code == 401


async def test_api_keys_may_expire(stack: Stack) -> None:
    root = await admin(stack.client, stack.settings, stack.gw, "acc-expiry@example.com")
    past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    late = await stack.client.post(
        "/auth/api-keys",
        headers=bearer(root),
        json={"name": "n", "scopes": ["orders:read"], "expires_at": past},
    )
    assert late.status_code == 422
    naive = await stack.client.post(
        "/auth/api-keys",
        headers=bearer(root),
        json={"name": "n", "scopes": ["orders:read"], "expires_at": "2999-01-01T00:00:00"},
    )
    assert naive.status_code == 422  # a time without a zone is ambiguous

    soon = datetime.now(UTC) + timedelta(seconds=1)
    key = await _new_key(stack, root, expires_at=soon.isoformat())
    assert datetime.fromisoformat(key["expires_at"]) == soon
    with_key = {"X-API-Key": key["key"]}
    assert (await stack.client.get("/api/orders", headers=with_key)).status_code == 200
    # Wait for the expiry itself (no event announces it), then the key is refused.
    await asyncio.sleep((soon - datetime.now(UTC)).total_seconds() + 0.05)
    _refused(await stack.client.get("/api/orders", headers=with_key), "invalid_api_key")
    forever = await _new_key(stack, root)
    assert forever["expires_at"] is None


async def test_the_last_enabled_admin_stays(tmp_path: Path) -> None:
    async with build_stack(tmp_path) as stack:
        only = await admin(stack.client, stack.settings, stack.gw, "only@example.com")
        only_id = await _id(stack.client, only)
        for action in ("disable", "delete"):
            refused = await _act(stack, only, action, only_id)
            assert refused.status_code == 409, refused.text
            assert refused.json()["reason"] == "last_admin"
        assert (await stack.client.get("/admin/page", headers=bearer(only))).status_code == 200

        second = await admin(stack.client, stack.settings, stack.gw, "second@example.com")
        second_id = await _id(stack.client, second)
        # With another enabled admin left, an admin may disable themselves...
        assert (await _act(stack, only, "disable", only_id)).status_code == 200
        _refused(await stack.client.get("/admin/page", headers=bearer(only)), "account_disabled")
        # ...but the one left cannot follow.
        for action in ("disable", "delete"):
            refused = await _act(stack, second, action, second_id)
            assert refused.status_code == 409
        assert (await _act(stack, second, "enable", only_id)).status_code == 200
        assert (await _act(stack, only, "delete", second_id)).status_code == 204
