"""open, pay and close: the exact requests of each route family (spec 6, vectors B and D)."""

from __future__ import annotations

import json
from dataclasses import replace

import httpx
import pytest

from paychan_client import (
    BadResponse,
    ChannelStateError,
    ClientChannel,
    FundingInfo,
    InvalidArgument,
    PaychanClient,
    ServerRejected,
    TransportError,
)
from paychan_client.models import parse_family
from paychan_common.channel import PaymentVerifier
from paychan_common.sighash import NONE_ACP, SINGLE_ACP
from paychan_common.wire_v1 import parse_v1_payload

from .vectors import (
    CLIENT_KEY,
    CLIENT_PUB,
    CLOSE_SIG,
    ENDPOINT,
    EXP,
    FUNDING_ADDRESS,
    NETWORK,
    OPEN_BODY_JSON,
    OPEN_SIG,
    OUTPOINT,
    PAY2_SIG,
    REDEEM,
    REFUND_ADDRESS,
    SETTLEMENT_TXID,
    TXID,
    V1_EXHAUST_PAYLOAD,
    V1_OPEN_PAYLOAD,
    V1_OPEN_REQUEST,
    V23_SECRET,
    VALUE,
    VOUT,
    Recorder,
    funding_info_body,
    result,
)

V1_URL = f"{ENDPOINT}/v1/channels/{TXID}/{VOUT}"
SEED_URL = f"{ENDPOINT}/v2/channels/{CLIENT_PUB}/{EXP}/{TXID}/{VOUT}"
V23_URL = f"{ENDPOINT}/v2/channels/{TXID}/{VOUT}"


def info(family: str) -> FundingInfo:
    """Funding info as parsed from the vector's server."""
    return FundingInfo.from_response(funding_info_body(family), parse_family(family), CLIENT_KEY.public_key, EXP,
                                     NETWORK)


def open_channel(client: PaychanClient, server: Recorder, family: str) -> ClientChannel:
    """Open with the vectors' terms (v1: Location as in 13.4)."""
    headers = {"Location": V1_URL} if family == "v1" else None
    server.reply(201, result("open", 0, 0), headers=headers)
    return client.open_channel(CLIENT_KEY, EXP, OUTPOINT, VALUE, family, info=info(family)).channel


# -- open ----------------------------------------------------------------------------------------------


def test_open_v1_request_is_vector_d(client: PaychanClient, server: Recorder) -> None:
    server.reply(201, result("open", 12_345_678_816_080, 83_920), headers={"Location": V1_URL})
    update = client.open_channel(CLIENT_KEY, EXP, OUTPOINT, VALUE, "v1", change_address=REFUND_ADDRESS,
                                 info=info("v1"))
    req = server.last
    assert req.method == "POST"
    assert str(req.url) == ENDPOINT + V1_OPEN_REQUEST
    assert req.content == b""
    ch = update.channel
    assert ch.channel_url == V1_URL
    assert (ch.change_value, ch.sighash, ch.change_address) == (12_345_678_816_080, SINGLE_ACP, REFUND_ADDRESS)
    assert update.result.value_received == 83_920
    assert ch.status == "open" and ch.secret == ""


def test_open_v1_defaults_change_to_clients_own_address(client: PaychanClient, server: Recorder) -> None:
    server.reply(201, result("open", 12_345_678_816_080, 83_920), headers={"Location": "/v1/channels/" + TXID + "/2"})
    update = client.open_channel(CLIENT_KEY, EXP, OUTPOINT, VALUE, "v1", info=info("v1"))
    assert str(server.last.url) == ENDPOINT + V1_OPEN_REQUEST
    assert update.channel.channel_url == V1_URL  # relative Location resolved


def test_open_v1_without_location_uses_the_outpoint(client: PaychanClient, server: Recorder) -> None:
    server.reply(201, result("open", 12_345_678_816_080, 83_920))
    update = client.open_channel(CLIENT_KEY, EXP, OUTPOINT, VALUE, "v1", info=info("v1"))
    assert update.channel.channel_url == V1_URL


def test_open_v1_location_for_another_outpoint_is_refused(client: PaychanClient, server: Recorder) -> None:
    server.reply(201, result("open", 1, 1), headers={"Location": f"{ENDPOINT}/v1/channels/{TXID}/3"})
    with pytest.raises(BadResponse, match="outpoint"):
        client.open_channel(CLIENT_KEY, EXP, OUTPOINT, VALUE, "v1", info=info("v1"))


