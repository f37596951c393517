"""Fuzz transaction and outpoint parsing: a parsed transaction re-serializes to exactly its input bytes."""

from __future__ import annotations

import atheris

from tests.fuzz import INSTRUMENTED

with atheris.instrument_imports(include=INSTRUMENTED):
    from paychan_common.tx import OutPoint, Transaction
    from tests.fuzz.common import main, rejects_cleanly

SEEDS = [bytes.fromhex(
    "0100000001" + "11" * 32 + "00000000" + "00" + "ffffffff" + "02" + "e803000000000000" + "1976a914" + "22" * 20
    + "88ac" + "d007000000000000" + "17a914" + "33" * 20 + "87" + "00000000"), b"\x01\x00\x00\x00\x00", b""]


def harness(data: bytes) -> None:
    """One input."""
    tx = rejects_cleanly(lambda: Transaction.parse(data))
    if tx is not None:
        assert tx.serialize() == data, data.hex()
        assert len(tx.txid) == 64
    op = rejects_cleanly(lambda: OutPoint.parse(data))
    if op is not None:
        assert op.serialize() == data


if __name__ == "__main__":
    main(harness, SEEDS)
