"""Fuzz strict DER signature parsing (BIP66; spec 4.3): parse_der accepts exactly what encode_der writes."""

from __future__ import annotations

import atheris

from tests.fuzz import INSTRUMENTED

with atheris.instrument_imports(include=INSTRUMENTED):
    from paychan_common.der import der_length, encode_der, normalize_der, parse_der
    from tests.fuzz.common import main, rejects_cleanly

SEEDS = [bytes.fromhex("3044022024" + "0f74002b19c3cdaeb8d89ae0335e7041cf0197933ca9ca908a02dc8733e910"
                       "02207246d58dcb2d89135504ddccc04f0257cdd2bd7958b46696eca4228cda8a714b"),
         bytes.fromhex("3006020101020101"), b"\x30", b""]


def harness(data: bytes) -> None:
    """One input."""
    rejects_cleanly(lambda: der_length(data))
    parsed = rejects_cleanly(lambda: parse_der(data))
    if parsed is not None:
        r, s = parsed
        assert encode_der(r, s) == data, data.hex()  # strict: one encoding per (r, s)
    normal = rejects_cleanly(lambda: normalize_der(data))
    if normal is not None:
        r, s = parse_der(normal)
        assert normalize_der(normal) == normal  # idempotent, low-S
        assert parsed is None or r == parsed[0]


if __name__ == "__main__":
    main(harness, SEEDS)
