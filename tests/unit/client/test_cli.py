"""The paychan-client CLI: keygen as a subprocess; whole flows in-process on fake server and node."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from paychan_client import ChannelDraft, ClientChannel, load_any
from paychan_client.cli import main
from paychan_client.models import Family, parse_family
from paychan_common.address import Address
from paychan_common.channel import ChannelParams, PaymentVerifier
from paychan_common.keys import PrivateKey
from paychan_common.payment import Payment
from paychan_common.wire_v1 import parse_v1_payload
from paychan_common.wire_v2 import parse_v2_payment

from .vectors import (
    CLIENT_KEY,
    ENDPOINT,
    EXP,
    FUNDING_ADDRESS,
    NETWORK,
    OUTPOINT,
    REFUND_ADDRESS,
    REFUND_TX,
    REFUND_TXID,
    SERVER_PUBKEY,
    SETTLEMENT_TXID,
    TXID,
    VALUE,
    VOUT,
    funding_info_body,
    result,
)

SRC = Path(__file__).resolve().parents[3] / "src"


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    return subprocess.run([sys.executable, "-m", "paychan_client", *args], capture_output=True, text=True,
                          env=env, timeout=60, check=False)


def lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def test_keygen_subprocess_prints_a_key(tmp_path: Path) -> None:
    state = tmp_path / "chan.json"
    proc = run_cli("keygen", "--state", str(state), "--network", "regtest", "--family", "v2.3")
    assert proc.returncode == 0, proc.stderr
    [out] = lines(proc.stdout)
    pk = out["client_pubkey"]
    assert len(pk) == 66 and pk[:2] in ("02", "03")
    assert stat.S_IMODE(state.stat().st_mode) == 0o600
    draft = load_any(state)
    assert isinstance(draft, ChannelDraft)
    assert draft.client_key.public_key.hex == pk and draft.family is Family.V2_3
    assert out["refund_address"].startswith(("m", "n"))

    again = run_cli("keygen", "--state", str(state))
    assert again.returncode == 2
    assert again.stderr.count("\n") == 1 and "exists" in again.stderr and "Traceback" not in again.stderr


@pytest.mark.parametrize(("choice", "family"), [("v1", Family.V1), ("v2-seed", Family.V2_SEED), ("v2", Family.V2_SEED),
                                               ("v2.3.0", Family.V2_3), ("v2.3", Family.V2_3)])
def test_every_family_choice_is_accepted(tmp_path: Path, capsys: pytest.CaptureFixture[str], choice: str,
                                         family: Family) -> None:
    state = tmp_path / "chan.json"
    assert main(["keygen", "--state", str(state), "--network", "regtest", "--family", choice]) == 0
    [out] = lines(capsys.readouterr().out)
    assert out["family"] == family.label
    draft = load_any(state)
    assert draft.family is family
    assert main(["status", "--state", str(state), "--family", choice]) == 2  # past the family check: a draft
    assert "no funding info yet" in capsys.readouterr().err
    other = "v1" if family is not Family.V1 else "v2"
    assert main(["status", "--state", str(state), "--family", other]) == 2
    assert f"state file is for route family {family.label}" in capsys.readouterr().err


def test_errors_are_one_line_with_exit_code_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--state", str(tmp_path / "absent.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "does not exist" in err
    assert main(["pay", "--state", str(tmp_path / "x.json")]) == 2  # missing --amount
    assert capsys.readouterr().err.count("\n") == 1
    assert main(["frobnicate"]) == 2


class FakeServer:
    """A fake RBPCP server for vector B's channel that verifies every client signature with the core."""

    def __init__(self, family: str) -> None:
        self.family = family
        self.params = ChannelParams(CLIENT_KEY.public_key, SERVER_PUBKEY, EXP, NETWORK)
        self.verifier = PaymentVerifier(CLIENT_KEY.public_key, OUTPOINT, self.params.redeem_script)
        self.change = VALUE
        self.change_address = FUNDING_ADDRESS
        self.seen: list[str] = []

    def _verify(self, payment: Payment, address: str) -> int:
        self.verifier.verify(payment.signature, payment.change_value, Address.parse(address, NETWORK).script_pubkey)
        received = self.change - payment.change_value
        self.change = payment.change_value
        return received

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.seen.append(f"{request.method} {request.url.path}")
        path, method = request.url.path, request.method
        if method == "GET":
            return httpx.Response(200, json=funding_info_body(self.family))
        if self.family == "v1":
            payment = parse_v1_payload(request.url.params["payment"])
            if method == "POST":
                self.change_address = request.url.params["change_address"]
                received = self._verify(payment, self.change_address)
                return httpx.Response(201, json=result("open", self.change, received),
                                      headers={"Location": f"{ENDPOINT}/v1/channels/{TXID}/{VOUT}"})
            if method == "DELETE":
                assert payment.change_value == self.change
                return httpx.Response(202, json=result("closed", self.change, 0, txid=SETTLEMENT_TXID))
            received = self._verify(payment, self.change_address)
            return httpx.Response(200, json=result("open", self.change, received))
        payment = parse_v2_payment(json.loads(request.content))
        received = self._verify(payment, payment.change_address or self.change_address)
        if path.endswith("/close"):
            return httpx.Response(200, json=result("closed", self.change, received, txid=SETTLEMENT_TXID))
        return httpx.Response(201 if method == "POST" else 200, json=result("open", self.change, received))


