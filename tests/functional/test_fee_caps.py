"""The SigningService's policy against a compromised or misconfigured PayChanServer (spec 8.6), on real
processes in debug mode: PayChanServer refuses to start when its fee cap can exceed the signer's max_fee,
and the signer's memory of what it signed survives SIGKILL."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import tomli_w

from tests.integration.test_signing_service import CLOSING_CHANGE, FEE, sign_request
from tests.support.regtest import wait_for
from tests.support.services import Service, Services, deep_merge


def start_signer(svc: Services) -> None:
    """Start the SigningService and wait for /health."""
    svc.signer.start()
    wait_for(lambda: _up(f"http://127.0.0.1:{svc.signer_port}/health"), timeout=60, description="signer")


def _up(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_paychan_server_refuses_to_start_with_a_fee_cap_above_the_signers(tmp_path: Path) -> None:
    svc = Services(tmp_path, signing={"settlement": {"max_fee": 15_000}})
    cases = [({"max_fee_rate_sat_per_byte": 100}, "settlement.max_fee_rate_sat_per_byte: 100 sat/byte x 367 bytes"),
             ({"max_fee_rate_sat_per_byte": 40, "bump_max_fee": 20_000}, "settlement.bump_max_fee: 20000 sat exceeds")]
    try:
        svc.start_store()
        start_signer(svc)
        for settlement, needle in cases:
            path = tmp_path / "server-caps.toml"
            path.write_text(tomli_w.dumps(deep_merge(svc.configs["server"], {"settlement": settlement})))
            server = Service("paychan_server_caps", "paychan_server", path, tmp_path)
            server.start()
            assert server.proc is not None
            assert server.proc.wait(timeout=60) != 0
            text = server.tail(200)
            assert "refusing to start" in text and needle in text and "max_fee of 15000 sat" in text
            assert not _up(svc.url + "/health")
            server.logfile.unlink()
        ok = tmp_path / "server-ok.toml"
        ok.write_text(tomli_w.dumps(deep_merge(svc.configs["server"], {"settlement": {
            "max_fee_rate_sat_per_byte": 40, "bump_max_fee": 15_000}})))
        server = Service("paychan_server_ok", "paychan_server", ok, tmp_path)
        server.start()
        try:
            wait_for(lambda: _up(svc.url + "/health"), timeout=60, description="server within the caps")
            assert "fee caps within the SigningService's max_fee 15000 sat" in server.tail(200)
        finally:
            server.stop()
    finally:
        svc.stop()


def test_the_signer_remembers_across_sigkill(tmp_path: Path) -> None:
    svc = Services(tmp_path)
    try:
        svc.start_store()
        start_signer(svc)
        url = f"http://127.0.0.1:{svc.signer_port}/sign_settlement"
        auth = {"Authorization": "Bearer " + svc.token}
        newer = sign_request(change_value=CLOSING_CHANGE - 50_000, fee=FEE + 1_000)
        assert httpx.post(url, json=newer, headers=auth, timeout=10).status_code == 200
        svc.signer.kill(signal.SIGKILL)
        start_signer(svc)
        older = httpx.post(url, json=sign_request(), headers=auth, timeout=10)
        assert older.status_code == 403 and older.json()["error"]["code"] == "older_state"
        cheaper = httpx.post(url, json=sign_request(change_value=CLOSING_CHANGE - 50_000), headers=auth, timeout=10)
        assert cheaper.status_code == 403 and cheaper.json()["error"]["code"] == "lower_fee_rate"
        assert httpx.post(url, json=newer, headers=auth, timeout=10).status_code == 200, "the same again is fine"
    finally:
        svc.stop()
