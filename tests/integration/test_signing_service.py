"""SigningService through aiohttp's test client (config in tmp_path), plus one real subprocess run.

Vector B of spec 13.2 must come out byte for byte; every refusal is a typed JSON error with a stable
code, never a 500; the key never reaches a response or a log line.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
import os
import signal
import socket
import stat
import subprocess
import sys
import time
import tomllib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from aiohttp import web
from aiohttp.test_utils import TestClient

from paychan_common.address import Address
from paychan_common.channel import sign_payment
from paychan_common.keys import PrivateKey
from paychan_common.network import Network
from paychan_common.script import channel_redeem_script
from paychan_common.sighash import NONE_ACP
from paychan_common.tx import OutPoint, Transaction
from paychan_runtime.config import ConfigError, load_config
from signing_service.__main__ import main
from signing_service.app import create_app
from signing_service.config import SigningConfig
from signing_service.keystore import DEBUG_SEED, KeyFileError, load_server_key
from tests.support.ports import reserve_port

SRC = Path(__file__).resolve().parents[2] / "src"

# Spec 13.2, vector B.
DEBUG_PUBKEY = "0225b3aaf58992a8cc909522c2ec859ef218fd29fda0a6723cfb4e0529f80cc8f3"
CLIENT_SECRET = bytes([0x11]) * 32
EXP_TIME = 1_500_000_000
FUNDING_TXID = "153c8e2acd788e918f101831c17837a34da571312ad561ab6359767bb3926b5b"
FUNDING_VOUT = 2
FUNDING_VALUE = 12_345_678_900_000
CLOSING_CHANGE = 12_345_678_799_999
CLIENT_ADDRESS = "n4XmX91N5FfccY678vaG1ELNtXh6skVES7"
DESTINATION = "mm9mm96b8bZRBacaAvY5MEeDd6HW46qFcY"
FEE = 13_920
DUST = 700
CLOSING_SIG = ("3044022027a3285d7e1808f4ab74674e6246532856148e8b3b18062292b7cec73c39006002204fe42ca94e46c272e"
               "6618b528ffdd079cd7ca7a7271c1db517134a430e77be67")
SERVER_SIG = ("3045022100fb6eb05c93e7009f4cbc3f4dc2ebeef736f66b3d618a99420fb1da0bba2a0cf602202fb2df556c5cf77b"
              "ded5b7c660d6903f9e802e8a651126a3074edbc3fedcf982")
SETTLEMENT_TXID = "754c727936f9688ae25011f10082c415e9f889ddd112f306beb4d3617402c315"
SETTLEMENT_TX = (
    "01000000015b6b92b37b765963ab61d52a3171a54da33778c13118108f918e78cd2a8e3c1502000000e4473044022027a328"
    "5d7e1808f4ab74674e6246532856148e8b3b18062292b7cec73c39006002204fe42ca94e46c272e6618b528ffdd079cd7ca7"
    "a7271c1db517134a430e77be6783483045022100fb6eb05c93e7009f4cbc3f4dc2ebeef736f66b3d618a99420fb1da0bba2a"
    "0cf602202fb2df556c5cf77bded5b7c660d6903f9e802e8a651126a3074edbc3fedcf98201514c5063210225b3aaf58992a8"
    "cc909522c2ec859ef218fd29fda0a6723cfb4e0529f80cc8f3ad6704002f6859b1756821034f355bdcb7cc0af728ef3cceb9"
    "615d90684bb5b2ca5f859ab0f0b704075871aaacffffffff027fa4cc733a0b00001976a914fc7250a211deddc70ee5a2738d"
    "e5f07817351cef88ac41500100000000001976a9143dcf3a1d00f3d21789ea6595003305bd3368c0ba88ac00000000"
)

ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]


# ---------------------------------------------------------------- helpers


def config_dict(tmp_path: Path, **sections: Any) -> dict[str, Any]:
    """A valid debug config (files under tmp_path), with sections updated from keyword arguments."""
    base: dict[str, Any] = {
        "network": "test",
        "log_level": "INFO",
        "listen": {"host": "127.0.0.1", "port": 17081},
        "auth": {"token_file": str(tmp_path / "internal.token")},
        "key": {"file": str(tmp_path / "server.key"), "debug_seed": True},
        "settlement": {"destination": DESTINATION, "max_fee": 200_000},
    }
    for name, values in sections.items():
        if isinstance(base.get(name), dict):
            base[name] = {**base[name], **values}
        else:
            base[name] = values
    return base


def write_config(tmp_path: Path, data: dict[str, Any], name: str = "signing.toml") -> Path:
    path = tmp_path / name
    path.write_text(tomli_w.dumps(data))
    return path


def redeem_script(server_pubkey: bytes = bytes.fromhex(DEBUG_PUBKEY)) -> bytes:
    client_pk = PrivateKey(CLIENT_SECRET).public_key
    return channel_redeem_script(server_pubkey, client_pk.data, EXP_TIME)


def change_script() -> bytes:
    return Address.parse(CLIENT_ADDRESS, Network.TEST).script_pubkey


def sign_request(*, change_value: int = CLOSING_CHANGE, signed_change: int | None = None,
                 script: bytes | None = None, sighash: int = 0x83, **fields: Any) -> dict[str, Any]:
    """Vector B's settlement request; the client signs `signed_change` (default: change_value)."""
    script = redeem_script() if script is None else script
    outpoint = OutPoint.from_display(FUNDING_TXID, FUNDING_VOUT)
    sig = sign_payment(CLIENT_SECRET, outpoint, script, change_value if signed_change is None else signed_change,
                       change_script(), sighash)
    body: dict[str, Any] = {
        "redeem_script": script.hex(), "funding_txid": FUNDING_TXID, "funding_vout": FUNDING_VOUT,
        "funding_value": FUNDING_VALUE, "change_value": change_value, "change_script": change_script().hex(),
        "client_signature": sig.der.hex(), "client_sighash": sig.sighash, "fee": FEE, "dust_limit": DUST,
    }
    body.update(fields)
    return body


