"""The operator's dashboard in a real browser (Debian's chromium, driven by Playwright) against the real
three services in debug mode: sign in, watch a channel open and a payment arrive live, filter, open the
channel's page, close it by hand and see it settle. Screenshots: test-artifacts/ (always the live-payment
view; every page on failure). `PAYCHAN_UPDATE_SCREENSHOT=1` also writes docs/img/dashboard.png."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright import sync_api as playwright_sync

from tests.support.channels import TestChannel
from tests.support.plugin import ServicesFactory
from tests.support.ports import reserve_port
from tests.support.services import PROJECT_ROOT, Services, now

log = logging.getLogger("paychan.tests")
pytestmark = pytest.mark.functional

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = PROJECT_ROOT / "test-artifacts"
TIMEOUT_MS = 15_000



@pytest.fixture
def dashboard_services(services_factory: ServicesFactory, tmp_path: Path) -> Services:
    """The debug stack with the management API on a reserved port (the page polls every 300 ms in the test)."""
    mport = reserve_port()
    svc = services_factory(start=False, server={"management": {
        "enable": True, "host": "127.0.0.1", "port": mport, "token_file": str(tmp_path / "svc" / "management.token"),
        "totals_max_age_seconds": 0}, "settlement": {"confirmations": 1}})
    svc.mgmt_url = f"http://127.0.0.1:{mport}"  # type: ignore[attr-defined]
    return svc.start()


@pytest.fixture
def browser() -> Iterator[object]:
    """Headless chromium from Debian's package (never a browser downloaded by Playwright)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} missing: scripts/bootstrap.sh installs Debian's chromium")
    with playwright_sync.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def _pay(svc: Services, ch: TestChannel, secret: str, change: int) -> None:
    r = httpx.put(svc.url + ch.v23_url, params={"secret": secret}, json=ch.v23_compact(change), timeout=10)
    assert r.status_code == 200, r.text