def test_open_v2_seed_body_is_vector_b(client: PaychanClient, server: Recorder) -> None:
    server.reply(201, result("open", 12_345_678_800_000, 100_000))
    update = client.open_channel(CLIENT_KEY, EXP, OUTPOINT, VALUE, "v2", info=info("v2"))
    req = server.last
    assert req.method == "POST"
    assert str(req.url) == SEED_URL
    assert req.headers["content-type"] == "application/json"
    assert json.loads(req.content) == json.loads(OPEN_BODY_JSON)
    ch = update.channel
    assert ch.channel_url == SEED_URL
    assert ch.change_address == FUNDING_ADDRESS and ch.refund_address == REFUND_ADDRESS
    assert ch.signature.hex() == OPEN_SIG


def test_open_fetches_funding_info_when_not_given(client: PaychanClient, server: Recorder) -> None:
    server.reply(200, funding_info_body("v2")).reply(201, result("open", 12_345_678_800_000, 100_000))
    client.open_channel(CLIENT_KEY, EXP, OUTPOINT, VALUE, "v2")
    assert [r.method for r in server.requests] == ["GET", "POST"]
    assert json.loads(server.last.content) == json.loads(OPEN_BODY_JSON)


def test_open_v2_refuses_a_foreign_change_address(client: PaychanClient) -> None:
    with pytest.raises(InvalidArgument, match="funding address"):
        client.open_channel(CLIENT_KEY, EXP, OUTPOINT, VALUE, "v2", change_address=REFUND_ADDRESS, info=info("v2"))


def test_open_v2_3_request(client: PaychanClient, server: Recorder) -> None:
    server.reply(201, result("open", 12_345_678_800_000, 100_000, txid=""))
    update = client.open_channel(CLIENT_KEY, EXP, OUTPOINT, VALUE, "v2.3", info=info("v2.3"))
    req = server.last
    assert req.method == "POST"
    assert str(req.url) == f"{V23_URL}?secret={V23_SECRET}"
    assert json.loads(req.content) == {
        "payment_data": {"change_value": 12_345_678_800_000, "signature_data": OPEN_SIG + "83",
                         "funding_txid": TXID, "funding_vout": VOUT, "redeem_script": REDEEM,
                         "change_address": FUNDING_ADDRESS},
        "application_data": "",
    }
    assert update.channel.secret == V23_SECRET
    assert update.result.settlement_txid is None  # "" means none (spec 6.5)


def test_open_conflict_carries_location(client: PaychanClient, server: Recorder) -> None:
    body = {"type": "application_error", "code": "channel_exists", "message": "channel exists"}
    server.reply(409, body, headers={"Location": SEED_URL})
    with pytest.raises(ServerRejected) as err:
        client.open_channel(CLIENT_KEY, EXP, OUTPOINT, VALUE, "v2", info=info("v2"))
    assert (err.value.status, err.value.code, err.value.location) == (409, "channel_exists", SEED_URL)


def test_open_value_above_funding_is_refused(client: PaychanClient) -> None:
    with pytest.raises(InvalidArgument):
        client.open_channel(CLIENT_KEY, EXP, OUTPOINT, 1000, "v2", info=info("v2"))


# -- pay -----------------------------------------------------------------------------------------------


def test_pay_v2_seed_one_satoshi_is_vector_b_payment_2(client: PaychanClient, server: Recorder) -> None:
    ch = open_channel(client, server, "v2")
    server.reply(200, result("open", 12_345_678_799_999, 1, app="thanks"))
    update = client.pay(ch, 1)
    req = server.last
    assert (req.method, str(req.url)) == ("PUT", SEED_URL)
    pd = json.loads(req.content)["payment_data"]
    assert (pd["change_value"], pd["signature_data"], pd["sighash_flag"]) == (12_345_678_799_999, PAY2_SIG, "83")
    assert pd["change_address"] == FUNDING_ADDRESS and pd["funding_txid"] == TXID
    assert update.channel.change_value == 12_345_678_799_999
    assert update.result.application_data == "thanks"