@pytest.fixture
def make_client(tmp_path: Path, aiohttp_client: Any) -> Callable[..., Awaitable[tuple[TestClient[Any, Any], str]]]:
    """Start the app on a config built in tmp_path; returns (client, bearer token)."""

    async def go(**sections: dict[str, Any]) -> tuple[TestClient[Any, Any], str]:
        config = SigningConfig.model_validate(config_dict(tmp_path, **sections))
        key = load_server_key(config.key, config.net)
        app = create_app(config, key)
        token = (tmp_path / "internal.token").read_text().strip()
        client: TestClient[Any, Any] = await aiohttp_client(app)
        return client, token

    return go


def auth(token: str) -> dict[str, str]:
    return {"Authorization": "Bearer " + token}


async def post_sign(client: TestClient[Any, Any], token: str, body: Any) -> tuple[int, Any]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    resp = await client.post("/sign_settlement", data=data, headers={**auth(token),
                                                                     "Content-Type": "application/json"})
    assert resp.content_type == "application/json"
    return resp.status, await resp.json()


# ---------------------------------------------------------------- read-only routes


async def test_health_needs_no_token(make_client: Any) -> None:
    client, _token = await make_client()
    resp = await client.get("/health")
    assert resp.status == 200
    assert await resp.json() == {"ok": True}


async def test_pubkey_with_debug_seed(make_client: Any) -> None:
    client, token = await make_client()
    resp = await client.get("/pubkey", headers=auth(token))
    assert resp.status == 200
    assert await resp.json() == {"pubkey": DEBUG_PUBKEY, "network": "test", "destination": DESTINATION,
                                 "policy": {"max_fee": 200_000, "dust_limit": 700}}


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}],
                         ids=["missing", "wrong", "not-bearer"])
