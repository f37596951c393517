"""The operator's view of the real 3-process stack (debug mode, PayChanServer with 2 workers): the value
callback to a real HTTP application, the management API, /metrics of every service (the 2 workers'
counters merged), /docs, and structured logs (key=value and JSON) without a token, key or signature."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.channels import TestChannel
from tests.support.plugin import ServicesFactory
from tests.support.ports import reserve_port
from tests.support.regtest import wait_for
from tests.support.services import Services, now, wait_until

log = logging.getLogger("paychan.tests")
pytestmark = pytest.mark.functional


class _App(BaseHTTPRequestHandler):
    """The application behind the server: `/value_received` answers a receipt."""

    calls: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).calls.append(body)
        answer = json.dumps({"app_data": f"receipt-{body['amount']}"}).encode()
        self.send_response(200 if self.path == "/value_received" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
        """Quiet."""


@pytest.fixture
def application() -> Iterator[str]:
    """The application on a free port, in a thread; yields its base URL."""
    _App.calls = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _App)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def operator_services(tmp_path: Path, application: str, services_factory: ServicesFactory) -> Services:
    """The stack with management, callback, 2 server workers and JSON logs for ChanStore."""
    root = tmp_path / "svc"
    mport = reserve_port()
    svc = services_factory(start=False, server={
        "listen": {"workers": 2},
        "management": {"enable": True, "port": mport, "token_file": str(root / "management.token"),
                       "metrics_token_file": str(root / "metrics.token"), "totals_max_age_seconds": 0},
        "callback": {"enable": True, "url": application, "timeout_seconds": 2.0},
    }, store={"log_format": "json"})
    svc.mgmt_url = f"http://127.0.0.1:{mport}"  # type: ignore[attr-defined]
    svc.start()

    def management_up() -> bool:  # /health may come from worker 1 before worker 0 serves management
        try:
            return httpx.get(f"http://127.0.0.1:{mport}/totals", timeout=1.0).status_code == 401
        except httpx.HTTPError:
            return False

    wait_for(management_up, timeout=30, description="management API of worker 0")
    return svc


def _metrics(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {(s.name, frozenset(s.labels.items())): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def test_operator_view(operator_services: Services) -> None:
    svc = operator_services
    mgmt: str = svc.mgmt_url  # type: ignore[attr-defined]
    token = (svc.root / "management.token").read_text().strip()
    scraper = (svc.root / "metrics.token").read_text().strip()
    auth = {"Authorization": f"Bearer {token}"}

    log.info("open a v2.3.0 channel and pay 6 times; each answer carries the application's receipt")
    ch = TestChannel(exp_time=now() + 5 * 86400)
    change = ch.funding_value - 100_000
    secret = ch.secret(change)
    r = httpx.post(svc.url + ch.v23_url, params={"secret": secret}, json=ch.v23_full(change))
    assert r.status_code == 201, r.text
    signatures = [ch.sign(change).der.hex()]
    for i in range(1, 7):
        change -= 1000 * i
        r = httpx.put(svc.url + ch.v23_url, params={"secret": secret}, json=ch.v23_compact(change))
        assert r.status_code == 200, r.text
        assert r.json()["application_data"] == f"receipt-{1000 * i}"
        signatures.append(ch.sign(change).der.hex())
    assert [c["amount"] for c in _App.calls] == [1000 * i for i in range(1, 7)]

    log.info("management API: auth, list, detail, totals")
    assert httpx.get(mgmt + "/channels").status_code == 401
    listed = httpx.get(mgmt + "/channels", params={"status": "open"}, headers=auth).json()
    assert [c["sender"] for c in listed["channels"]] == [ch.pk]
    detail = httpx.get(f"{mgmt}/channels/{ch.op.display_txid}/{ch.op.vout}", headers=auth).json()
    assert detail["payment_count"] == 7 and detail["value_received"] == 121_000
    totals = httpx.get(mgmt + "/totals", headers=auth).json()
    risk = {b["hours_to_expiry"]: b["value"] for b in totals["value_at_risk"]}
    assert totals["open_channels"] == 1 and risk["2-7d"] == 121_000

    log.info("/metrics with the read-only scraper token: both workers' payments are counted")
    assert httpx.get(mgmt + "/totals", headers={"Authorization": f"Bearer {scraper}"}).status_code == 401
    pay_key = ("paychan_payments_total", frozenset({("kind", "pay"), ("family", "v2.3.0")}))

    def scrape() -> str:
        return httpx.get(mgmt + "/metrics", headers={"Authorization": f"Bearer {scraper}"}).text

    # The other worker applies its counts at most 1 s late (paychan_runtime.metrics.DeferredUpdates).
    wait_until(lambda: _metrics(scrape()).get(pay_key) == 6, timeout=10)
    text = scrape()
    assert "process_cpu_seconds_total" not in text  # multiprocess mode: the workers' files are merged
    m = _metrics(text)
    assert m[("paychan_payments_total", frozenset({("kind", "pay"), ("family", "v2.3.0")}))] == 6
    assert m[("paychan_value_received_satoshis_total", frozenset({("kind", "pay"), ("family", "v2.3.0")}))] == 21_000
    assert m[("paychan_value_at_risk_satoshis", frozenset({("hours_to_expiry", "2-7d")}))] == 121_000
    assert m[("paychan_callback_calls_total", frozenset({("outcome", "ok")}))] == 6

    log.info("manual close through the management API; the SigningService counts the signature")
    closed = httpx.post(f"{mgmt}/channels/{ch.op.display_txid}/{ch.op.vout}/close", headers=auth, timeout=30)
    assert closed.status_code == 200, closed.text
    assert len(closed.json()["settlement_txid"]) == 64
    signer = _metrics(httpx.get(f"http://127.0.0.1:{svc.signer_port}/metrics").text)
    assert signer[("paychan_signatures_total", frozenset())] == 1
    store = _metrics(httpx.get(f"http://127.0.0.1:{svc.store_port}/metrics").text)
    assert store[("chanstore_commit_duration_seconds_count", frozenset())] >= 8
    assert store[("chanstore_engine_write_batches_count", frozenset())] >= 1

    log.info("the docs page is served by the public port")
    docs = httpx.get(svc.url + "/docs")
    assert docs.status_code == 200 and "/v2/channels/{txid}/{vout}" in docs.text

    svc.stop()
    log.info("logs: key=value for the server, JSON for ChanStore; no token, key or signature anywhere")
    server_lines = svc.server.logfile.read_text().splitlines()
    assert server_lines and all(line.startswith("ts=") for line in server_lines if line.strip())
    assert any("route=/v2/funding" in line or "logger=paychan.access" in line for line in server_lines)
    store_lines = [json.loads(line) for line in svc.store.logfile.read_text().splitlines() if line.strip()]
    assert store_lines and all({"ts", "level", "logger", "msg"} <= set(entry) for entry in store_lines)
    everything = "\n".join(s.logfile.read_text() for s in (svc.server, svc.store, svc.signer))
    for secret_text in (token, scraper, svc.token, ch.key.secret.hex(), secret, *signatures):
        assert secret_text not in everything
