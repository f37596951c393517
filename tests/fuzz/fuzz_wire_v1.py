"""Fuzz the v1 payment payload (spec 5.1): base64url text -> Payment; every accepted payload re-encodes to
itself (unpadded form) and parses to the same payment."""

from __future__ import annotations

import atheris

from tests.fuzz import INSTRUMENTED

with atheris.instrument_imports(include=INSTRUMENTED):
    from paychan_common.wire_v1 import decode_v1_bytes, encode_v1_payload, parse_v1_payload
    from tests.fuzz.common import main, rejects_cleanly, text_input

SEEDS = [b"UOPMczoLAAAwRAIgJA90ACsZhcPNzrjYmuAzXnBBzwGXk8ypII4CnIcz6RACIHJG1Y3LLXkTVQTdzMBPAlfN0r15WLRmluykIoNainFLgw",
         b"aN_MczoLAAAwRQIhANnQ2H8kja2UUm2tOhPfc_fc1PNAmGBNySkC0mC219HNAiBmbxIhZilg5IvAqwb7BwvnAb56elfACqNV09IyFul86IM",
         b"AAAAAAAAAAA=", b""]


def harness(data: bytes) -> None:
    """One input."""
    text = text_input(data)
    rejects_cleanly(lambda: decode_v1_bytes(text))
    payment = rejects_cleanly(lambda: parse_v1_payload(text))
    if payment is None:
        return
    sig = payment.signature
    again = encode_v1_payload(payment.change_value, sig.der, sig.sighash)
    assert parse_v1_payload(again) == payment, (text, again)


if __name__ == "__main__":
    main(harness, SEEDS)
