"""API keys: admin-only lifecycle, shown once, scoped, revocable, both header forms."""

from __future__ import annotations

import pytest

from tests.gateway.gateway_harness import Stack, admin, bearer, customer

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def _new_key(stack: Stack, root: dict[str, str], scopes: list[str]) -> dict[str, str]:
    response = await stack.client.post(
        "/auth/api-keys", headers=bearer(root), json={"name": "shop sync", "scopes": scopes}
    )
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    key: dict[str, str] = response.json()
    return key


async def test_lifecycle(stack: Stack) -> None:
    root = await admin(stack.client, stack.settings, stack.gw, "keys-admin@example.com")
    created = await _new_key(stack, root, ["orders:read"])
    secret = created["key"]
    assert secret.startswith("ofk_")

    listed = (await stack.client.get("/auth/api-keys", headers=bearer(root))).json()["items"]
    mine = next(item for item in listed if item["id"] == created["id"])
    assert "key" not in mine
    assert secret not in str(listed)
    assert mine["scopes"] == ["orders:read"]

    for headers in ({"X-API-Key": secret}, {"Authorization": f"Bearer {secret}"}):
        response = await stack.client.get("/api/orders", headers=headers)
        assert response.status_code == 200
        assert response.json()["identity"] == {
            "subject": created["id"],
            "roles": [],
            "scopes": ["orders:read"],
            "email": None,
        }
    me = await stack.client.get("/auth/me", headers={"X-API-Key": secret})
    assert me.json() == {"id": created["id"], "kind": "api_key", "scopes": ["orders:read"]}

    revoked = await stack.client.delete(f"/auth/api-keys/{created['id']}", headers=bearer(root))
    assert revoked.status_code == 204
    after = await stack.client.get("/api/orders", headers={"X-API-Key": secret})
    assert after.status_code == 401
    assert after.json()["reason"] == "invalid_api_key"
    listed = (await stack.client.get("/auth/api-keys", headers=bearer(root))).json()["items"]
    assert next(i for i in listed if i["id"] == created["id"])["revoked_at"] is not None
    again = await stack.client.delete(f"/auth/api-keys/{created['id']}", headers=bearer(root))
    assert again.status_code == 204
    missing = await stack.client.delete("/auth/api-keys/nope", headers=bearer(root))
    assert missing.status_code == 404


async def test_scopes_limit_what_a_key_reaches(stack: Stack) -> None:
    root = await admin(stack.client, stack.settings, stack.gw, "scope-admin@example.com")
    unscoped = (await _new_key(stack, root, ["reports:read"]))["key"]
    # /api requires orders:read; /admin is role-guarded and names no scopes for keys.
    assert (await stack.client.get("/api/x", headers={"X-API-Key": unscoped})).status_code == 403
    scoped = (await _new_key(stack, root, ["orders:read"]))["key"]
    admin_page = await stack.client.get("/admin/page", headers={"X-API-Key": scoped})
    assert admin_page.status_code == 403
    # A key cannot manage keys, whatever its scopes.
    assert (
        await stack.client.get("/auth/api-keys", headers={"X-API-Key": scoped})
    ).status_code == 403


async def test_only_admin_users_manage_keys(stack: Stack) -> None:
    tokens = await customer(stack.client, "keys-customer@example.com")
    for method, path in (("GET", "/auth/api-keys"), ("DELETE", "/auth/api-keys/x")):
        response = await stack.client.request(method, path, headers=bearer(tokens))
        assert response.status_code == 403
    create = await stack.client.post(
        "/auth/api-keys", headers=bearer(tokens), json={"name": "n", "scopes": []}
    )
    assert create.status_code == 403
    assert (await stack.client.get("/auth/api-keys")).status_code == 401


async def test_bad_keys_and_bad_requests(stack: Stack) -> None:
    root = await admin(stack.client, stack.settings, stack.gw, "bad-admin@example.com")
    secret = (await _new_key(stack, root, ["orders:read"]))["key"]
    key_id, _, _ = secret.removeprefix("ofk_").partition(".")
    for wrong in (f"ofk_{key_id}.wrong-secret", "ofk_garbage", f"ofk_{key_id}."):
        response = await stack.client.get("/api/x", headers={"X-API-Key": wrong})
        assert response.status_code == 401
    both = await stack.client.get(
        "/api/x", headers={"X-API-Key": secret, "Authorization": f"Bearer {secret}"}
    )
    assert both.status_code == 400
    assert both.json()["reason"] == "ambiguous_credentials"
    invalid = await stack.client.post(
        "/auth/api-keys", headers=bearer(root), json={"name": "n", "scopes": ["Bad Scope"]}
    )
    assert invalid.status_code == 422