def draft_file(tmp_path: Path, family: str) -> Path:
    path = tmp_path / "chan.json"
    ChannelDraft(NETWORK, parse_family(family), CLIENT_KEY, endpoint=ENDPOINT, refund_address=REFUND_ADDRESS).save(path)
    return path


@pytest.mark.parametrize("family", ["v1", "v2", "v2.3"])
def test_whole_flow_in_process(tmp_path: Path, capsys: pytest.CaptureFixture[str], family: str) -> None:
    state = str(draft_file(tmp_path, family))
    fake = FakeServer(family)
    transport = httpx.MockTransport(fake)

    def cli(*args: str) -> dict[str, Any]:
        code = main([args[0], "--state", state, *args[1:]], transport=transport)
        out, err = capsys.readouterr()
        assert code == 0, err
        [line] = lines(out)
        return line

    info = cli("info", "--exp-time", str(EXP))
    assert info["funding_address"] == FUNDING_ADDRESS
    fund = cli("fund", "--debug")
    assert (fund["funding_txid"], fund["funding_vout"], fund["funding_value"]) == (TXID, VOUT, VALUE)
    opened = cli("open")
    assert opened["value_received"] == (83_920 if family == "v1" else 100_000)
    paid = cli("pay", "--amount", "1")
    assert paid["value_received"] == 1 and paid["sighash"] == "83"
    closed = cli("close", *(["--fee", "1000"] if family == "v2.3" else []))
    assert closed["settlement_txid"] == SETTLEMENT_TXID
    status = cli("status")
    assert status["status"] == "closed" and status["stage"] == "channel" and "client_privkey" not in status
    refund = cli("refund", "--fee", "1000")
    assert (refund["tx"], refund["txid"], refund["published"]) == (REFUND_TX, REFUND_TXID, False)
    assert isinstance(ClientChannel.load(state), ClientChannel)
    assert fake.seen[0].startswith("GET")


