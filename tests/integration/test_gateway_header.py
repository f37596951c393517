"""The payment header, the request binding and the headers the upstream is given (paychan_gateway)."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import make_mocked_request

from paychan_common.errors import InvalidInput, PaychanError
from paychan_gateway.answers import gateway_status
from paychan_gateway.config import RouteConfig
from paychan_gateway.header import format_payment_header, has_payment, parse_payment_header, request_key
from paychan_gateway.proxy import upstream_headers, upstream_url
from tests.support.channels import TestChannel

EXP = 2_000_000_000


def _valid() -> tuple[TestChannel, str]:
    ch = TestChannel(EXP)
    change = ch.funding_value - 5000
    sig = ch.sign(change)
    secret = ch.secret(ch.funding_value - 100_000)
    return ch, format_payment_header(ch.op.display_txid, ch.op.vout, secret, change, sig.script_sig_push.hex())


def test_a_valid_header_parses_into_the_channel_and_the_compact_payment() -> None:
    ch, value = _valid()
    h = parse_payment_header(value)
    assert h.outpoint == ch.op and h.payment.change_value == ch.funding_value - 5000
    assert h.payment.signature.sighash == 0x83 and h.channel == f"{ch.op.display_txid}:{ch.op.vout}"
    assert has_payment(value) and has_payment("paychan x") and not has_payment("Bearer abc")


@pytest.mark.parametrize("mangle", [
    lambda v: v.replace("Paychan", "Bearer"),
    lambda v: v + " extra",
    lambda v: v.rsplit(" ", 1)[0],
    lambda v: v.replace(":", ";", 1),
    lambda v: v[:-4],  # signature cut short
    lambda v: v.rsplit(" ", 1)[0] + " -5:00",
    lambda v: v.rsplit(" ", 1)[0] + " ١٢٣:00",  # non-ASCII digits
    lambda v: v + "0" * 600,
])
def test_malformed_headers_are_400_with_a_reason(mangle: object) -> None:
    _, value = _valid()
    with pytest.raises(PaychanError) as info:
        parse_payment_header(mangle(value))  # type: ignore[operator]
    assert gateway_status(info.value) == 400 and info.value.message


def test_request_key_binds_method_target_and_idempotency_key() -> None:
    keys = {request_key("GET", "/a?x=1", None), request_key("POST", "/a?x=1", None),
            request_key("GET", "/a?x=2", None), request_key("GET", "/a?x=1", "k")}
    assert len(keys) == 4
    assert request_key("GET", "/a", "k") == request_key("GET", "/a", "k")
    with pytest.raises(InvalidInput):
        request_key("GET", "/a", "x" * 256)


ROUTE = RouteConfig.model_validate({"name": "api", "prefix": "/api/", "strip_prefix": True,
                                    "upstream": "http://127.0.0.1:9/base", "price": {"per_request": 5}})


def test_the_upstream_gets_no_client_forgery_and_no_payment() -> None:
    _, value = _valid()
    req = make_mocked_request("GET", "/api/x/y?q=1", headers={
        "Authorization": value, "Paychan-Channel": "forged", "paychan-amount-paid": "999", "X-Forwarded-For": "1.2.3.4",
        "Connection": "keep-alive, X-Secret-Hop", "X-Secret-Hop": "1", "Accept": "application/json"})
    out = upstream_headers(req, ROUTE, None)
    assert out["Accept"] == "application/json" and out["Paychan-Route"] == "api"
    assert "Authorization" not in out and "Paychan-Channel" not in out and "Paychan-Amount-Paid" not in out
    assert "X-Secret-Hop" not in out and "Connection" not in out and out["X-Forwarded-For"] != "1.2.3.4"
    assert upstream_url(req, ROUTE) == "http://127.0.0.1:9/base/x/y?q=1"
    bearer = make_mocked_request("GET", "/api/x", headers={"Authorization": "Bearer upstream-own"})
    assert upstream_headers(bearer, ROUTE, None)["Authorization"] == "Bearer upstream-own"