@pytest.mark.parametrize(("method", "path"), [("GET", "/pubkey"), ("POST", "/sign_settlement")])
async def test_token_required(make_client: Any, headers: dict[str, str], method: str, path: str) -> None:
    client, _token = await make_client()
    resp = await client.request(method, path, headers=headers, data=json.dumps(sign_request()))
    assert resp.status == 401
    body = await resp.json()
    assert body["error"]["class"] == "Unauthorized"
    assert body["error"]["code"] == "unauthorized"


async def test_unknown_path_and_method_are_json(make_client: Any) -> None:
    client, token = await make_client()
    resp = await client.get("/nope", headers=auth(token))
    assert resp.status == 404
    assert (await resp.json())["error"]["code"] == "not_found"
    resp = await client.get("/sign_settlement", headers=auth(token))
    assert resp.status == 405
    assert (await resp.json())["error"]["code"] == "method_not_allowed"


# ---------------------------------------------------------------- signing


async def test_vector_b_settlement(make_client: Any) -> None:
    body = sign_request()
    assert body["client_signature"] == CLOSING_SIG  # the spec's closing payment signature
    client, token = await make_client()
    status, answer = await post_sign(client, token, body)
    assert status == 200, answer
    assert answer == {"tx": SETTLEMENT_TX, "txid": SETTLEMENT_TXID, "fee": FEE, "server_value": 86_081}


async def test_vector_b_with_matching_destination(make_client: Any) -> None:
    client, token = await make_client()
    status, answer = await post_sign(client, token, sign_request(destination=DESTINATION))
    assert status == 200, answer
    assert answer["txid"] == SETTLEMENT_TXID


async def test_exhausting_payment_none_acp(make_client: Any) -> None:
    """0x82: no change output; the whole channel minus the fee goes to the destination (spec 8.1)."""
    client, token = await make_client()
    status, answer = await post_sign(client, token, sign_request(change_value=0, sighash=NONE_ACP))
    assert status == 200, answer
    tx = Transaction.parse(bytes.fromhex(answer["tx"]))
    assert [(o.value, o.script_pubkey) for o in tx.outputs] == [
        (FUNDING_VALUE - FEE, Address.parse(DESTINATION, Network.TEST).script_pubkey)]
    assert answer["server_value"] == FUNDING_VALUE - FEE
    assert answer["fee"] == FEE


async def test_server_output_dropped_below_the_services_own_dust_limit(make_client: Any) -> None:
    client, token = await make_client(settlement={"dust_limit": 100_000})
    status, answer = await post_sign(client, token, sign_request())
    assert status == 200, answer
    tx = Transaction.parse(bytes.fromhex(answer["tx"]))
    assert [(o.value, o.script_pubkey) for o in tx.outputs] == [(CLOSING_CHANGE, change_script())]
    assert answer["server_value"] == 0
    assert answer["fee"] == FUNDING_VALUE - CLOSING_CHANGE


@pytest.mark.parametrize("dust_limit", [100_000, 10**15, 0])
async def test_a_caller_supplied_dust_limit_is_ignored(make_client: Any, dust_limit: int) -> None:
    """Spec 8.6: a caller-chosen dust limit would drop the server output and give its value to miners."""
    client, token = await make_client()
    status, answer = await post_sign(client, token, sign_request(dust_limit=dust_limit))
    assert status == 200, answer
    assert answer["txid"] == SETTLEMENT_TXID  # vector B, server output (86,081 sat) kept
    assert answer["server_value"] == FUNDING_VALUE - CLOSING_CHANGE - FEE


# ---------------------------------------------------------------- refusals (403, typed)


async def refused(make_client: Any, body: dict[str, Any], code: str, **sections: dict[str, Any]) -> None:
    client, token = await make_client(**sections)
    status, answer = await post_sign(client, token, body)
    assert status == 403, answer
    assert answer["error"]["class"] == "SigningRefused"
    assert answer["error"]["code"] == code


