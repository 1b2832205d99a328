"""`orderflow run` as a user meets it: everything through the gateway's public port."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import httpx

from tests.support.system import System, free_port, order_body

ADMIN_LINE = re.compile(r"Demo admin \(shown once\):\s+(\S+) / (\S+)")


def login(client: httpx.Client, email: str, password: str) -> str:
    response = client.post("/auth/token", data={"username": email, "password": password})
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def test_a_customer_signs_up_orders_and_sees_it_confirmed(tmp_path: Path) -> None:
    system = System(tmp_path / "data", env={"ORDERFLOW_LOG_LEVEL": "INFO"})
    system.start()
    try:
        with httpx.Client(base_url=system.public_url, timeout=10) as client:
            registered = client.post(
                "/auth/register",
                json={"email": "ada@example.com", "password": "correct horse", "name": "Ada"},
            )
            assert registered.status_code in (201, 202), registered.text
            auth = {"Authorization": f"Bearer {login(client, 'ada@example.com', 'correct horse')}"}

            placed = client.post(
                "/api/v1/orders",
                json=order_body([("MUG-WHT", 2)]),
                headers={**auth, "X-Request-Id": "trace-me-0042"},
            )
            assert placed.status_code == 202, placed.text
            assert placed.headers["X-Request-Id"] == "trace-me-0042"
            order_id = placed.json()["id"]
            deadline = time.monotonic() + 30
            while (order := client.get(f"/api/v1/orders/{order_id}", headers=auth).json())[
                "status"
            ] != "confirmed":
                assert time.monotonic() < deadline, order
                time.sleep(0.2)
            assert [e["status"] for e in order["timeline"]] == [
                "pending",
                "reserved",
                "paid",
                "confirmed",
            ]
            assert client.get("/api/v1/orders", headers=auth).json()["items"][0]["id"] == order_id

            # Without a token the gateway refuses; the API's own port refuses anyone unsigned.
            assert client.get("/api/v1/orders").status_code == 401
            assert httpx.get(f"{system.url}/api/v1/orders", headers=auth).status_code == 401

            # The demo admin, whose password the first start printed once, sees every order.
            match = ADMIN_LINE.search(system.logs())
            assert match, system.logs()
            admin = {"Authorization": f"Bearer {login(client, *match.groups())}"}
            assert client.get(f"/api/v1/orders/{order_id}", headers=admin).status_code == 200
    finally:
        system.stop()
    # The request id is logged on both sides of the gateway, with the order id on the API's line.
    traced = [
        json.loads(line) for line in system.logs_all().splitlines() if "trace-me-0042" in line
    ]
    assert {entry["service"] for entry in traced} >= {"gateway", "api"}, traced
    assert any(entry.get("order_id") == order_id for entry in traced), traced

    system.start()  # a second start keeps the admin and does not print a password again
    try:
        assert not ADMIN_LINE.search(system.logs())
    finally:
        system.stop()


def test_the_api_docs_work_through_the_gateway_with_nothing_from_elsewhere(tmp_path: Path) -> None:
    """/docs under the gateway's 'self'-only policy: every script and stylesheet it references is
    same-origin, answers 200 with its content type, and there is no inline script to refuse."""
    system = System(tmp_path / "data", env={"ORDERFLOW_STREAM_PORT": str(free_port())})
    system.start(timeout=120)
    try:
        with httpx.Client(base_url=system.public_url, timeout=30) as client:
            page = client.get("/docs")
            assert page.status_code == 200
            assert page.headers["content-type"].startswith("text/html")
            csp = page.headers["content-security-policy"]
            assert "default-src 'self'" in csp
            assert "unsafe-inline" not in csp
            scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page.text, re.DOTALL)
            assert scripts
            assert all(body.strip() == "" for _, body in scripts)
            script_urls = re.findall(r'<script src="([^"]+)"></script>', page.text)
            assert len(script_urls) == len(scripts)
            styles = re.findall(r'<link rel="stylesheet" href="([^"]+)"', page.text)
            assert styles
            expected = dict.fromkeys(script_urls, "text/javascript")
            expected.update({url: "text/css" for url in styles})
            for url, content_type in expected.items():
                assert re.match(r"/[^/]", url), url  # a path on the same origin
                asset = client.get(url)
                assert asset.status_code == 200, url
                assert asset.headers["content-type"].split(";")[0] == content_type, url
            assert "SwaggerUIBundle(" in client.get(script_urls[-1]).text
            assert "http://" not in page.text
            assert "https://" not in page.text

            spec = client.get("/openapi.json")
            assert spec.status_code == 200
            document = json.loads(spec.content)
            assert document["openapi"].startswith("3.")
            assert "/api/v1/orders" in document["paths"]
    finally:
        system.stop()
