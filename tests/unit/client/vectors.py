"""Spec section 13 vectors B and D (testnet, debug funding) and a recording fake server."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from paychan_client.state import ClientChannel
from paychan_common.keys import PrivateKey, PublicKey
from paychan_common.network import Network
from paychan_common.sighash import SINGLE_ACP
from paychan_common.state import Family
from paychan_common.tx import OutPoint

ENDPOINT = "http://server.test"
NETWORK = Network.TEST
CLIENT_KEY = PrivateKey(bytes.fromhex("11" * 32))
CLIENT_PUB = "034f355bdcb7cc0af728ef3cceb9615d90684bb5b2ca5f859ab0f0b704075871aa"
SERVER_PUB = "0225b3aaf58992a8cc909522c2ec859ef218fd29fda0a6723cfb4e0529f80cc8f3"
SERVER_PUBKEY = PublicKey.from_hex(SERVER_PUB)
EXP = 1_500_000_000
REDEEM = ("63210225b3aaf58992a8cc909522c2ec859ef218fd29fda0a6723cfb4e0529f80cc8f3ad6704002f6859b1756821"
          "034f355bdcb7cc0af728ef3cceb9615d90684bb5b2ca5f859ab0f0b704075871aaac")
FUNDING_ADDRESS = "2MyLfPrxCF46e4JUnuvgXaVxtgcYQ6EUK7W"
FUNDING_ADDRESS_MAINNET = "37nTL82AdbbHrWrFEo4exYydUGLEGyHs97"
TXID = "153c8e2acd788e918f101831c17837a34da571312ad561ab6359767bb3926b5b"
VOUT = 2
OUTPOINT = OutPoint.from_display(TXID, VOUT)
VALUE = 12_345_678_900_000
REFUND_ADDRESS = "n4XmX91N5FfccY678vaG1ELNtXh6skVES7"

# 13.2, v2-seed opening payment (open price 100000)
OPEN_SIG = ("3045022100c126d4b7f8d93bbbb4c6d16b02de945aea571b3701c186e1a923c6819cbe0f78022052fba4b82226ee555d9edd8b"
            "9b3f879a79feb1d6da21641e18aa579576f70619")
OPEN_BODY_JSON = (
    '{"application_data": "", "payment_data": {"change_address": "2MyLfPrxCF46e4JUnuvgXaVxtgcYQ6EUK7W", '
    '"change_value": 12345678800000, "funding_txid": '
    '"153c8e2acd788e918f101831c17837a34da571312ad561ab6359767bb3926b5b", "funding_vout": 2, "redeem_script": '
    '"63210225b3aaf58992a8cc909522c2ec859ef218fd29fda0a6723cfb4e0529f80cc8f3ad6704002f6859b1756821034f355bdcb7cc0af'
    '728ef3cceb9615d90684bb5b2ca5f859ab0f0b704075871aaac", "sighash_flag": "83", "signature_data": '
    '"3045022100c126d4b7f8d93bbbb4c6d16b02de945aea571b3701c186e1a923c6819cbe0f78022052fba4b82226ee555d9edd8b9b3f87'
    '9a79feb1d6da21641e18aa579576f70619"}}'
)
V23_SECRET = "cfd50a1ec7a36146fbbe5680078e3df458feb82013430980f8b0aba786418fd6"
PAY2_SIG = ("3044022052a66ddca8fb8fc711f0af463ea810ef4b504c1c9efffd1b09120c0ee1dcea8a0220226a5e8606ba752b9ad3a2ed18470"
            "25166c80c61df3dccf0cb5bb83dc5d02265")
CLOSE_SIG = ("3044022027a3285d7e1808f4ab74674e6246532856148e8b3b18062292b7cec73c39006002204fe42ca94e46c272e6618b528ffd"
             "d079cd7ca7a7271c1db517134a430e77be67")
REFUND_TX = (
    "01000000015b6b92b37b765963ab61d52a3171a54da33778c13118108f918e78cd2a8e3c15020000009c483045022100d95256c5f0c4b9"
    "cfec765cd152858e409379e02f2d386be51d1733d1049e083902205c984e5c9e6c98bc995903b2ed7404300d3da7f5fdc9462c0d37ffea"
    "8c171c3301004c5063210225b3aaf58992a8cc909522c2ec859ef218fd29fda0a6723cfb4e0529f80cc8f3ad6704002f6859b175682103"
    "4f355bdcb7cc0af728ef3cceb9615d90684bb5b2ca5f859ab0f0b704075871aaacfeffffff013827ce733a0b00001976a914fc7250a211"
    "deddc70ee5a2738de5f07817351cef88ac002f6859"
)
REFUND_TXID = "7bf624e15f313e2033a6d1f4df943ea9f25612e72a23b3e44420d0ca964153e3"

# 13.4, vector D (v1)
V1_OPEN_PRICE = 83_920
V1_OPEN_PAYLOAD = ("UOPMczoLAAAwRQIhALdU3l9u4w4jYQqF53iWYFg5K39oOt51OCWoPZGuzYjqAiAIHIrWU2BHBWsqQ15CWahORODIjKovOJiSe"
                   "_tUbZwLcIM")
V1_OPEN_REQUEST = (f"/v1/channels/new?client_pubkey={CLIENT_PUB}&exp_time=1500000000"
                   f"&change_address={REFUND_ADDRESS}&payment={V1_OPEN_PAYLOAD}")
V1_EXHAUST_PAYLOAD = ("AAAAAAAAAAAwRAIgRS69VykT8OZS9s_Jv7CZRjvjmeLCtdLxn6WUgO80nYQCIC8T-CkUBjNjlUdagvjvGl7wu4_Vb-96"
                      "tzaV1E-H6lPxgg")

SERVER_EARLIEST = EXP - 24 * 3600  # what the fake server states as its earliest accepted exp_time

SETTLEMENT_TXID = "754c727936f9688ae25011f10082c415e9f889ddd112f306beb4d3617402c315"


def opened_v23_channel() -> ClientChannel:
    """The v2.3 channel of vector B, opened with its opening payment (13.2) at its v2.3.0 URL."""
    return ClientChannel(
        network=NETWORK, client_key=CLIENT_KEY, server_pubkey=SERVER_PUBKEY, exp_time=EXP, family=Family.V2_3,
        funding_outpoint=OUTPOINT, funding_value=VALUE, redeem_script=bytes.fromhex(REDEEM),
        change_address=FUNDING_ADDRESS, refund_address=REFUND_ADDRESS, dust_limit=700,
        change_value=12_345_678_800_000, signature=bytes.fromhex(OPEN_SIG), sighash=SINGLE_ACP,
        channel_url=f"{ENDPOINT}/v2/channels/{TXID}/{VOUT}", secret=V23_SECRET,
    )


def funding_info_body(family: str = "v2", **overrides: Any) -> dict[str, Any]:
    """A FundingInfo body as the server would send it for vector B."""
    if family == "v1":
        body: dict[str, Any] = {"server_pubkey": SERVER_PUB, "funding_address_copy": FUNDING_ADDRESS,
                                "open_price": V1_OPEN_PRICE, "funding_tx_min_conf": 0, "settlement_period_hours": 12}
    else:
        body = {"server_pubkey": SERVER_PUB, "dust_limit": 700, "funding_address_copy": FUNDING_ADDRESS,
                "open_price": 100_000, "funding_tx_min_conf": 10, "settlement_period_hours": 12,
                "min_duration_hours": 48}
        if family == "v2":
            body["redeem_script_copy"] = REDEEM
    body["earliest_exp_time"] = SERVER_EARLIEST  # the fake server's clock reads 2017, before the vectors' expiry
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def result(status: str = "open", left: int = 0, received: int = 0, txid: str | None = None,
           app: str | None = "") -> dict[str, Any]:
    """A PaymentResult body."""
    body: dict[str, Any] = {"channel_status": status, "channel_value_left": left, "value_received": received,
                            "settlement_txid": txid}
    if app is not None:
        body["application_data"] = app
    return body


Handler = Callable[[httpx.Request], httpx.Response]


@dataclass
class Recorder:
    """Records each request and answers with the next queued response (or a handler)."""

    responses: list[httpx.Response | Handler] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        if not self.responses:
            raise AssertionError(f"unexpected request {request.method} {request.url}")
        nxt = self.responses.pop(0)
        return nxt(request) if callable(nxt) else nxt

    def reply(self, status: int, body: object = None, *, headers: dict[str, str] | None = None,
              reason: str | None = None) -> Recorder:
        """Queue a response."""
        ext = {"reason_phrase": reason.encode()} if reason else {}
        content = json.dumps(body).encode() if body is not None else b""
        hdrs = dict(headers or {})
        if body is not None:
            hdrs["Content-Type"] = "application/json"
        self.responses.append(httpx.Response(status, content=content, headers=hdrs, extensions=ext))
        return self

    @property
    def last(self) -> httpx.Request:
        """The latest request."""
        return self.requests[-1]

    def last_json(self) -> Any:
        """The latest request's JSON body."""
        return json.loads(self.last.content)