@pytest.mark.parametrize("destination", [
    "mfWxJ45yp2SFn7UciZyNpvDKrzbhyfKrY8",  # another testnet P2PKH
    "1M8iwBs5XD7ZJQJCDC7BdLEpSivRQZJ2Hg",  # the live destination, wrong network
    "not an address",
])
async def test_refuses_foreign_destination(make_client: Any, destination: str) -> None:
    await refused(make_client, sign_request(destination=destination), "foreign_destination")


async def test_refuses_fee_above_cap(make_client: Any) -> None:
    await refused(make_client, sign_request(fee=200_001), "fee_above_cap")


async def test_refuses_implied_fee_above_cap(make_client: Any) -> None:
    """The service's dust limit drops the server output: the real fee 100001 > cap 50000."""
    await refused(make_client, sign_request(), "fee_above_cap", settlement={"max_fee": 50_000, "dust_limit": 90_000})


async def test_refuses_bad_client_signature(make_client: Any) -> None:
    body = sign_request(change_value=CLOSING_CHANGE, signed_change=CLOSING_CHANGE - 1)
    await refused(make_client, body, "bad_client_signature")


async def test_refuses_tampered_outpoint(make_client: Any) -> None:
    await refused(make_client, sign_request(funding_vout=3), "bad_client_signature")


async def test_refuses_foreign_script(make_client: Any) -> None:
    other_server = PrivateKey(bytes([0x22]) * 32).public_key.data
    await refused(make_client, sign_request(script=redeem_script(other_server)), "foreign_script")


async def test_refuses_non_channel_script(make_client: Any) -> None:
    body = sign_request(redeem_script=(b"\x51" * 80).hex())
    await refused(make_client, body, "not_channel_script")


async def test_refuses_change_above_funding(make_client: Any) -> None:
    await refused(make_client, sign_request(funding_value=CLOSING_CHANGE - 1), "change_above_funding")


# ---------------------------------------------------------------- malformed requests (400, never 500)


def valid_with(**fields: Any) -> dict[str, Any]:
    """A valid vector-B request, then some fields replaced (after signing)."""
    return {**sign_request(), **fields}


MALFORMED: dict[str, tuple[Any, str]] = {
    "float-amount": (valid_with(funding_value=float(FUNDING_VALUE)), "invalid_field"),
    "bool-fee": (valid_with(fee=True), "invalid_field"),
    "string-amount": (valid_with(change_value=str(CLOSING_CHANGE)), "invalid_field"),
    "string-vout": (valid_with(funding_vout="2"), "invalid_field"),
    "negative-fee": (valid_with(fee=-1), "invalid_field"),
    "vout-overflow": (valid_with(funding_vout=2**32), "invalid_field"),
    "amount-overflow": (valid_with(funding_value=21_000_000 * 10**8 + 1), "invalid_field"),
    "null-field": (valid_with(fee=None), "invalid_field"),
    "missing-field": ({k: v for k, v in valid_with().items() if k != "fee"}, "invalid_field"),
    "unknown-field": (valid_with(extra=1), "invalid_field"),
    "array": ([sign_request()], "invalid_field"),
    "null": (None, "invalid_field"),
    "bad-hex-script": (valid_with(redeem_script="zz" + redeem_script().hex()[2:]), "invalid_input"),
    "odd-hex-signature": (valid_with(client_signature=CLOSING_SIG[:-1]), "invalid_input"),
    "short-txid": (valid_with(funding_txid=FUNDING_TXID[:-2]), "invalid_input"),
    "bad-der": (valid_with(client_signature="300602010102010100"), "bad_signature"),
    "bad-sighash": (valid_with(client_sighash=0x81), "bad_sighash"),
    "not-json": (b"{not json", "bad_json"),
    "empty": (b"", "bad_json"),
    "oversized": (valid_with(destination="x" * 20_000), "body_too_large"),
    "oversized-bytes": (b"{" + b" " * 17_000 + b"}", "body_too_large"),
}


