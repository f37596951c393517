"""Fuzz the v2.3.0 inputs (spec 6.3-6.4): the compact and full JSON payments (DER plus sighash byte in
signature_data), and the path and query values that name a channel (txid, vout, secret)."""

from __future__ import annotations

import atheris

from tests.fuzz import INSTRUMENTED

with atheris.instrument_imports(include=INSTRUMENTED):
    from paychan_common.wire_v2 import parse_v2_payment, payment_to_json
    from paychan_server.api.params import parse_outpoint, parse_secret
    from tests.fuzz.common import NOT_JSON, json_input, main, rejects_cleanly, text_input
    from tests.fuzz.seeds import v23_bodies

SEEDS = [*v23_bodies(), b'"' + b"ab" * 32 + b'"', b"11" * 32 + b"/0"]


def harness(data: bytes) -> None:
    """One input: as a body, and as the query `secret` and the path `{txid}/{vout}`."""
    body = json_input(data)
    if body is not NOT_JSON:
        payment = rejects_cleanly(lambda: parse_v2_payment(body))
        if payment is not None:
            again = parse_v2_payment(payment_to_json(payment, seed_form=False))
            assert again.change_value == payment.change_value and again.signature == payment.signature
    text = text_input(data)
    secret = rejects_cleanly(lambda: parse_secret(text))
    assert secret is None or len(secret) == 32
    txid, _, vout = text.partition("/")
    op = rejects_cleanly(lambda: parse_outpoint(txid, vout))
    assert op is None or op.display_txid == txid.lower()


if __name__ == "__main__":
    main(harness, SEEDS)