def test_dashboard_live_in_chromium(dashboard_services: Services, browser: object, tmp_path: Path) -> None:
    svc = dashboard_services
    mgmt: str = svc.mgmt_url  # type: ignore[attr-defined]
    token = (svc.root / "management.token").read_text().strip()
    context = browser.new_context(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    expect = playwright_sync.expect
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        log.info("an unauthenticated visit lands on the sign-in page; a wrong token is refused")
        page.goto(mgmt + "/dashboard?poll=300")
        assert page.url.endswith("/login")
        page.fill("#token", "not-the-token")
        page.click("button[type=submit]")
        expect(page.locator(".error")).to_have_text("wrong token")
        page.fill("#token", token)
        page.click("button[type=submit]")
        page.wait_for_url("**/dashboard")
        page.goto(mgmt + "/dashboard?poll=300")
        cookie = next(c for c in context.cookies() if c["name"] == "paychan_mgmt")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert page.evaluate("document.cookie") == ""  # not readable by scripts
        expect(page.get_by_test_id("open-channels")).to_have_text("0")
        expect(page.get_by_test_id("live")).to_contain_text("live")

        log.info("a channel opens: its row and the totals appear without a reload")
        ch = TestChannel(exp_time=now() + 5 * 86400)
        change = ch.funding_value - 100_000
        secret = ch.secret(change)
        r = httpx.post(svc.url + ch.v23_url, params={"secret": secret}, json=ch.v23_full(change), timeout=10)
        assert r.status_code == 201, r.text
        row = page.locator(f'tr[data-channel="{ch.op.display_txid}:{ch.op.vout}"]')
        expect(row).to_have_attribute("data-status", "open")
        expect(page.get_by_test_id("open-channels")).to_have_text("1")
        expect(row.get_by_test_id("received")).to_have_text("100,000 sat")

        log.info("a payment arrives: the row, the unsettled total and the risk chart follow live")
        change -= 2_500
        _pay(svc, ch, secret, change)
        expect(row.get_by_test_id("received")).to_have_text("102,500 sat")
        expect(row.get_by_test_id("payments")).to_have_text("2")
        expect(page.get_by_test_id("unsettled")).to_have_text("102,500 sat")
        expect(page.get_by_test_id("revenue-24h")).to_have_text("102,500 sat")
        expect(page.locator('#risk-chart g[data-label="2-7d"]')).to_have_attribute("data-value", "102500")
        page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
        if os.environ.get("PAYCHAN_UPDATE_SCREENSHOT") == "1":
            shutil.copy(ARTIFACTS / "dashboard.png", PROJECT_ROOT / "docs" / "img" / "dashboard.png")

        log.info("filters: closed hides it, open shows it, another client's key hides it, a bad filter says why")
        other = TestChannel(exp_time=now() + 9 * 86400)
        page.select_option("[data-testid=filter-status]", "closed")
        page.click("[data-testid=filter-apply]")
        expect(row).to_have_count(0)
        page.select_option("[data-testid=filter-status]", "open")
        page.click("[data-testid=filter-apply]")
        expect(row).to_have_count(1)
        page.fill("[data-testid=filter-client]", other.pk)
        page.click("[data-testid=filter-apply]")
        expect(row).to_have_count(0)
        page.fill("[data-testid=filter-client]", ch.pk)
        page.fill("[data-testid=filter-expiring]", "24")
        page.click("[data-testid=filter-apply]")
        expect(row).to_have_count(0)  # it expires in 5 days
        page.fill("[data-testid=filter-client]", "zz")
        page.click("[data-testid=filter-apply]")
        expect(page.get_by_test_id("filter-error")).to_contain_text("public key must be")
        page.fill("[data-testid=filter-client]", "")
        page.fill("[data-testid=filter-expiring]", "")
        page.select_option("[data-testid=filter-status]", "")
        page.click("[data-testid=filter-apply]")
        expect(row).to_have_count(1)

        log.info("the channel's page: its payments, then a manual close that settles")
        row.get_by_test_id("channel-link").click()
        expect(page.get_by_test_id("channel-id")).to_have_text(f"{ch.op.display_txid}:{ch.op.vout}")
        expect(page.get_by_test_id("channel-payment-count")).to_have_text("2")
        expect(page.get_by_test_id("channel-received")).to_have_text("102,500 sat")
        expect(page.get_by_test_id("channel-status")).to_have_text("open")
        expect(page.get_by_test_id("channel-settlements")).to_contain_text("no settlement yet")
        change -= 1_000
        _pay(svc, ch, secret, change)
        expect(page.get_by_test_id("channel-payment-count")).to_have_text("3")
        page.once("dialog", lambda dialog: dialog.accept())
        page.get_by_test_id("close-channel").click()
        expect(page.get_by_test_id("channel-status")).to_have_text("closed")
        detail = httpx.get(f"{mgmt}/channels/{ch.op.display_txid}/{ch.op.vout}",
                           headers={"Authorization": f"Bearer {token}"}, timeout=10).json()
        assert detail["status"] == "closed" and len(detail["settlement_txid"]) == 64
        expect(page.get_by_test_id("settlement-txid")).to_have_text(detail["settlement_txid"])
        expect(page.get_by_test_id("close-result")).to_contain_text(detail["settlement_txid"])
        expect(page.get_by_test_id("close-channel")).to_be_hidden()

        log.info("back on the overview: nothing open, one closed; signing out ends the session")
        page.click("text=← all channels")
        expect(page.get_by_test_id("open-channels")).to_have_text("0")
        expect(page.get_by_test_id("closed-channels")).to_have_text("1")
        page.click("#signout")
        page.wait_for_url("**/login")
        assert httpx.get(mgmt + "/totals", cookies={"paychan_mgmt": "wrong"}).status_code == 401
    except BaseException:
        for target in (tmp_path / "failure.png", ARTIFACTS / "dashboard-failure.png"):
            page.screenshot(path=str(target), full_page=True)
        log.error("screenshots kept: %s and %s\n%s", tmp_path / "failure.png", ARTIFACTS, svc.logs())
        raise
    finally:
        context.close()
