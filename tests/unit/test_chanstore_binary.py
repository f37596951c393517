"""ChanStore's binary `POST /payments` codec (chan_store.contract): round trips, and nothing malformed is
accepted or raises anything but InvalidInput."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from chan_store.contract import (
    MAX_SIGNATURE_BYTES,
    MAX_TIME,
    PaymentApplied,
    PaymentItem,
    PaymentResult,
    decode_payment_results,
    decode_payments_request,
    encode_payment_results,
    encode_payments_request,
)
from paychan_common.errors import ERROR_CLASSES, InvalidInput, PaychanError
from paychan_common.state import Status
from paychan_common.tx import OutPoint

from .helpers import amounts, fast, mutate, only_typed_errors, outpoints

times = st.integers(0, MAX_TIME)
items = st.builds(PaymentItem, outpoint=outpoints(), change_value=amounts(),
                  der=st.binary(min_size=1, max_size=MAX_SIGNATURE_BYTES), sighash=st.integers(0, 255),
                  now=st.one_of(st.none(), times))
errors = st.builds(lambda cls, code, message: ERROR_CLASSES[cls](message, code=code),
                   st.sampled_from(sorted(ERROR_CLASSES)), st.text(max_size=40), st.text(max_size=200))
results = st.one_of(st.builds(PaymentApplied, amounts(), amounts(), st.sampled_from(list(Status))), errors)


def _same_result(a: PaymentResult, b: PaymentResult) -> bool:
    if isinstance(a, PaychanError) and isinstance(b, PaychanError):
        return (type(a), a.code, a.message) == (type(b), b.code, b.message)
    return a == b


@fast(300)
@given(batch=st.lists(items, max_size=30), now=times)
def test_request_round_trip(batch: list[PaymentItem], now: int) -> None:
    data = encode_payments_request(batch, now)
    decoded_now, decoded = decode_payments_request(data)
    assert decoded_now == now and len(decoded) == len(batch)
    for got, item in zip(decoded, batch, strict=True):
        assert (got.outpoint, got.change_value, got.der, got.sighash) == (
            item.outpoint, item.change_value, item.der, item.sighash)
        assert (got.now if got.now is not None else now) == (item.now if item.now is not None else now)
    for cut in range(len(data)):  # every truncation is refused
        assert isinstance(only_typed_errors(decode_payments_request, data[:cut]), InvalidInput)


@fast(300)
@given(answer=st.lists(results, max_size=30))
def test_results_round_trip(answer: list[PaymentResult]) -> None:
    data = encode_payment_results(answer)
    decoded = decode_payment_results(data)
    assert len(decoded) == len(answer)
    assert all(_same_result(a, b) for a, b in zip(decoded, answer, strict=True))
    for cut in range(len(data)):
        assert isinstance(only_typed_errors(decode_payment_results, data[:cut]), InvalidInput)


def test_long_error_messages_are_cut_on_a_character_boundary() -> None:
    err = InvalidInput("é" * 40_000, code="x")
    decoded = decode_payment_results(encode_payment_results([err]))[0]
    assert isinstance(decoded, InvalidInput) and decoded.message == "é" * (0xFFFF // 2)


_OUTPOINT = OutPoint(bytes(range(32)), 3)
_VALID = encode_payments_request([PaymentItem(_OUTPOINT, 5, b"\x30" * 70, 0x83, None),
                                  PaymentItem(OutPoint(bytes(32), 0), 9, b"\x30", 0x82, 7)], 1_700_000_000)


def _normal(now: int, batch: list[PaymentItem]) -> list[tuple[object, ...]]:
    return [(i.outpoint, i.change_value, i.der, i.sighash, now if i.now is None else i.now) for i in batch]


@fast(500)
@given(data=st.one_of(st.binary(max_size=300), mutate(_VALID)))
def test_garbage_requests_are_refused_cleanly(data: bytes) -> None:
    err = only_typed_errors(decode_payments_request, data)
    assert err is None or isinstance(err, InvalidInput)
    if err is None:  # what is accepted re-encodes to the same batch
        now, decoded = decode_payments_request(data)
        assert _normal(*decode_payments_request(encode_payments_request(decoded, now))) == _normal(now, decoded)


@fast(500)
@given(data=st.one_of(st.binary(max_size=300), mutate(encode_payment_results(
    [PaymentApplied(5, 7, Status.OPEN), InvalidInput("no", code="n")]))))
def test_garbage_answers_are_refused_cleanly(data: bytes) -> None:
    err = only_typed_errors(decode_payment_results, data)
    assert err is None or isinstance(err, InvalidInput)


def test_limits() -> None:
    item = PaymentItem(_OUTPOINT, 5, b"\x30", 1, None)
    body = bytearray(encode_payments_request([item], 1))
    body[0] = 2
    assert only_typed_errors(decode_payments_request, bytes(body)).code == "bad_binary"  # type: ignore[union-attr]
    body[0] = 1
    body[9:13] = (10_001).to_bytes(4, "little")
    assert only_typed_errors(decode_payments_request, bytes(body)).code == "too_many_items"  # type: ignore[union-attr]
    body[9:13] = (1).to_bytes(4, "little")
    body[1:9] = (2**63).to_bytes(8, "little")  # now beyond a signed 64-bit time
    assert isinstance(only_typed_errors(decode_payments_request, bytes(body)), InvalidInput)
    body[1:9] = (1).to_bytes(8, "little")
    body[13 + 36 : 13 + 44] = (21 * 10**14 + 1).to_bytes(8, "little")  # change beyond MAX_MONEY
    assert isinstance(only_typed_errors(decode_payments_request, bytes(body)), InvalidInput)