@pytest.mark.parametrize(("body", "code"), list(MALFORMED.values()), ids=list(MALFORMED))
async def test_malformed_bodies_are_400(make_client: Any, body: Any, code: str) -> None:
    client, token = await make_client()
    status, answer = await post_sign(client, token, body)
    assert status == 400, answer
    assert answer["error"]["class"] == "InvalidInput"
    assert answer["error"]["code"] == code


async def test_body_sent_in_chunks(make_client: Any) -> None:
    client, token = await make_client()
    data = json.dumps(sign_request()).encode()

    async def pieces() -> AsyncIterator[bytes]:
        for i in range(0, len(data), 100):
            yield data[i : i + 100]
            await asyncio.sleep(0.005)

    resp = await client.post("/sign_settlement", data=pieces(), headers=auth(token))
    assert resp.status == 200, await resp.text()


# ---------------------------------------------------------------- audit log


async def test_audit_line_per_signature_without_secrets(make_client: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="paychan")
    client, token = await make_client()
    status, _ = await post_sign(client, token, sign_request())
    assert status == 200
    status, _ = await post_sign(client, token, sign_request(fee=999_999))
    assert status == 403
    audit = [r for r in caplog.records if r.name == "paychan.signing.audit"]
    assert len(audit) == 1
    line = audit[0].getMessage()
    assert audit[0].levelno == logging.INFO
    for part in (SETTLEMENT_TXID, f"{FUNDING_TXID}:{FUNDING_VOUT}", f"change_value={CLOSING_CHANGE}",
                 "server_value=86081", f"fee={FEE}"):
        assert part in line
    refusals = [r for r in caplog.records if r.levelno == logging.WARNING and "fee_above_cap" in r.getMessage()]
    assert len(refusals) == 1
    everything = "\n".join(r.getMessage() for r in caplog.records)
    for secret in (DEBUG_SEED.hex(), token, CLOSING_SIG, SERVER_SIG, SETTLEMENT_TX):
        assert secret not in everything


# ---------------------------------------------------------------- key file


def test_key_file_created_0600_then_reused(tmp_path: Path) -> None:
    config = SigningConfig.model_validate(config_dict(tmp_path, key={"file": str(tmp_path / "k" / "server.key"),
                                                                     "debug_seed": False}))
    first = load_server_key(config.key, config.net)
    path = tmp_path / "k" / "server.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    text = path.read_text()
    assert len(text.strip()) == 64
    assert first.public_key.hex != DEBUG_PUBKEY
    second = load_server_key(config.key, config.net)
    assert second.public_key == first.public_key
    assert path.read_text() == text
    assert text.strip() not in repr(first)


async def test_app_uses_key_file(make_client: Any, tmp_path: Path) -> None:
    client, token = await make_client(key={"debug_seed": False})
    resp = await client.get("/pubkey", headers=auth(token))
    expected = PrivateKey(bytes.fromhex((tmp_path / "server.key").read_text().strip())).public_key.hex
    assert (await resp.json())["pubkey"] == expected
    # Vector B's script holds the debug key, which this service does not have.
    status, answer = await post_sign(client, token, sign_request())
    assert (status, answer["error"]["code"]) == (403, "foreign_script")


@pytest.mark.parametrize(("content", "mode"), [
    ("zz" * 32, 0o600), ("00" * 32, 0o600), ("ab" * 16, 0o600), ("11" * 32, 0o644),
], ids=["not-hex", "zero", "short", "world-readable"])
def test_bad_key_file_refused(tmp_path: Path, content: str, mode: int) -> None:
    path = tmp_path / "server.key"
    path.write_text(content + "\n")
    path.chmod(mode)
    config = SigningConfig.model_validate(config_dict(tmp_path, key={"debug_seed": False}))
    with pytest.raises(KeyFileError):
        load_server_key(config.key, config.net)