def test_pay_before_open_and_family_mismatch(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = str(draft_file(tmp_path, "v2"))
    assert main(["pay", "--state", state, "--amount", "1"]) == 2
    assert "run `open` first" in capsys.readouterr().err
    assert main(["status", "--state", state, "--family", "v1"]) == 2
    assert "route family" in capsys.readouterr().err


def test_server_rejection_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = str(draft_file(tmp_path, "v2"))
    body = {"type": "application_error", "code": "exp_time_too_soon", "message": "channel expiration date too soon"}
    transport = httpx.MockTransport(lambda _req: httpx.Response(400, json=body))
    assert main(["info", "--state", state, "--exp-time", str(EXP)], transport=transport) == 2
    err = capsys.readouterr().err
    assert err == "error: server rejected the request (400): channel expiration date too soon\n"


class FakeNode:
    """A fake bitcoind JSON-RPC: wallet send, raw tx lookup, gettxout, sendrawtransaction."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[Any]]] = []
        self.confirmations = 0
        self.auth: str | None = None
        self.funding_spent_in_block = False
        self.median_time = EXP + 1  # the refund is final

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        req = json.loads(request.content)
        method, params = req["method"], req["params"]
        self.calls.append((method, params))
        self.auth = request.headers.get("authorization")
        res: Any
        if method == "sendtoaddress":
            res = "cd" * 32
        elif method == "getrawtransaction":
            spk = Address.parse(FUNDING_ADDRESS, NETWORK).script_pubkey.hex()
            res = {"txid": "cd" * 32, "vout": [
                {"n": 0, "value": 1.5, "scriptPubKey": {"hex": "0014" + "00" * 20}},
                {"n": 1, "value": "RAW", "scriptPubKey": {"hex": spk}}]}
            text = json.dumps({"result": res, "error": None, "id": req["id"]}).replace('"RAW"', "0.00250000")
            return httpx.Response(200, content=text.encode())
        elif method == "gettxout":
            res = None if self.funding_spent_in_block else {"confirmations": self.confirmations, "value": 0.0025}
            self.confirmations += 1
        elif method == "scantxoutset":
            res = {"unspents": []}
        elif method == "sendrawtransaction":
            res = "ef" * 32
        elif method == "getblockchaininfo":
            res = {"mediantime": self.median_time}
        else:
            return httpx.Response(500, json={"result": None, "error": {"code": -32601, "message": "Method not found"},
                                             "id": req["id"]})
        return httpx.Response(200, json={"result": res, "error": None, "id": req["id"]})


def test_fund_wait_conf_and_publish_refund_through_rpc(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = str(draft_file(tmp_path, "v2"))
    node = FakeNode()
    cookie = tmp_path / ".cookie"
    cookie.write_text("__cookie__:s3cret")
    server = httpx.MockTransport(FakeServer("v2"))

    def route(request: httpx.Request) -> httpx.Response:
        return node(request) if request.url.host == "node.test" else server.handle_request(request)

    transport = httpx.MockTransport(route)
    rpc = ["--rpc-url", "http://node.test:18443/wallet/w", "--rpc-cookie", str(cookie)]
    assert main(["info", "--state", state, "--exp-time", str(EXP)], transport=transport) == 0
    assert main(["fund", "--state", state, *rpc, "--amount-sat", "250000"], transport=transport) == 0
    assert main(["wait-conf", "2", "--state", state, *rpc], transport=transport) == 0
    assert main(["refund", "--state", state, "--fee", "1000", *rpc], transport=transport) == 0
    out = lines(capsys.readouterr().out)
    assert out[1]["funding_txid"] == "cd" * 32 and out[1]["funding_vout"] == 1 and out[1]["funding_value"] == 250_000
    assert out[2]["confirmations"] == 2
    assert out[3]["published"] is True
    assert out[3]["refund_valid_after_median_time_past"] == EXP and out[3]["median_time_past"] == EXP + 1
    assert out[3]["refund_valid_now"] is True and out[3]["refund_valid_in_seconds"] == 0
    methods = [m for m, _ in node.calls]
    assert methods == ["sendtoaddress", "getrawtransaction", "gettxout", "gettxout", "gettxout",
                       "getblockchaininfo", "gettxout", "sendrawtransaction"]
    assert node.calls[0][1] == [FUNDING_ADDRESS, "0.00250000"]
    assert node.calls[-1][1] == [out[3]["tx"]]
    assert node.auth is not None and node.auth.startswith("Basic ")
    draft = load_any(state)
    assert isinstance(draft, ChannelDraft) and draft.funding_value == 250_000


def test_no_refund_of_a_funding_output_a_confirmed_settlement_spent(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """Spec 8.6: once the funding is spent in a block, the CLI never publishes a refund of it."""
    state = str(draft_file(tmp_path, "v2"))
    node = FakeNode()
    transport = httpx.MockTransport(lambda r: node(r) if r.url.host == "node.test" else FakeServer("v2")(r))
    rpc = ["--rpc-url", "http://node.test:18443/wallet/w", "--rpc-user", "u", "--rpc-password", "p"]
    assert main(["info", "--state", state, "--exp-time", str(EXP)], transport=transport) == 0
    assert main(["fund", "--state", state, *rpc, "--amount-sat", "250000"], transport=transport) == 0
    node.funding_spent_in_block = True
    assert main(["refund", "--state", state, "--fee", "1000", *rpc], transport=transport) == 2
    assert "nothing to refund" in capsys.readouterr().err
    assert "sendrawtransaction" not in [m for m, _ in node.calls]


def test_fund_refuses_the_live_network(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from paychan_common.network import Network

    path = tmp_path / "live.json"
    key = PrivateKey(bytes.fromhex("11" * 32))
    ChannelDraft(Network.LIVE, Family.V2_SEED, key, exp_time=EXP, server_pubkey=SERVER_PUBKEY).save(path)
    assert main(["fund", "--state", str(path), "--debug"]) == 2
    assert "test and regtest" in capsys.readouterr().err
    assert main(["fund", "--state", str(path), "--rpc-url", "http://x", "--amount-sat", "1"]) == 2
    assert "live" in capsys.readouterr().err


def test_btc_amount_conversion() -> None:
    from paychan_client.rpc import btc_to_sat, sat_to_btc

    assert sat_to_btc(12_345_678_900_000) == "123456.78900000"
    assert sat_to_btc(1) == "0.00000001"
    assert btc_to_sat(Decimal("0.00000001")) == 1
    assert btc_to_sat(Decimal("21000000")) == 2_100_000_000_000_000


def _opened(tmp_path: Path, capsys: pytest.CaptureFixture[str], fake: FakeServer) -> str:
    state = str(draft_file(tmp_path, fake.family))
    transport = httpx.MockTransport(fake)
    for args in (["info", "--exp-time", str(EXP)], ["fund", "--debug"], ["open"]):
        assert main([args[0], "--state", state, *args[1:]], transport=transport) == 0, capsys.readouterr().err
    capsys.readouterr()
    return state


@pytest.mark.parametrize(("family", "status"), [("v2.3", 410), ("v2", 410), ("v1", 404)])
def test_status_follows_a_close_made_on_the_server(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                   family: str, status: int) -> None:
    fake = FakeServer(family)
    state = _opened(tmp_path, capsys, fake)
    gone = {"type": "application_error", "code": "channel_closed", "message": "channel is closed"}
    closed = httpx.MockTransport(lambda _req: httpx.Response(status, json=gone, extensions={}))
    assert main(["status", "--state", state, "--offline"], transport=closed) == 0
    assert lines(capsys.readouterr().out)[0]["status"] == "open"  # offline: the local file only
    assert main(["status", "--state", state], transport=closed) == 0  # the operator closed it (management API)
    assert lines(capsys.readouterr().out)[0]["status"] == "closed"
    assert ClientChannel.load(state).status == "closed"


def test_pay_on_a_channel_the_server_closed_records_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = _opened(tmp_path, capsys, FakeServer("v2.3"))
    gone = httpx.MockTransport(lambda _req: httpx.Response(410, json={"code": "channel_closing", "message": "closing"}))
    assert main(["pay", "--state", state, "--amount", "1"], transport=gone) == 2
    assert "the server has closed this channel" in capsys.readouterr().err
    assert ClientChannel.load(state).status == "closed"


def test_status_of_an_open_channel_stays_open(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake = FakeServer("v2")
    state = _opened(tmp_path, capsys, fake)
    assert main(["status", "--state", state], transport=httpx.MockTransport(fake)) == 0
    assert lines(capsys.readouterr().out)[0]["status"] == "open"
    assert fake.seen[-1].startswith("PUT")  # the latest payment again: value 0 (spec 4.5)


def test_refund_before_median_time_past_says_too_early(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = _opened(tmp_path, capsys, FakeServer("v2"))
    node = FakeNode()
    node.median_time = EXP - 5 * 3600 - 20
    rpc = ["--rpc-url", "http://node.test:18443", "--rpc-user", "u", "--rpc-password", "p"]
    assert main(["refund", "--state", state, "--fee", "1000", *rpc], transport=httpx.MockTransport(node)) == 2
    err = capsys.readouterr().err
    assert err == f"error: too early: median time past {EXP - 5 * 3600 - 20}, exp_time {EXP}, about 6 h to go\n"
    assert "sendrawtransaction" not in [m for m, _ in node.calls]  # asked (time, spent check), nothing sent


@pytest.mark.parametrize(("args", "needle"), [
    (["--amount-sat", "100500"], "leaves 500 sat of change"),
    (["--amount-sat", "90000"], "does not cover the opening payment"),
    (["--amount-sat", "250000", "--margin-seconds", str(30 * 24 * 3600)], "is too soon"),
])
def test_fund_refuses_before_any_coin_moves(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                                            needle: str) -> None:
    state = str(draft_file(tmp_path, "v2"))
    node = FakeNode()
    server = httpx.MockTransport(FakeServer("v2"))

    def route(request: httpx.Request) -> httpx.Response:
        return node(request) if request.url.host == "node.test" else server.handle_request(request)

    transport = httpx.MockTransport(route)
    assert main(["info", "--state", state, "--exp-time", str(EXP)], transport=transport) == 0
    capsys.readouterr()
    assert main(["fund", "--state", state, "--rpc-url", "http://node.test:18443", *args], transport=transport) == 2
    assert needle in capsys.readouterr().err
    assert node.calls == []


def test_info_refuses_an_exp_time_the_server_would_refuse(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from .vectors import SERVER_EARLIEST

    def info(request: httpx.Request) -> httpx.Response:
        exp = int(request.url.path.split("/")[4])
        params = ChannelParams(CLIENT_KEY.public_key, SERVER_PUBKEY, exp, NETWORK)
        return httpx.Response(200, json=funding_info_body("v2", funding_address_copy=params.funding_address.text,
                                                          redeem_script_copy=params.redeem_script.hex()))

    state = str(draft_file(tmp_path, "v2"))
    transport = httpx.MockTransport(info)
    assert main(["info", "--state", state, "--exp-time", str(SERVER_EARLIEST - 1)], transport=transport) == 2
    err = capsys.readouterr().err
    assert f"exp_time {SERVER_EARLIEST - 1} is too soon" in err and str(SERVER_EARLIEST) in err
    assert main(["info", "--state", state, "--exp-time", str(SERVER_EARLIEST)], transport=transport) == 0
