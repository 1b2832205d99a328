"""The storefront in a real browser (the system's Chromium, driven by Playwright), through the
gateway of `orderflow run`: sign up, order, watch the status change live, a declined card,
cancel; at 1280 and 390 px wide. Screenshots of each step go to test-artifacts/screenshots/."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright import sync_api

from tests.support.system import System, free_port

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

if not Path(CHROMIUM).exists() or shutil.which("chromium") is None:
    if os.environ.get("CI") == "true":
        pytest.fail("CI needs the system Chromium (make test installs it with apt-get)")
    pytest.skip("no system Chromium (apt-get install chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("storefront")
    system = System(root / "data", env={"ORDERFLOW_STREAM_PORT": str(free_port())})
    system.start()
    try:
        yield system.public_url
    finally:
        system.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        launched.close()


@pytest.mark.parametrize("width", [1280, 390])
def test_a_shopper_orders_and_watches_it_confirm_then_a_decline_and_a_cancel(
    shop: str, browser: object, width: int
) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": width, "height": 900})  # type: ignore[attr-defined]
    step = 0

    def shot(name: str) -> None:
        nonlocal step
        step += 1
        page.screenshot(path=str(SHOTS / f"{width}px-{step:02d}-{name}.png"), full_page=True)

    page.goto(shop + "/")
    shot("start")
    page.get_by_label("Email").fill(f"shopper-{uuid.uuid4().hex[:8]}@example.com")
    page.get_by_label("Password (at least 8 characters)").fill("correct horse battery")
    page.get_by_label("Name (to create an account)").fill("Ada")
    page.get_by_role("button", name="Create account").click()
    page.get_by_role("heading", name="Products").wait_for()
    shot("signed-in")

    def order(card: str) -> None:
        page.get_by_role("button", name="Add White mug to cart").click()
        page.get_by_label("Full name").fill("Ada Lovelace")
        page.get_by_label("Street and number").fill("12 Analytical St")
        page.get_by_label("City").fill("London")
        page.get_by_label("Postal code").fill("N1 9GU")
        page.get_by_label("Test card").select_option(card)
        shot(f"cart-{card}")
        page.get_by_role("button", name="Place order").click()

    order("tok_visa")
    status = page.locator("#order-status")
    # Live: the page is never reloaded; the status reaches confirmed through the stream.
    sync_api.expect(status).to_have_attribute("data-status", "confirmed", timeout=30_000)
    sync_api.expect(page.locator("#order-timeline li")).to_have_count(4)
    shot("confirmed")

    order("tok_decline")
    sync_api.expect(status).to_have_attribute("data-status", "payment_failed", timeout=30_000)
    sync_api.expect(page.locator("#order-reason")).to_contain_text("declined")
    shot("declined")

    page.get_by_role("button", name="Cancel this order").wait_for(state="hidden")
    page.locator("#orders button").nth(1).click()  # the confirmed one (newest first)
    sync_api.expect(status).to_have_attribute("data-status", "confirmed")
    page.get_by_role("button", name="Cancel this order").click()
    sync_api.expect(status).to_have_attribute("data-status", "cancelled", timeout=30_000)
    shot("cancelled")
    assert "problem+json" not in page.content()
    page.close()