def test_token_file_created_0600(tmp_path: Path) -> None:
    config = SigningConfig.model_validate(config_dict(tmp_path))
    create_app(config, PrivateKey(DEBUG_SEED))
    path = tmp_path / "internal.token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    token = path.read_text()
    create_app(config, PrivateKey(DEBUG_SEED))
    assert path.read_text() == token


# ---------------------------------------------------------------- config


@pytest.mark.parametrize(("sections", "needle"), [
    ({"network": "live", "settlement": {"destination": "1M8iwBs5XD7ZJQJCDC7BdLEpSivRQZJ2Hg"}}, "key.debug_seed"),
    ({"listen": {"host": "0.0.0.0"}}, "loopback"),
    ({"listen": {"host": "192.168.1.10"}}, "loopback"),
    ({"listen": {"host": "example.com"}}, "loopback"),
    ({"listen": {"unix_path": "x.sock"}}, "exactly one"),
    ({"listen": {"port": None}}, "exactly one"),
    ({"settlement": {"destination": "1M8iwBs5XD7ZJQJCDC7BdLEpSivRQZJ2Hg"}}, "settlement.destination"),
    ({"settlement": {"destination": "m{x}"}}, "settlement.destination"),
    ({"settlement": {"max_fee": -1}}, "settlement.max_fee"),
    ({"settlement": {"max_fee": "1000"}}, "settlement.max_fee"),
    ({"network": "main"}, "network"),
    ({"key": {"debug_seed": "yes"}}, "key.debug_seed"),
    ({"auth": {"token_file": "t", "extra": 1}}, "auth.extra"),
], ids=["debug-on-live", "any-host", "lan-host", "hostname", "port-and-unix", "neither", "dest-network", "dest-braces",
        "negative-fee", "string-fee", "network", "bool", "unknown-key"])
def test_bad_config_refused(tmp_path: Path, sections: dict[str, Any], needle: str) -> None:
    data = config_dict(tmp_path, **sections)
    data["listen"] = {k: v for k, v in data["listen"].items() if v is not None}
    path = write_config(tmp_path, data)
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
        load_config(path, SigningConfig)


def test_missing_key_is_named(tmp_path: Path) -> None:
    data = config_dict(tmp_path)
    del data["settlement"]["max_fee"]
    with pytest.raises(ConfigError, match=r"settlement\.max_fee"):
        load_config(write_config(tmp_path, data), SigningConfig)


def test_unix_socket_and_loopback_variants_accepted(tmp_path: Path) -> None:
    for listen in ({"host": "127.0.0.1", "unix_path": "var/s.sock"}, {"host": "::1", "port": 1},
                   {"host": "localhost", "port": 2}, {"host": "127.0.0.2", "port": 3}):
        data = config_dict(tmp_path)
        data["listen"] = listen
        load_config(write_config(tmp_path, data), SigningConfig)


@pytest.mark.parametrize("name", ["debug", "regtest"])
def test_shipped_configs_load(name: str) -> None:
    path = SRC.parent / "config" / name / "signing.toml"
    config = load_config(path, SigningConfig)
    assert config.key.debug_seed == (name == "debug")
    assert config.destination.network is config.net
    assert config.funding_check.mode == ("debug" if name == "debug" else "node")


@pytest.mark.parametrize("name", ["test", "live"])
def test_shipped_real_network_configs_refuse_to_start_until_the_operator_sets_a_destination(name: str) -> None:
    path = SRC.parent / "config" / name / "signing.toml"
    with pytest.raises(ConfigError, match=r"settlement\.destination"):
        load_config(path, SigningConfig)
    text = path.read_text().replace("REPLACE-WITH-YOUR-OWN-ADDRESS",
                                    "mm9mm96b8bZRBacaAvY5MEeDd6HW46qFcY" if name == "test"
                                    else "1M8iwBs5XD7ZJQJCDC7BdLEpSivRQZJ2Hg")
    config = SigningConfig.model_validate(tomllib.loads(text))
    assert config.funding_check.mode == "node" and config.funding_check.rpc_url