def test_pay_v1_puts_the_payload_on_the_channel_url(client: PaychanClient, server: Recorder) -> None:
    ch = open_channel(client, server, "v1")
    server.reply(200, result("open", ch.change_value - 10, 10, app=None))
    update = client.pay(ch, 10)
    req = server.last
    assert req.method == "PUT" and req.content == b""
    payload = req.url.params["payment"]
    assert str(req.url) == f"{V1_URL}?payment={payload}"
    parsed = parse_v1_payload(payload)
    assert parsed.change_value == ch.change_value - 10 and parsed.signature.sighash == SINGLE_ACP
    assert update.channel.signature == parsed.signature.der


def test_pay_v1_everything_is_vector_d_exhausting_payment(client: PaychanClient, server: Recorder) -> None:
    ch = open_channel(client, server, "v1")
    server.reply(200, result("closed", 0, ch.change_value, txid=SETTLEMENT_TXID, app=None))
    update = client.pay(ch, ch.change_value)
    assert str(server.last.url) == f"{V1_URL}?payment={V1_EXHAUST_PAYLOAD}"
    assert (update.channel.change_value, update.channel.sighash) == (0, NONE_ACP)
    assert update.channel.status == "closed" and update.channel.settlement_txid == SETTLEMENT_TXID
    with pytest.raises(ChannelStateError):
        client.pay(update.channel, 1)


@pytest.mark.parametrize("left", [1, 699])
def test_pay_below_dust_gives_everything_with_sighash_none(client: PaychanClient, server: Recorder,
                                                           left: int) -> None:
    ch = open_channel(client, server, "v2")
    server.reply(200, result("closed", 0, ch.change_value))
    update = client.pay(ch, ch.change_value - left)
    pd = json.loads(server.last.content)["payment_data"]
    assert (pd["change_value"], pd["sighash_flag"]) == (0, "82")
    # NONE|ACP digest does not depend on the change output: same DER as vector D's exhausting payment
    assert pd["signature_data"] == parse_v1_payload(V1_EXHAUST_PAYLOAD).signature.der.hex()
    verifier = PaymentVerifier(CLIENT_KEY.public_key, OUTPOINT, ch.redeem_script)
    verifier.verify(update.channel.latest_signature, 0, b"")
    assert update.channel.status == "closed"


def test_pay_leaving_exactly_dust_keeps_sighash_single(client: PaychanClient, server: Recorder) -> None:
    ch = open_channel(client, server, "v2")
    server.reply(200, result("open", 700, ch.change_value - 700))
    client.pay(ch, ch.change_value - 700)
    pd = json.loads(server.last.content)["payment_data"]
    assert (pd["change_value"], pd["sighash_flag"]) == (700, "83")


def test_pay_v2_3_sends_compact_payment_with_secret(client: PaychanClient, server: Recorder) -> None:
    ch = open_channel(client, server, "v2.3")
    server.reply(200, result("open", ch.change_value - 5, 5, txid=""))
    update = client.pay(ch, 5, application_data="order-42")
    req = server.last
    assert (req.method, str(req.url)) == ("PUT", f"{V23_URL}?secret={V23_SECRET}")
    body = json.loads(req.content)
    assert body == {"payment_data": {"change_value": ch.change_value - 5,
                                     "signature_data": update.channel.signature.hex() + "83"},
                    "application_data": "order-42"}


def test_pay_more_than_left_is_refused_locally(client: PaychanClient, server: Recorder) -> None:
    ch = open_channel(client, server, "v2")
    with pytest.raises(ChannelStateError, match="left"):
        client.pay(ch, ch.change_value + 1)
    with pytest.raises(InvalidArgument):
        client.pay(ch, -1)
    assert len(server.requests) == 1


def test_rejected_payment_leaves_the_channel_unchanged(client: PaychanClient, server: Recorder) -> None:
    ch = open_channel(client, server, "v2")
    server.reply(400, {"type": "payment_error", "code": "dust_limit", "message": "server dust limit of 700 ..."},
                 reason="server dust limit of 700 ...")
    with pytest.raises(ServerRejected) as err:
        client.pay(ch, 5)
    assert (err.value.status, err.value.code) == (400, "dust_limit")
    assert err.value.server_message.startswith("server dust limit")


def test_v1_error_message_comes_from_the_reason_phrase(client: PaychanClient, server: Recorder) -> None:
    ch = open_channel(client, server, "v1")
    server.reply(404, reason="No such channel")
    with pytest.raises(ServerRejected) as err:
        client.pay(ch, 5)
    assert (err.value.status, err.value.server_message, err.value.code) == (404, "No such channel", None)


