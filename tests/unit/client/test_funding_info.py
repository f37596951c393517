"""funding_info: the URL of each route family and the address check (spec 3.3, 6.2, 6.3, 6.4)."""

from __future__ import annotations

import httpx
import pytest

from paychan_client import AddressMismatch, BadResponse, PaychanClient
from paychan_common.keys import PublicKey

from .vectors import (
    CLIENT_KEY,
    CLIENT_PUB,
    ENDPOINT,
    EXP,
    FUNDING_ADDRESS,
    FUNDING_ADDRESS_MAINNET,
    REDEEM,
    SERVER_PUB,
    Recorder,
    funding_info_body,
)

PK = CLIENT_KEY.public_key


def test_v2_seed_url_and_fields(client: PaychanClient, server: Recorder) -> None:
    server.reply(200, funding_info_body("v2"))
    info = client.funding_info(PK, EXP, "v2")
    assert server.last.method == "GET"
    assert str(server.last.url) == f"{ENDPOINT}/v2/funding/{CLIENT_PUB}/{EXP}/info"
    assert info.funding_address == FUNDING_ADDRESS
    assert info.redeem_script.hex() == REDEEM
    assert info.server_pubkey == PublicKey.from_hex(SERVER_PUB)
    assert (info.open_price, info.dust_limit, info.min_duration_hours) == (100_000, 700, 48)


def test_v1_url_is_query_string(client: PaychanClient, server: Recorder) -> None:
    server.reply(200, funding_info_body("v1"),
                 headers={"Location": f"/v1/channels/new?client_pubkey={CLIENT_PUB}&exp_time={EXP}"})
    info = client.funding_info(PK, EXP, "v1")
    assert str(server.last.url) == f"{ENDPOINT}/v1/fundingInfo?client_pubkey={CLIENT_PUB}&exp_time={EXP}"
    assert info.dust_limit == 700  # v1 FundingInfo has none: the v1 server's constant
    assert info.open_price == 83_920
    assert info.open_url == f"{ENDPOINT}/v1/channels/new?client_pubkey={CLIENT_PUB}&exp_time={EXP}"


def test_v2_3_uses_rbpcp_api_head_order(client: PaychanClient, server: Recorder) -> None:
    server.reply(200, funding_info_body("v2.3"))
    info = client.funding_info(PK, EXP, "v2.3")
    assert str(server.last.url) == f"{ENDPOINT}/v2/funding/{CLIENT_PUB}/{EXP}/info"
    assert info.funding_address == FUNDING_ADDRESS


@pytest.mark.parametrize("family", ["v1", "v2", "v2.3"])
def test_wrong_funding_address_is_refused(client: PaychanClient, server: Recorder, family: str) -> None:
    server.reply(200, funding_info_body(family, funding_address_copy=FUNDING_ADDRESS_MAINNET))
    with pytest.raises(AddressMismatch, match="differs"):
        client.funding_info(PK, EXP, family)


def test_address_of_another_server_key_is_refused(client: PaychanClient, server: Recorder) -> None:
    other = "03b5ad36dca793edf4664cd51b4d3fb41d35d0bd92c60f62ed08b2b55fdb2c5a6d"
    server.reply(200, funding_info_body("v2", server_pubkey=other))  # our address, another key
    with pytest.raises(AddressMismatch):
        client.funding_info(PK, EXP, "v2")


def test_wrong_redeem_script_is_refused(client: PaychanClient, server: Recorder) -> None:
    server.reply(200, funding_info_body("v2", redeem_script_copy=REDEEM[:-2] + "ad"))
    with pytest.raises(AddressMismatch, match="redeem script"):
        client.funding_info(PK, EXP, "v2")


def test_redeem_script_copy_accepts_upper_case(client: PaychanClient, server: Recorder) -> None:
    server.reply(200, funding_info_body("v2", redeem_script_copy=REDEEM.upper()))
    assert client.funding_info(PK, EXP, "v2").redeem_script.hex() == REDEEM


def test_v2_without_dust_limit_is_a_bad_response(client: PaychanClient, server: Recorder) -> None:
    body = funding_info_body("v2")
    del body["dust_limit"]
    server.reply(200, body)
    with pytest.raises(BadResponse, match="dust_limit"):
        client.funding_info(PK, EXP, "v2")


def test_invalid_server_key_is_a_bad_response(client: PaychanClient, server: Recorder) -> None:
    server.reply(200, funding_info_body("v2", server_pubkey="04" + "00" * 32))
    with pytest.raises(BadResponse):
        client.funding_info(PK, EXP, "v2")


def test_non_json_is_a_bad_response(client: PaychanClient, server: Recorder) -> None:
    server.responses.append(httpx.Response(200, content=b"<html>"))
    with pytest.raises(BadResponse, match="not JSON"):
        client.funding_info(PK, EXP, "v2")