def test_main_exits_2_on_bad_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = config_dict(tmp_path, network="live", settlement={"destination": "1M8iwBs5XD7ZJQJCDC7BdLEpSivRQZJ2Hg"},
                       funding_check={"mode": "node", "rpc_url": "http://127.0.0.1:8332"})
    assert main([str(write_config(tmp_path, data))]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("signing-service: ")
    assert "debug_seed" in err
    assert main([str(tmp_path / "missing.toml")]) == 2
    assert "not found" in capsys.readouterr().err


# ---------------------------------------------------------------- a real process


class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over a unix socket."""

    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=5)
        self.unix_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(5)
        sock.connect(self.unix_path)
        self.sock = sock


Connect = Callable[[], http.client.HTTPConnection]


def request(connect: Connect, path: str, token: str | None = None, body: Any = None) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = "Bearer " + token
    conn = connect()
    try:
        conn.request("GET" if body is None else "POST", path,
                     body=None if body is None else json.dumps(body).encode(), headers=headers)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def wait_ready(proc: subprocess.Popen[bytes], connect: Connect, timeout: float = 20.0) -> None:
    """Poll /health with backoff until it answers; fail early if the process dies."""
    deadline = time.monotonic() + timeout
    delay = 0.02
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"signing service exited early with code {proc.returncode}")
        try:
            if request(connect, "/health") == (200, {"ok": True}):
                return
        except OSError:
            pass
        time.sleep(delay)
        delay = min(delay * 2, 0.5)
    raise AssertionError("signing service not ready in time")


@pytest.mark.parametrize("transport", ["tcp", "unix"])
def test_real_process_signs_and_stops_cleanly(tmp_path: Path, transport: str) -> None:
    connect: Connect
    if transport == "tcp":
        port = reserve_port()
        listen: dict[str, Any] = {"host": "127.0.0.1", "port": port}
        connect = lambda: http.client.HTTPConnection("127.0.0.1", port, timeout=5)  # noqa: E731
    else:
        listen = {"host": "127.0.0.1", "port": None, "unix_path": "var/run/signing.sock"}
        connect = lambda: UnixHTTPConnection(str(tmp_path / "var" / "run" / "signing.sock"))  # noqa: E731
    data = config_dict(tmp_path, listen=listen, auth={"token_file": "var/internal.token"},
                       key={"file": "var/server.key"})
    data["listen"] = {k: v for k, v in data["listen"].items() if v is not None}
    config_path = write_config(tmp_path, data)
    log_path = tmp_path / "signing.log"
    env = {**os.environ, "PYTHONPATH": str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen([sys.executable, "-m", "signing_service", str(config_path)], cwd=tmp_path,
                                env=env, stdout=log_file, stderr=subprocess.STDOUT)
        try:
            wait_ready(proc, connect)
            token_path = tmp_path / "var" / "internal.token"
            token = token_path.read_text().strip()
            assert stat.S_IMODE(token_path.stat().st_mode) == 0o600
            if transport == "unix":
                sock_mode = (tmp_path / "var" / "run" / "signing.sock").stat().st_mode
                assert stat.S_IMODE(sock_mode) == 0o600
            assert request(connect, "/pubkey")[0] == 401
            assert request(connect, "/pubkey", token)[1]["pubkey"] == DEBUG_PUBKEY
            status, answer = request(connect, "/sign_settlement", token, sign_request())
            assert status == 200, answer
            assert (answer["txid"], answer["tx"]) == (SETTLEMENT_TXID, SETTLEMENT_TX)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=15) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    output = log_path.read_text()
    assert "Traceback" not in output
    assert f"signed settlement txid={SETTLEMENT_TXID}" in output
    assert DEBUG_SEED.hex() not in output and token not in output