def test_transport_failure_is_a_transport_error(client: PaychanClient, server: Recorder) -> None:
    ch = open_channel(client, server, "v2")

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    server.responses.append(refuse)
    with pytest.raises(TransportError, match="connection refused"):
        client.pay(ch, 5)


# -- close ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [202, 200])
def test_close_v1_deletes_with_the_latest_payment(client: PaychanClient, server: Recorder, status: int) -> None:
    ch = open_channel(client, server, "v1")
    server.reply(status, result("closed", ch.change_value, 0, txid=SETTLEMENT_TXID, app=None))
    update = client.close(ch)
    assert (server.last.method, str(server.last.url)) == ("DELETE", f"{V1_URL}?payment={V1_OPEN_PAYLOAD}")
    assert update.settlement_txid == SETTLEMENT_TXID and update.channel.status == "closed"
    assert update.channel.change_value == ch.change_value


def test_close_v2_seed_is_vector_b_closing_payment(client: PaychanClient, server: Recorder) -> None:
    ch = open_channel(client, server, "v2")
    server.reply(200, result("open", 12_345_678_799_999, 1))
    ch = client.pay(ch, 1).channel
    server.reply(200, result("closed", 12_345_678_799_999, 0, txid=SETTLEMENT_TXID))
    update = client.close(ch)
    req = server.last
    assert (req.method, str(req.url)) == ("PUT", SEED_URL + "/close")
    body = json.loads(req.content)
    pd = body["payment_data"]
    assert (pd["change_value"], pd["change_address"], pd["sighash_flag"]) == (12_345_678_799_999, REFUND_ADDRESS, "83")
    assert pd["signature_data"] == CLOSE_SIG
    assert body["application_data"] == ""
    assert update.settlement_txid == SETTLEMENT_TXID
    assert update.channel.change_address == REFUND_ADDRESS


def test_close_v2_seed_refuses_a_fee(client: PaychanClient, server: Recorder) -> None:
    ch = open_channel(client, server, "v2")
    with pytest.raises(InvalidArgument):
        client.close(ch, fee=1000)


def test_close_v2_3_pays_the_fee_to_the_refund_address(client: PaychanClient, server: Recorder) -> None:
    ch = open_channel(client, server, "v2.3")
    server.reply(200, result("closed", ch.change_value - 1000, 1000, txid=SETTLEMENT_TXID))
    update = client.close(ch, fee=1000)
    req = server.last
    assert (req.method, str(req.url)) == ("PUT", f"{V23_URL}/close?secret={V23_SECRET}")
    pd = json.loads(req.content)["payment_data"]
    assert pd["change_value"] == ch.change_value - 1000 and pd["change_address"] == REFUND_ADDRESS
    assert "sighash_flag" not in pd and pd["signature_data"].endswith("83")
    assert update.channel.settlement_txid == SETTLEMENT_TXID


def test_close_to_another_refund_address(client: PaychanClient, server: Recorder) -> None:
    ch = open_channel(client, server, "v2")
    other = "mm9mm96b8bZRBacaAvY5MEeDd6HW46qFcY"
    server.reply(200, result("closed", ch.change_value, 0, txid=SETTLEMENT_TXID))
    client.close(ch, other)
    assert json.loads(server.last.content)["payment_data"]["change_address"] == other


def test_close_without_settlement_txid_is_a_bad_response(client: PaychanClient, server: Recorder) -> None:
    ch = open_channel(client, server, "v2")
    server.reply(200, result("closed", ch.change_value, 0, txid=None))
    with pytest.raises(BadResponse, match="settlement_txid"):
        client.close(ch)


def test_refund_address_on_another_network_is_refused(client: PaychanClient, server: Recorder) -> None:
    ch = open_channel(client, server, "v2")
    with pytest.raises(InvalidArgument, match="network"):
        client.close(ch, "1M8iwBs5XD7ZJQJCDC7BdLEpSivRQZJ2Hg")


def test_channel_from_another_network_is_refused(client: PaychanClient, server: Recorder) -> None:
    from paychan_common.network import Network

    ch = open_channel(client, server, "v2")
    with pytest.raises(InvalidArgument, match="network"):
        client.pay(replace(ch, network=Network.REGTEST), 1)
