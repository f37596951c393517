"""The public wire messages (spec 6.1-6.4): the hand-fast serializers of the payment path equal the models'
own dump, key order included, on any result; the client's tolerances (spec 6.5); the error body."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from paychan_common.amount import MAX_MONEY
from paychan_common.errors import ERROR_CLASSES
from paychan_common.messages import (
    V1_RESULT_FIELDS,
    ErrorBody,
    FundingInfo,
    PaymentResult,
    result_json,
    result_json_v1,
)

TXID = "153c8e2acd788e918f101831c17837a34da571312ad561ab6359767bb3926b5b"
results = st.builds(
    PaymentResult,
    channel_status=st.sampled_from(["open", "closed"]),
    channel_value_left=st.integers(0, MAX_MONEY),
    value_received=st.integers(0, MAX_MONEY),
    settlement_txid=st.none() | st.text("0123456789abcdef", min_size=64, max_size=64),
    application_data=st.text(max_size=50),
)


@given(results)
def test_fast_serializers_equal_the_model_dump(r: PaymentResult) -> None:
    full = r.model_dump()
    assert orjson.dumps(result_json(r)) == orjson.dumps(full)
    v1 = {k: full[k] for k in V1_RESULT_FIELDS}
    assert orjson.dumps(result_json_v1(r)) == orjson.dumps(v1)
    assert list(result_json_v1(r)) == list(V1_RESULT_FIELDS) == [k for k in full if k != "application_data"]


def test_result_json_is_a_copy() -> None:
    r = PaymentResult(channel_status="open", channel_value_left=5, value_received=1, settlement_txid=None)
    result_json(r)["value_received"] = 99
    assert r.value_received == 1


def test_payment_result_wire_bytes() -> None:
    """The exact bytes of the README walk-through's v1 answer and of a v2 one."""
    r = PaymentResult(channel_status="open", channel_value_left=12345678815080, value_received=1000,
                      settlement_txid=None)
    assert orjson.dumps(result_json_v1(r)) == (b'{"channel_status":"open","channel_value_left":12345678815080,'
                                               b'"value_received":1000,"settlement_txid":null}')
    assert orjson.dumps(result_json(r)).endswith(b'"settlement_txid":null,"application_data":""}')


def test_client_tolerances() -> None:
    """Spec 6.5: "" or null mean no settlement txid; hex in upper case is read in lower; null app data is ""."""
    body = {"channel_status": "closed", "channel_value_left": 0, "value_received": 0,
            "settlement_txid": TXID.upper(), "application_data": None}
    r = PaymentResult.model_validate(body)
    assert (r.settlement_txid, r.application_data, r.closed) == (TXID, "", True)
    assert PaymentResult.model_validate({**body, "settlement_txid": ""}).settlement_txid is None


@pytest.mark.parametrize("bad", [
    {"channel_status": "gone"}, {"channel_value_left": -1}, {"value_received": True},
    {"settlement_txid": "ab"}, {"channel_value_left": MAX_MONEY + 1},
])
def test_payment_result_refuses(bad: dict[str, object]) -> None:
    body = {"channel_status": "open", "channel_value_left": 1, "value_received": 0, "settlement_txid": None, **bad}
    with pytest.raises(ValidationError):
        PaymentResult.model_validate(body)


def test_funding_info_omits_the_script_copy_when_unset() -> None:
    common = {"server_pubkey": "02" + "11" * 32, "dust_limit": 700, "funding_address_copy": "2N",
              "open_price": 1, "funding_tx_min_conf": 0, "settlement_period_hours": 1, "min_duration_hours": 2}
    assert "redeem_script_copy" not in FundingInfo(**common).wire()
    with_script = FundingInfo(**common, redeem_script_copy="63").wire()
    assert list(with_script)[:4] == ["server_pubkey", "dust_limit", "funding_address_copy", "redeem_script_copy"]


@pytest.mark.parametrize("cls", ERROR_CLASSES.values())
def test_every_error_has_a_valid_body(cls: type) -> None:
    err = cls("boom")
    assert ErrorBody(type=err.kind, code=err.code, message=err.message).model_dump() == {
        "type": err.kind, "code": err.code, "message": "boom"}
