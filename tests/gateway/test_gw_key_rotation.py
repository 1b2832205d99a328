"""Access-token key rotation through the JWKS kid, in a running gateway."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

import jwt

from orderflow.bootstrap import rotate_gateway_key
from tests.gateway.gateway_harness import bearer, build_stack, customer, login


async def test_rotation_signs_with_the_new_key_and_retiring_refuses_the_old(
    tmp_path: Path,
) -> None:
    async with build_stack(tmp_path) as stack:
        old = await customer(stack.client, "rot@example.com")
        old_kid = jwt.get_unverified_header(old["access_token"])["kid"]

        new_kid = rotate_gateway_key(stack.settings, stack.gw)
        await asyncio.sleep(1.1)  # the gateway re-reads its JWKS at most once a second
        jwks = (await stack.client.get("/.well-known/jwks.json")).json()
        assert {k["kid"] for k in jwks["keys"]} == {old_kid, new_kid}
        new = await login(stack.client, "rot@example.com")
        assert jwt.get_unverified_header(new["access_token"])["kid"] == new_kid
        for tokens in (old, new):
            assert (await stack.client.get("/api/x", headers=bearer(tokens))).status_code == 200

        # Retiring the old key (dropping it from the JWKS) refuses what it signed, even though
        # the gateway had that token's verification cached.
        path = stack.gw.access_keys_dir / "identity.jwks.json"
        document = json.loads(path.read_text())
        document["keys"] = [k for k in document["keys"] if k["kid"] != old_kid]
        path.write_text(json.dumps(document))
        later = time.time() + 5
        os.utime(path, (later, later))
        await asyncio.sleep(1.1)
        assert (await stack.client.get("/auth/me", headers=bearer(old))).status_code == 401
        assert (await stack.client.get("/auth/me", headers=bearer(new))).status_code == 200
