"""The fast sighash template and legacy_sighash against python-bitcoinlib's SignatureHash (spec 4.3)."""

from __future__ import annotations

import pytest
from bitcoin.core import CTransaction
from bitcoin.core.script import CScript, SignatureHash
from hypothesis import given
from hypothesis import strategies as st

from paychan_common.channel import PaymentVerifier, payment_transaction
from paychan_common.errors import InvalidInput, InvalidPayment
from paychan_common.sighash import (
    NONE_ACP,
    SIGHASH_ALL,
    SINGLE_ACP,
    PaymentSighashTemplate,
    legacy_sighash,
)
from paychan_common.tx import OutPoint, Transaction, TxIn, TxOut
from paychan_runtime.http_errors import http_status

from .helpers import Chan, addresses, amounts, bitcoinlib_sighash, chans, fast, networks, outpoints, vector_b_chan

# change scripts: any address kind of any network, or arbitrary bytes (the digest must not care)
change_scripts = st.one_of(
    st.binary(max_size=100),
    networks().flatmap(addresses).map(lambda a: a.script_pubkey),
)
OUTPOINT = OutPoint(bytes(range(32)), 7)


def _bl(script: bytes, tx: Transaction, hashtype: int) -> bytes:
    """python-bitcoinlib's cooked SignatureHash (raises on the SIGHASH_SINGLE bug case)."""
    return bytes(SignatureHash(CScript(script), CTransaction.deserialize(tx.serialize()), 0, hashtype))


@pytest.mark.parametrize("hashtype", [SINGLE_ACP, NONE_ACP], ids=["single-acp", "none-acp"])
@fast(60)
@given(chan=chans(), change=amounts(), change_script=change_scripts)
def test_payment_templates_match_bitcoinlib(hashtype: int, chan: Chan, change: int, change_script: bytes) -> None:
    tx = payment_transaction(chan.outpoint, change, change_script)
    expected = _bl(chan.redeem_script, tx, hashtype)
    assert chan.verifier.digest(change, change_script, hashtype) == expected
    template = PaymentSighashTemplate.build(chan.outpoint.serialize(), chan.redeem_script)
    by_template = template.digest_single(change, change_script) if hashtype == SINGLE_ACP else template.digest_none()
    assert by_template == expected
    assert legacy_sighash(tx, 0, chan.redeem_script, hashtype) == expected
    if hashtype == NONE_ACP:  # outputs are not committed to: any other change gives the same digest
        assert chan.verifier.digest(0, b"", NONE_ACP) == expected


@fast(60)
@given(chan=chans(), outs=st.lists(st.tuples(amounts(), st.binary(max_size=60)), min_size=1, max_size=3))
def test_sighash_all_matches_bitcoinlib(chan: Chan, outs: list[tuple[int, bytes]]) -> None:
    """The server's SIGHASH_ALL over a settlement-shaped tx (1 input, 1-3 outputs)."""
    tx = Transaction(1, (TxIn(chan.outpoint, b""),), tuple(TxOut(v, s) for v, s in outs), 0)
    assert legacy_sighash(tx, 0, chan.redeem_script, SIGHASH_ALL) == _bl(chan.redeem_script, tx, SIGHASH_ALL)


@fast(60)
@given(chan=chans(), change=amounts(), change_script=st.binary(max_size=40))
def test_digest_changes_with_every_committed_field(chan: Chan, change: int, change_script: bytes) -> None:
    """SINGLE|ACP commits to the change value and script; ALL vs SINGLE vs NONE all differ."""
    d = chan.verifier.digest(change, change_script, SINGLE_ACP)
    other_value = change + 1 if change < 2**63 else change - 1
    assert chan.verifier.digest(other_value, change_script, SINGLE_ACP) != d
    assert chan.verifier.digest(change, change_script + b"\x00", SINGLE_ACP) != d
    assert chan.verifier.digest(change, change_script, NONE_ACP) != d


@st.composite
def general_txs(draw: st.DrawFn) -> tuple[Transaction, int]:
    """Random legacy transactions with 1-4 inputs and 0-4 outputs, and an input index."""
    ins = draw(st.lists(st.builds(TxIn, outpoints(), st.binary(max_size=30), st.integers(0, 2**32 - 1)),
                        min_size=1, max_size=4))
    outs = draw(st.lists(st.builds(TxOut, st.integers(0, 2**63 - 1), st.binary(max_size=30)), max_size=4))
    tx = Transaction(draw(st.integers(0, 2**31 - 1)), tuple(ins), tuple(outs), draw(st.integers(0, 2**32 - 1)))
    return tx, draw(st.integers(0, len(ins) - 1))


@fast(150)
@given(chan=chans(), txi=general_txs(), hashtype=st.integers(0, 255))
def test_legacy_sighash_general_matches_bitcoinlib(chan: Chan, txi: tuple[Transaction, int], hashtype: int) -> None:
    """Every hashtype byte, several inputs/outputs, SIGHASH_SINGLE's out-of-range 'one' case included."""
    tx, index = txi
    script = chan.redeem_script
    assert legacy_sighash(tx, index, script, hashtype) == bitcoinlib_sighash(tx, index, script, hashtype)


def test_sighash_single_bug_returns_one() -> None:
    tx = Transaction(1, (TxIn(OUTPOINT, b""), TxIn(OutPoint(bytes(32), 0), b"")), (TxOut(1, b""),), 0)
    assert legacy_sighash(tx, 1, b"\x51", SINGLE_ACP) == (1).to_bytes(32, "little")
    assert bitcoinlib_sighash(tx, 1, b"\x51", SINGLE_ACP) == (1).to_bytes(32, "little")


def test_legacy_sighash_index_out_of_range() -> None:
    tx = payment_transaction(OUTPOINT, 1, b"")
    with pytest.raises(InvalidInput):
        legacy_sighash(tx, 1, b"", SIGHASH_ALL)
    with pytest.raises(InvalidInput):
        legacy_sighash(tx, -1, b"", SIGHASH_ALL)


def test_verifier_digest_refuses_other_sighash() -> None:
    chan = vector_b_chan()
    for sighash in (b for b in range(256) if b not in (SINGLE_ACP, NONE_ACP)):
        with pytest.raises(InvalidPayment) as exc:
            chan.verifier.digest(1000, b"", sighash)
        assert exc.value.code == "bad_sighash" and http_status(exc.value) == 400


@fast(40)
@given(chan=chans(), change=amounts())
def test_verifier_is_deterministic(chan: Chan, change: int) -> None:
    """A verifier rebuilt from the same static parameters gives the same digests (cacheable)."""
    again = PaymentVerifier(chan.params.client_pubkey, chan.outpoint, chan.redeem_script)
    spk = chan.funding_address.script_pubkey
    assert again.digest(change, spk, SINGLE_ACP) == chan.verifier.digest(change, spk, SINGLE_ACP)
