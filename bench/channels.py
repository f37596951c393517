"""Benchmark channels in debug mode: keys, fake funding, and every request pre-built and pre-signed.

Like the original's GenTestData (spec 11): a fresh random client key, exp_time = now + 7 days, the debug
funding (spec 9), an opening payment of the open price, then N payments of 1 satoshi each, all with the
funding address as change address, and a closing request. Signing is the client's cost, not the server's:
it happens here, before the timed phase, in a process pool when there is much of it.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from urllib.parse import urlencode

import coincurve
import orjson

from paychan_common.channel import ChannelParams, debug_funding
from paychan_common.keys import PrivateKey, PublicKey
from paychan_common.network import Network
from paychan_common.sighash import SINGLE_ACP, PaymentSighashTemplate
from paychan_common.wire_v1 import encode_v1_payload
from paychan_runtime.http1 import build_request

FAMILIES = ("v2", "v2.3", "v1")
JSON_HEADERS = {"Content-Type": "application/json"}
V23_CLOSE_FEE = 20_000  # a v2.3.0 closing payment's value is the settlement fee it pays



def _json_request(method: str, target: str, host: str, body: bytes) -> bytes:
    return build_request(method, target, host, body, JSON_HEADERS)

@dataclass(frozen=True)
class ChannelPlan:
    """One channel's requests: open, the N timed payments, close (raw HTTP/1.1 bytes)."""

    outpoint: str  # display txid:vout
    open: bytes
    payments: list[bytes]
    close: bytes


@dataclass(frozen=True)
class PlanSpec:
    """What build_channel needs (picklable, for the process pool)."""

    family: str
    server_pubkey: str
    open_price: int
    payments: int
    exp_time: int
    host: str
    network: str = "test"
    key: bytes | None = None  # the client secret; None: a fresh random key


def derived_secret(seed: bytes, index: int) -> bytes:
    """Client secret of pre-generated channel `index` (bench/gen_channels.py)."""
    return hashlib.sha256(seed + index.to_bytes(8, "big")).digest()


def _seed_body(change: int, sig: bytes, txid: str, vout: int, script: bytes, address: str) -> bytes:
    return orjson.dumps({"payment_data": {
        "change_value": change, "signature_data": sig.hex(), "sighash_flag": "83", "funding_txid": txid,
        "funding_vout": vout, "redeem_script": script.hex(), "change_address": address}, "application_data": ""})


def build_channel(spec: PlanSpec) -> ChannelPlan:
    """A fresh channel with all its requests signed."""
    key = PrivateKey(spec.key if spec.key is not None else secrets.token_bytes(32))
    signer = coincurve.PrivateKey(key.secret)
    params = ChannelParams(key.public_key, PublicKey.from_hex(spec.server_pubkey), spec.exp_time,
                           Network.parse(spec.network))
    address = params.funding_address
    script = params.redeem_script
    funding = debug_funding(key.public_key, spec.exp_time, address.script_pubkey)
    op = funding.outpoint
    template = PaymentSighashTemplate.build(op.serialize(), script)
    change_script = address.script_pubkey

    def sign(change: int, dest: bytes = change_script) -> bytes:
        der: bytes = signer.sign(template.digest_single(change, dest), hasher=None)
        return der

    first = funding.value - spec.open_price
    changes = [first - k for k in range(1, spec.payments + 1)]
    last = changes[-1] if changes else first
    host, txid, vout = spec.host, op.display_txid, op.vout
    pk = key.public_key.hex
    if spec.family == "v2":
        path = f"/v2/channels/{pk}/{spec.exp_time}/{txid}/{vout}"
        open_req = _json_request("POST", path, host, _seed_body(first, sign(first), txid, vout, script, address.text))
        pays = [_json_request("PUT", path, host, _seed_body(c, sign(c), txid, vout, script, address.text))
                for c in changes]
        close = _json_request("PUT", path + "/close", host,
                              _seed_body(last, sign(last), txid, vout, script, address.text))
    elif spec.family == "v2.3":
        opening = sign(first) + bytes([SINGLE_ACP])
        secret = hashlib.sha256(opening).hexdigest()  # spec 6.4: SHA256(DER ‖ sighash byte)
        path = f"/v2/channels/{txid}/{vout}?secret={secret}"
        full = {"change_value": first, "signature_data": opening.hex(), "funding_txid": txid, "funding_vout": vout,
                "redeem_script": script.hex(), "change_address": address.text}
        open_req = _json_request("POST", path, host, orjson.dumps({"payment_data": full, "application_data": ""}))
        pays = [_json_request("PUT", path, host, orjson.dumps({"payment_data": {
            "change_value": c, "signature_data": (sign(c) + bytes([SINGLE_ACP])).hex()}, "application_data": ""}))
            for c in changes]
        closing = last - V23_CLOSE_FEE
        close_full = dict(full, change_value=closing, signature_data=(sign(closing) + bytes([SINGLE_ACP])).hex())
        close = _json_request("PUT", f"/v2/channels/{txid}/{vout}/close?secret={secret}", host,
                              orjson.dumps({"payment_data": close_full, "application_data": ""}))
    elif spec.family == "v1":
        def payload(change: int) -> str:
            return encode_v1_payload(change, sign(change), SINGLE_ACP)

        query = urlencode({"client_pubkey": pk, "exp_time": spec.exp_time, "change_address": address.text,
                           "payment": payload(first)})
        open_req = build_request("POST", f"/v1/channels/new?{query}", host)
        path = f"/v1/channels/{txid}/{vout}"
        pays = [build_request("PUT", f"{path}?payment={payload(c)}", host) for c in changes]
        close = build_request("DELETE", f"{path}?payment={payload(last)}", host)
    else:
        raise ValueError(f"unknown family {spec.family!r}")
    return ChannelPlan(f"{txid}:{vout}", open_req, pays, close)


def build_channels(spec: PlanSpec, count: int, processes: int = 2,
                   secrets_: Sequence[bytes] | None = None) -> list[ChannelPlan]:
    """`count` channels (fresh keys, or these client secrets); signed in `processes` worker processes
    when there are many signatures."""
    specs = [spec if secrets_ is None else replace(spec, key=secrets_[i]) for i in range(count)]
    if processes <= 1 or count * spec.payments < 20_000:
        return [build_channel(s) for s in specs]
    with ProcessPoolExecutor(processes) as pool:
        return list(pool.map(build_channel, specs))
