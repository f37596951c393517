"""Fuzz ChanStore's binary `POST /payments` codec (chan_store.contract): the request body as the app reads
it and, for what it accepts, the ChannelStore operation it feeds (over MemoryStorage); the binary answer as
the client reads it. Every refusal is an InvalidInput; what is accepted re-encodes to the same batch."""

from __future__ import annotations

import atheris

from tests.fuzz import INSTRUMENTED

with atheris.instrument_imports(include=INSTRUMENTED):
    from chan_store.contract import (
        PaymentApplied,
        PaymentItem,
        decode_payment_results,
        decode_payments_request,
        encode_payment_results,
        encode_payments_request,
    )
    from paychan_common.errors import InvalidInput, PaychanError
    from tests.fuzz.common import main
    from tests.fuzz.sample_store import run, store
    from tests.fuzz.seeds import chanstore_binary_bodies

SEEDS = [bytes([i]) + body for body in chanstore_binary_bodies() for i in range(2)]


def _normal(now: int, items: list[PaymentItem]) -> list[tuple[object, ...]]:
    return [(i.outpoint, i.change_value, i.der, i.sighash, now if i.now is None else i.now) for i in items]


def _key(result: object) -> tuple[object, ...]:
    if isinstance(result, PaychanError):
        return type(result).__name__, result.code, result.message
    assert isinstance(result, PaymentApplied)
    return result.value_received, result.change_value, result.status


def harness(data: bytes) -> None:
    """One input: byte 0 picks request (even) or answer (odd)."""
    if not data:
        return
    body = data[1:]
    if data[0] % 2 == 0:
        try:
            now, items = decode_payments_request(body)
        except InvalidInput:
            return
        assert _normal(*decode_payments_request(encode_payments_request(items, now))) == _normal(now, items)
        results = run(store().apply_payments(items[:50], now))
        assert len(results) == len(items[:50])
        again = decode_payment_results(encode_payment_results(results))
        assert [_key(r) for r in again] == [_key(r) for r in results]
    else:
        try:
            answer = decode_payment_results(body)
        except InvalidInput:
            return
        assert [_key(r) for r in decode_payment_results(encode_payment_results(answer))] == [_key(r) for r in answer]


if __name__ == "__main__":
    main(harness, SEEDS)
