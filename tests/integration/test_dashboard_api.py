"""The dashboard's server side on the management port (in-process stack, operator_stack.py): sign-in and its
cookie, the CSRF rule for cookie-authenticated changes, the pages' security headers, the static files, and
the feeds /alerts, /revenue, /settlements with their bad inputs."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import aiohttp
import pytest

from paychan_common.tx import OutPoint
from paychan_server.domain.settler import SettlementAlert
from paychan_server.operator.session import COOKIE, CSRF_HEADER
from tests.support.channels import TestChannel
from tests.support.stack import MGMT_TOKEN, Stack, exp_time


async def _raw(stack: Stack, method: str, path: str, **kw: Any) -> tuple[int, dict[str, str], str]:
    async with stack.session.request(method, stack.mgmt_url + path, allow_redirects=False, **kw) as r:
        return r.status, dict(r.headers), await r.text()


async def test_sign_in_sets_an_httponly_strict_cookie(stack: Stack) -> None:
    status, headers, _ = await _raw(stack, "GET", "/dashboard")
    assert status == 303 and headers["Location"] == "/login"
    status, headers, page = await _raw(stack, "GET", "/login")
    assert status == 200 and '<form method="post" action="/login">' in page
    assert "script-src 'self'" in headers["Content-Security-Policy"] and headers["X-Frame-Options"] == "DENY"
    status, headers, page = await _raw(stack, "POST", "/login", data={"token": "wrong"})
    assert status == 401 and "wrong token" in page and "Set-Cookie" not in headers
    status, headers, _ = await _raw(stack, "POST", "/login", data={"token": MGMT_TOKEN})
    assert status == 303 and headers["Location"] == "/dashboard"
    cookie = headers["Set-Cookie"]
    assert cookie.startswith(f"{COOKIE}={MGMT_TOKEN};") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    jar = {COOKIE: MGMT_TOKEN}
    status, headers, page = await _raw(stack, "GET", "/dashboard", cookies=jar)
    assert status == 200 and '<script src="/static/dashboard.js" defer></script>' in page
    assert headers["Cache-Control"] == "no-store"
    status, _, body = await _raw(stack, "GET", "/totals", cookies=jar)
    assert status == 200 and '"open_channels"' in body
    status, _, _ = await _raw(stack, "GET", "/totals", cookies={COOKIE: "wrong"})
    assert status == 401


async def test_sign_in_refuses_a_huge_body(stack: Stack) -> None:
    status, _, page = await _raw(stack, "POST", "/login", data={"token": "x" * 10_000})
    assert status == 413 and "too large" in page


async def test_cookie_changes_need_the_csrf_header(stack: Stack) -> None:
    ch = TestChannel(exp_time=exp_time())
    await stack.open_v23(ch)
    path = f"/channels/{ch.op.display_txid}/{ch.op.vout}/close"
    jar = {COOKIE: MGMT_TOKEN}
    status, _, body = await _raw(stack, "POST", path, cookies=jar)
    assert status == 401 and "unauthorized" in body  # what a cross-site form could send
    _, detail = await stack.mgmt("GET", f"/channels/{ch.op.display_txid}/{ch.op.vout}")
    assert detail["status"] == "open"
    status, _, body = await _raw(stack, "POST", path, cookies=jar, headers={CSRF_HEADER: "1"})
    assert status == 200, body
    status, headers, _ = await _raw(stack, "POST", "/logout", cookies=jar, headers={CSRF_HEADER: "1"})
    assert status == 200 and f'{COOKIE}=""' in headers["Set-Cookie"]


@pytest.mark.parametrize("name", ["dashboard.js", "dashboard.css"])
async def test_static_files_are_ours_and_open(stack: Stack, name: str) -> None:
    status, headers, text = await _raw(stack, "GET", f"/static/{name}")
    assert status == 200 and len(text) > 1000
    assert "http://" not in text.replace("http://www.w3.org/2000/svg", "") and "https://" not in text
    assert headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("path", ["/static/nope.js", "/static/..%2Fdashboard.py", "/static/dashboard.py"])
async def test_unknown_static_file_is_404(stack: Stack, path: str) -> None:
    status, _, _ = await _raw(stack, "GET", path)
    assert status == 404


@pytest.mark.parametrize(("path", "word"), [
    ("/revenue?hours=0", "hours"), ("/revenue?hours=745", "hours"), ("/revenue?hours=x", "hours"),
    ("/settlements?limit=0", "limit"), ("/settlements?limit=101", "limit")])
async def test_feeds_refuse_bad_parameters(stack: Stack, path: str, word: str) -> None:
    status, body = await stack.mgmt("GET", path)
    assert status == 400 and body["error"]["code"] == "invalid_input" and word in body["error"]["message"]


async def test_revenue_counts_value_at_the_latest_payment_hour(stack: Stack) -> None:
    a, b = TestChannel(exp_time=exp_time(5)), TestChannel(exp_time=exp_time(6))
    await stack.open_v23(a)
    change = await stack.open_v23(b)
    await stack.pay_v23(b, change - 5000)
    status, body = await stack.mgmt("GET", "/revenue?hours=3")
    assert status == 200 and body["hours"] == 3 and len(body["series"]) == 3
    assert body["series"][-1] == {**body["series"][-1], "value": 205_000, "channels": 2}
    assert body["total"] == 205_000 and body["series"][0]["value"] == 0
    assert body["series"][-1]["end"] - body["series"][0]["start"] == 3 * 3600


async def test_alerts_show_risk_and_the_settlers_alerts(stack: Stack) -> None:
    status, body = await stack.mgmt("GET", "/alerts")
    assert status == 200 and body["alerts"] == []
    opened = TestChannel(exp_time=exp_time())
    await stack.open_v23(opened)
    state = await stack.service.store.get(opened.op)
    # a stored channel about 5 h from expiry (the <12h bucket); opening one that soon is refused (spec 6.1)
    soon = replace(state, outpoint=OutPoint(b"\x22" * 32, 1), exp_time=exp_time(5 / 24),
                   client_pubkey=TestChannel(exp_time=exp_time()).key.public_key.data)
    await stack.service.store.create(soon)
    settler = stack.service.settler
    op = OutPoint(b"\x11" * 32, 3)
    settler._alerts[(op.serialize(), "refused")] = SettlementAlert(op, "refused", "ALERT channel x: refused", 7)
    codes: dict[str, Any] = {}
    for _ in range(100):  # /alerts reuses a totals scan for up to REVENUE_MAX_AGE seconds
        _, body = await stack.mgmt("GET", "/alerts")
        codes = {a["code"]: a for a in body["alerts"]}
        if "value_at_risk_soon" in codes:
            break
        await asyncio.sleep(0.05)
    assert codes["settlement_refused"]["channel_id"] == f"{op.display_txid}:3"
    assert codes["settlement_refused"]["severity"] == "critical"
    risk = codes["value_at_risk_soon"]
    assert risk["severity"] == "warning" and "1 open or closing channel(s) with 100000 sat" in risk["message"]
    settler._forget(op)
    _, body = await stack.mgmt("GET", "/alerts")
    assert "settlement_refused" not in {a["code"] for a in body["alerts"]}


async def test_settlements_in_flight(stack: Stack) -> None:
    status, body = await stack.mgmt("GET", "/settlements")
    assert status == 200 and body == {"settlements": [], "count": 0, "more": False,
                                      "confirmations_required": stack.cfg.settlement.confirmations}


async def test_bearer_header_still_works_everywhere(stack: Stack) -> None:
    for path in ("/alerts", "/revenue", "/settlements", "/dashboard"):
        status, _ = await stack.mgmt("GET", path)
        assert status == 200, path
    async with aiohttp.ClientSession() as s, s.get(stack.mgmt_url + "/alerts") as r:
        assert r.status == 401
