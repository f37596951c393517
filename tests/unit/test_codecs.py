"""Property-based tests of every codec: round trips, and "garbage in, typed error out"."""

from __future__ import annotations

import base64
import json
import struct
from dataclasses import replace
from typing import Any

import pytest
from bitcoin.core import CTransaction, b2lx
from bitcoin.core._bignum import bn2vch, vch2bn
from hypothesis import given
from hypothesis import strategies as st

from paychan_common.address import Address, p2pkh_script, p2sh_script
from paychan_common.base58 import b58check_decode, b58check_encode, b58decode, b58encode
from paychan_common.bech32 import decode_segwit, encode_segwit
from paychan_common.channel import ClientSignature
from paychan_common.der import CURVE_ORDER, HALF_ORDER, encode_der, normalize_der, parse_der
from paychan_common.errors import InvalidInput
from paychan_common.hashing import sha256d
from paychan_common.keys import PublicKey
from paychan_common.network import Network
from paychan_common.payment import Payment
from paychan_common.script import channel_redeem_script, parse_channel_script, push_data, script_num
from paychan_common.sighash import NONE_ACP, SINGLE_ACP
from paychan_common.state import ChannelState, Family, Status
from paychan_common.tx import OutPoint, Transaction, TxIn, TxOut, outpoint_from_display, varint
from paychan_common.wire_v1 import encode_v1_payload, parse_v1_payload
from paychan_common.wire_v2 import parse_v2_payment, payment_to_json

from . import helpers as h
from .helpers import exp_times, fast, json_values, mutate, networks, only_typed_errors, outpoints

U32 = 2**32 - 1
U64 = 2**64 - 1


def mutate_text(text: str, alphabet: str | None = None) -> st.SearchStrategy[str]:
    """Small corruptions of a valid string: substitute, insert, delete, truncate, change case."""
    chars = st.characters() if alphabet is None else st.sampled_from(alphabet)

    @st.composite
    def _m(draw: st.DrawFn) -> str:
        how = draw(st.sampled_from(["sub", "ins", "del", "trunc", "case", "swap"]))
        n = len(text)
        i = draw(st.integers(0, max(n - 1, 0)))
        if how == "sub" and n:
            return text[:i] + draw(chars) + text[i + 1 :]
        if how == "ins":
            return text[:i] + draw(chars) + text[i:]
        if how == "del" and n:
            return text[:i] + text[i + 1 :]
        if how == "trunc":
            return text[:i]
        if how == "case":
            return text.swapcase() if draw(st.booleans()) else text[:i] + text[i:].upper()
        if how == "swap" and n > 1 and i < n - 1:
            return text[:i] + text[i + 1] + text[i] + text[i + 2 :]
        return text + draw(chars)

    return _m()


def low_s_ders() -> st.SearchStrategy[bytes]:
    return st.builds(encode_der, st.integers(1, CURVE_ORDER - 1), st.integers(1, HALF_ORDER))


# ---------------------------------------------------------------------------------------------
# Base58 / Base58Check
# ---------------------------------------------------------------------------------------------
@fast(200)
@given(data=st.binary(max_size=60))
def test_base58_roundtrip(data: bytes) -> None:
    text = b58encode(data)
    assert b58decode(text) == data
    assert set(text) <= set("123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz")


@fast(200)
@given(version=st.integers(0, 255), payload=st.binary(max_size=40))
def test_base58check_roundtrip(version: int, payload: bytes) -> None:
    text = b58check_encode(version, payload)
    assert b58check_decode(text) == (version, payload)
    raw = b58decode(text)
    assert raw[-4:] == sha256d(raw[:-4])[:4]


@fast(200)
@given(text=st.one_of(st.text(max_size=80), mutate_text(h.B_P2SH_TEST), mutate_text(h.A_P2SH_LIVE)))
def test_base58check_garbage(text: str) -> None:
    err = only_typed_errors(b58check_decode, text)
    assert err is None or isinstance(err, InvalidInput)


# ---------------------------------------------------------------------------------------------
# bech32 / bech32m and addresses
# ---------------------------------------------------------------------------------------------
@st.composite
def witness_programs(draw: st.DrawFn) -> tuple[int, bytes]:
    kind = draw(st.sampled_from(["v0_20", "v0_32", "v1_32", "vN"]))
    if kind == "v0_20":
        return 0, draw(st.binary(min_size=20, max_size=20))
    if kind == "v0_32":
        return 0, draw(st.binary(min_size=32, max_size=32))
    if kind == "v1_32":
        return 1, draw(st.binary(min_size=32, max_size=32))
    return draw(st.integers(1, 16)), draw(st.binary(min_size=2, max_size=40))


@fast(200)
@given(net=networks(), prog=witness_programs())
def test_segwit_roundtrip(net: Network, prog: tuple[int, bytes]) -> None:
    witver, program = prog
    hrp = net.params.hrp
    text = encode_segwit(hrp, witver, program)
    assert text.startswith(hrp + "1")
    assert decode_segwit(hrp, text) == (witver, program)
    assert decode_segwit(hrp, text.upper()) == (witver, program)
    addr = Address.parse(text, net)
    op = 0 if witver == 0 else 0x50 + witver
    assert addr.script_pubkey == bytes([op, len(program)]) + program
    assert addr.network is net and addr.text == text
    assert Address.segwit(witver, program, net) == addr
    assert Address.parse(text.upper(), net).script_pubkey == addr.script_pubkey


@fast(200)
@given(net=networks(), h160=st.binary(min_size=20, max_size=20))
def test_base58_address_roundtrip(net: Network, h160: bytes) -> None:
    p2pkh = Address.p2pkh(h160, net)
    p2sh = Address.p2sh(h160, net)
    assert Address.parse(p2pkh.text, net) == p2pkh
    assert Address.parse(p2sh.text, net) == p2sh
    assert p2pkh.script_pubkey == p2pkh_script(h160) == b"\x76\xa9\x14" + h160 + b"\x88\xac"
    assert p2sh.script_pubkey == p2sh_script(h160) == b"\xa9\x14" + h160 + b"\x87"
    assert b58check_decode(p2pkh.text) == (net.params.p2pkh_version, h160)
    assert b58check_decode(p2sh.text) == (net.params.p2sh_version, h160)
    first = {Network.LIVE: ("1", "3"), Network.TEST: ("mn", "2"), Network.REGTEST: ("mn", "2")}[net]
    assert p2pkh.text[0] in first[0] and p2sh.text[0] in first[1]


@fast(300)
@given(net=networks(), text=st.one_of(
    st.text(max_size=100),
    st.text(alphabet="qpzry9x8gf2tvdw0s3jn54khce6mua7lQPZRY1bctBCT", max_size=95),
    mutate_text(h.B_P2SH_TEST), mutate_text(h.B_CLIENT_ADDRESS), mutate_text(h.A_P2SH_LIVE),
    mutate_text("tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7"),
    mutate_text("bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0"),
    mutate_text(encode_segwit("bcrt", 0, b"\x11" * 20), "qpzry9x8gf2tvdw0s3jn54khce6mua7l1"),
))
def test_address_garbage(net: Network, text: str) -> None:
    err = only_typed_errors(Address.parse, text, net)
    assert err is None or isinstance(err, InvalidInput)


# ---------------------------------------------------------------------------------------------
# Script numbers, pushes, the channel redeem script
# ---------------------------------------------------------------------------------------------
def _decode_script_num(data: bytes) -> int:
    """Reference CScriptNum decoder (little-endian sign-magnitude)."""
    if not data:
        return 0
    value = int.from_bytes(data, "little")
    if data[-1] & 0x80:
        return -(value & ~(0x80 << (8 * (len(data) - 1))))
    return value


@fast(300)
@given(n=st.one_of(st.integers(-(2**40), 2**40), st.sampled_from([0, 1, -1, 127, 128, -128, 255, 256, 2**31,
                                                                    2**31 - 1, -(2**31), 2**32 - 1])))
def test_script_num_roundtrip(n: int) -> None:
    enc = script_num(n)
    assert _decode_script_num(enc) == n
    assert vch2bn(enc) == n
    if n not in range(-1, 17):
        assert enc == bn2vch(n)  # python-bitcoinlib's encoder agrees
    # minimal: no removable top byte
    if enc:
        assert enc[-1] & 0x7F or (len(enc) > 1 and enc[-2] & 0x80)


@fast(100)
@given(data=st.binary(max_size=70_000).filter(lambda b: len(b) < 300 or len(b) > 65_000))
def test_push_data(data: bytes) -> None:
    push = push_data(data)
    assert push.endswith(data)
    n = len(data)
    header = push[: len(push) - n]
    if n < 0x4C:
        assert header == bytes([n])
    elif n <= 0xFF:
        assert header == bytes([0x4C, n])
    else:
        assert header == bytes([0x4D]) + n.to_bytes(2, "little")


@fast(200)
@given(server=st.binary(min_size=33, max_size=33), client=st.binary(min_size=33, max_size=33), exp=exp_times())
def test_redeem_script_roundtrip(server: bytes, client: bytes, exp: int) -> None:
    script = channel_redeem_script(server, client, exp)
    assert len(script) == (80 if exp < 2**31 else 81)
    assert parse_channel_script(script) == (server, client, exp)


@fast(300)
@given(data=st.one_of(st.binary(max_size=100), mutate(bytes.fromhex(h.B_REDEEM_SCRIPT)),
                      mutate(channel_redeem_script(b"\x02" * 33, b"\x03" * 33, 2**32 - 1))))
def test_channel_script_garbage(data: bytes) -> None:
    err = only_typed_errors(parse_channel_script, data)
    assert err is None or isinstance(err, InvalidInput)
    if err is None:  # whatever parses must re-serialise to the same bytes
        server, client, exp = parse_channel_script(data)
        assert channel_redeem_script(server, client, exp) == data


# ---------------------------------------------------------------------------------------------
# Transactions, outpoints
# ---------------------------------------------------------------------------------------------
@st.composite
def transactions(draw: st.DrawFn) -> Transaction:
    ins = draw(st.lists(st.builds(TxIn, outpoints(), st.binary(max_size=300), st.integers(0, U32)),
                        min_size=1, max_size=4))
    outs = draw(st.lists(st.builds(TxOut, st.integers(0, 2**63 - 1), st.binary(max_size=300)), max_size=4))
    return Transaction(draw(st.integers(0, 2**31 - 1)), tuple(ins), tuple(outs), draw(st.integers(0, U32)))


@fast(150)
@given(tx=transactions())
def test_transaction_roundtrip(tx: Transaction) -> None:
    raw = tx.serialize()
    assert Transaction.parse(raw) == tx
    ctx = CTransaction.deserialize(raw)  # python-bitcoinlib reads and writes the same bytes
    assert ctx.serialize() == raw
    assert b2lx(ctx.GetTxid()) == tx.txid
    assert tx.txid == sha256d(raw)[::-1].hex()


@fast(300)
@given(data=st.one_of(st.binary(max_size=200), mutate(bytes.fromhex(h.B_SETTLE_TX)),
                      mutate(bytes.fromhex(h.B_REFUND_TX)), mutate(bytes.fromhex(h.B_OPEN_UNSIGNED_TX))))
def test_transaction_garbage(data: bytes) -> None:
    err = only_typed_errors(Transaction.parse, data)
    assert err is None or isinstance(err, InvalidInput)
    if err is None:
        assert Transaction.parse(data).serialize() == data


@pytest.mark.parametrize(("n", "encoded"), [
    (0, "00"), (0xFC, "fc"), (0xFD, "fdfd00"), (0xFFFF, "fdffff"), (0x10000, "fe00000100"),
    (0xFFFFFFFF, "feffffffff"), (0x100000000, "ff0000000001000000"),
])
def test_varint(n: int, encoded: str) -> None:
    assert varint(n).hex() == encoded


@pytest.mark.parametrize("count", ["fd0100", "fefc000000", "fe01000000", "ff0100000000000000", "fffcff000000000000",
                                   "ffffff000000000000"])
def test_transaction_rejects_non_canonical_compact_size(count: str) -> None:
    """Bitcoin Core refuses non-minimal CompactSize; so do we (parse/serialize stay a bijection)."""
    raw = bytes.fromhex(h.B_OPEN_UNSIGNED_TX)
    assert raw[4] == 1
    bad = raw[:4] + bytes.fromhex(count) + raw[5:]
    assert isinstance(only_typed_errors(Transaction.parse, bad), InvalidInput)
    script_len_at = 4 + 1 + 36  # the (empty) scriptSig length
    assert raw[script_len_at] == 0
    assert isinstance(only_typed_errors(Transaction.parse, raw[:script_len_at] + b"\xfd\x00\x00"
                                        + raw[script_len_at + 1 :]), InvalidInput)


def test_transaction_rejects_trailing_and_truncated() -> None:
    raw = bytes.fromhex(h.B_SETTLE_TX)
    for bad in (raw + b"\x00", raw[:-1], raw[:4], b""):
        assert isinstance(only_typed_errors(Transaction.parse, bad), InvalidInput)


@fast(200)
@given(op=outpoints())
def test_outpoint_roundtrip(op: OutPoint) -> None:
    raw = op.serialize()
    assert len(raw) == 36 and OutPoint.parse(raw) == op
    assert OutPoint.from_display(op.display_txid, op.vout) == op
    assert OutPoint.from_display(op.display_txid.upper(), op.vout) == op
    assert bytes.fromhex(op.display_txid) == op.txid[::-1]
    assert str(op) == f"{op.display_txid}:{op.vout}"


@fast(200)
@given(data=st.binary(max_size=40), txid=st.text(max_size=70), vout=st.one_of(
    st.integers(-(2**40), 2**40), st.booleans()))
def test_outpoint_garbage(data: bytes, txid: str, vout: int) -> None:
    assert only_typed_errors(OutPoint.parse, data) is None or len(data) != 36
    err = only_typed_errors(OutPoint.from_display, txid, vout)
    assert err is None or isinstance(err, InvalidInput)
    if isinstance(vout, bool) or not 0 <= vout <= U32:
        assert err is not None


@fast(200)
@given(op=outpoints(), txid=st.text(max_size=70), vout=st.one_of(st.integers(-(2**40), 2**40), st.booleans()))
def test_remembered_outpoints_are_from_display(op: OutPoint, txid: str, vout: int) -> None:
    for _ in range(2):  # the second call is answered from memory
        assert outpoint_from_display(op.display_txid, op.vout) == op
    first, again = only_typed_errors(outpoint_from_display, txid, vout), only_typed_errors(outpoint_from_display,
                                                                                           txid, vout)
    expected = only_typed_errors(OutPoint.from_display, txid, vout)
    assert type(first) is type(again) is type(expected)  # refusals are refused again, never remembered
    assert isinstance(only_typed_errors(outpoint_from_display, 12, 0), InvalidInput)  # not a string: no cache key
    assert isinstance(only_typed_errors(outpoint_from_display, op.display_txid, True), InvalidInput)


# ---------------------------------------------------------------------------------------------
# ChannelState
# ---------------------------------------------------------------------------------------------
def states() -> st.SearchStrategy[ChannelState]:
    blobs = st.binary(max_size=120)
    i64 = st.integers(-(2**63), 2**63 - 1)
    return st.builds(
        ChannelState,
        client_pubkey=st.binary(min_size=33, max_size=33), exp_time=st.integers(0, U32), outpoint=outpoints(),
        funding_value=st.integers(0, U64), redeem_script=blobs, change_address=st.text(max_size=90),
        change_script=blobs, family=st.sampled_from(list(Family)), status=st.sampled_from(list(Status)),
        change_value=st.integers(0, U64), signature=blobs, sighash=st.integers(0, 255), secret=blobs,
        payment_count=st.integers(0, U32), open_time=i64, last_payment_time=i64, settlement_tx=blobs,
        settlement_txid=st.text(max_size=70), settlement_fee=st.integers(0, U64),
        earlier_settlements=st.lists(blobs, max_size=4).map(tuple),
    )


@fast(200)
@given(state=states())
def test_channel_state_roundtrip(state: ChannelState) -> None:
    assert ChannelState.parse(state.serialize()) == state


_STATE_BYTES = ChannelState(
    client_pubkey=bytes.fromhex(h.B_CLIENT_PUBKEY), exp_time=h.B_EXP_TIME,
    outpoint=OutPoint.from_display(h.B_FUNDING_TXID, 2), funding_value=h.B_FUNDING_VALUE,
    redeem_script=bytes.fromhex(h.B_REDEEM_SCRIPT), change_address=h.B_P2SH_TEST,
    change_script=bytes.fromhex(h.B_FUNDING_SPK), family=Family.V2_SEED, status=Status.OPEN,
    change_value=h.B_OPEN_CHANGE, signature=bytes.fromhex(h.B_OPEN_SIG), sighash=0x83,
    secret=bytes.fromhex(h.B_OPEN_SECRET), payment_count=1, open_time=1, last_payment_time=2,
).serialize()


@fast(300)
@given(data=st.one_of(st.binary(max_size=300), mutate(_STATE_BYTES)))
def test_channel_state_garbage(data: bytes) -> None:
    err = only_typed_errors(ChannelState.parse, data)
    assert err is None or isinstance(err, InvalidInput)
    if err is None:
        assert ChannelState.parse(data).serialize() == data


def test_channel_state_rejects_trailing_and_truncated() -> None:
    for bad in (_STATE_BYTES + b"\x00", _STATE_BYTES[:-1], b"\x02" + _STATE_BYTES[1:], b"\x03" + _STATE_BYTES[1:],
                b""):
        assert isinstance(only_typed_errors(ChannelState.parse, bad), InvalidInput)


def test_channel_state_format_1_is_still_read_and_written_while_there_is_one_settlement_version() -> None:
    state = ChannelState.parse(_STATE_BYTES)
    assert _STATE_BYTES[0] == 1 and state.earlier_settlements == () and state.settlement_versions == ()
    signed = replace(state, settlement_tx=b"v1")
    assert signed.serialize()[0] == 1, "format 1 unchanged: ChanStore's compare-and-set hashes stay valid"
    bumped = replace(signed, settlement_tx=b"v2", earlier_settlements=(b"v1",))
    data = bumped.serialize()
    assert data[0] == 2 and ChannelState.parse(data) == bumped
    assert bumped.settlement_versions == (b"v1", b"v2") and bumped.bumps == 1
    assert data.startswith(b"\x02" + replace(signed, settlement_tx=b"v2").serialize()[1:])  # format 1 + earlier


# ---------------------------------------------------------------------------------------------
# DER
# ---------------------------------------------------------------------------------------------
@fast(300)
@given(r=st.integers(1, CURVE_ORDER - 1), s=st.integers(1, CURVE_ORDER - 1))
def test_der_roundtrip(r: int, s: int) -> None:
    der = encode_der(r, s)
    assert 8 <= len(der) <= 72
    assert parse_der(der) == (r, s)
    low = normalize_der(der)
    assert parse_der(low) == (r, min(s, CURVE_ORDER - s))
    assert normalize_der(low) == low


@fast(300)
@given(data=st.one_of(st.binary(max_size=80), mutate(bytes.fromhex(h.B_OPEN_SIG)), mutate(bytes.fromhex(h.B_PAY2_SIG))))
def test_der_garbage(data: bytes) -> None:
    for fn in (parse_der, normalize_der):
        err = only_typed_errors(fn, data)
        assert err is None or (isinstance(err, InvalidInput) and err.code == "bad_signature")


@fast(300)
@given(data=st.one_of(st.binary(max_size=80), mutate(bytes.fromhex(h.B_OPEN_SIG) + b"\x83"),
                      mutate(bytes.fromhex(h.B_PAY2_SIG) + b"\x82")))
def test_script_sig_garbage(data: bytes) -> None:
    err = only_typed_errors(ClientSignature.from_script_sig, data)
    assert err is None or isinstance(err, InvalidInput)
    if err is None:
        sig = ClientSignature.from_script_sig(data)
        assert sig.sighash in (SINGLE_ACP, NONE_ACP)
        assert ClientSignature.from_script_sig(sig.script_sig_push) == sig


# ---------------------------------------------------------------------------------------------
# Public keys
# ---------------------------------------------------------------------------------------------
@fast(300)
@given(text=st.one_of(st.text(max_size=140), st.text(alphabet="0123456789abcdefABCDEF \n", min_size=66, max_size=66),
                      st.binary(min_size=33, max_size=33).map(bytes.hex), mutate_text(h.B_CLIENT_PUBKEY)))
def test_pubkey_garbage(text: str) -> None:
    err = only_typed_errors(PublicKey.from_hex, text)
    assert err is None or isinstance(err, InvalidInput)
    if err is None:
        key = PublicKey.from_hex(text)
        assert key.hex == text.lower() and len(key.data) == 33


# ---------------------------------------------------------------------------------------------
# v1 payload
# ---------------------------------------------------------------------------------------------
@fast(200)
@given(change=h.amounts(), der=low_s_ders(), sighash=st.sampled_from([SINGLE_ACP, NONE_ACP]), padded=st.booleans())
def test_v1_payload_roundtrip(change: int, der: bytes, sighash: int, padded: bool) -> None:
    text = encode_v1_payload(change, der, sighash, padded=padded)
    assert "+" not in text and "/" not in text
    assert (len(text) % 4 == 0) if padded else ("=" not in text)
    payment = parse_v1_payload(text)
    assert payment == Payment(change_value=change, signature=ClientSignature(der, sighash))
    assert base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)) == change.to_bytes(8, "little") + der + \
        bytes([sighash])


@fast(400)
@given(text=st.one_of(
    st.text(max_size=220),
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/", max_size=210),
    st.binary(max_size=150).map(lambda b: base64.urlsafe_b64encode(b).decode()),
    mutate(base64.urlsafe_b64decode(h.D_OPEN_PAYLOAD + "=")).map(lambda b: base64.urlsafe_b64encode(b).decode()),
    mutate(base64.urlsafe_b64decode(h.A_PAY1)).map(lambda b: base64.urlsafe_b64encode(b).decode().rstrip("=")),
    mutate_text(h.D_EXHAUST_PAYLOAD), mutate_text(h.A_PAY2),
))
def test_v1_payload_garbage(text: str) -> None:
    err = only_typed_errors(parse_v1_payload, text)
    assert err is None or isinstance(err, InvalidInput)


def test_v1_payload_strictness() -> None:
    good = h.D_OPEN_PAYLOAD
    raw = base64.urlsafe_b64decode(good + "=")
    bad = [
        good.replace("_", "/"),  # standard alphabet refused
        base64.urlsafe_b64encode(raw + b"\x00").decode(),  # trailing byte
        base64.urlsafe_b64encode(raw[:-1]).decode(),  # missing sighash byte
        good + "A",  # invalid length
        good + "==",  # wrong padding
        "",
    ]
    for text in bad:
        assert isinstance(only_typed_errors(parse_v1_payload, text), InvalidInput), text
    assert parse_v1_payload(good) == parse_v1_payload(good + "=")


# ---------------------------------------------------------------------------------------------
# v2 JSON
# ---------------------------------------------------------------------------------------------
@st.composite
def payments(draw: st.DrawFn) -> Payment:
    sig = ClientSignature(draw(low_s_ders()), draw(st.sampled_from([SINGLE_ACP, NONE_ACP])))
    full = draw(st.booleans())
    return Payment(
        change_value=draw(h.amounts()), signature=sig,
        outpoint=draw(outpoints()) if full else None,
        redeem_script=draw(st.binary(max_size=100)) if full else None,
        change_address=draw(st.text(max_size=100)) if full else None,
        application_data=draw(st.text(max_size=200)),
    )


@fast(200)
@given(payment=payments(), seed_form=st.booleans(), bare=st.booleans())
def test_v2_payment_roundtrip(payment: Payment, seed_form: bool, bare: bool) -> None:
    body = payment_to_json(payment, seed_form=seed_form)
    pd = body["payment_data"]
    if seed_form:
        assert pd["signature_data"] == payment.signature.der.hex()
        assert pd["sighash_flag"] == f"{payment.signature.sighash:02x}"
    else:
        assert pd["signature_data"] == payment.signature.script_sig_push.hex()
        assert "sighash_flag" not in pd
    wire = json.loads(json.dumps(body))
    assert parse_v2_payment(wire) == payment
    if bare:  # a bare PaymentData is accepted too, with application_data ""
        assert parse_v2_payment(wire["payment_data"]) == Payment(
            payment.change_value, payment.signature, payment.outpoint, payment.redeem_script,
            payment.change_address, "")


_VALID_BODY: dict[str, Any] = json.loads(h.B_OPEN_BODY)
_FIELDS = ["change_value", "signature_data", "sighash_flag", "funding_txid", "funding_vout", "redeem_script",
           "change_address"]


@st.composite
def v2_bodies(draw: st.DrawFn) -> Any:
    """Valid bodies with some fields replaced by, or deleted for, arbitrary JSON; or arbitrary JSON."""
    if draw(st.integers(0, 4)) == 0:
        return draw(json_values(12))
    pd = dict(_VALID_BODY["payment_data"])
    if draw(st.booleans()):  # v2.3.0 style: flag inside signature_data
        pd["signature_data"] = pd["signature_data"] + pd.pop("sighash_flag")
    for key in draw(st.lists(st.sampled_from([*_FIELDS, "application_data"]), min_size=1, max_size=3, unique=True)):
        if draw(st.integers(0, 3)) == 0:
            pd.pop(key, None)
        else:
            pd[key] = draw(st.one_of(json_values(4), mutate_text(str(pd.get(key, "")))))
    wrapper = draw(st.booleans())
    if not wrapper:
        return pd
    app = pd.pop("application_data", "")
    return {"payment_data": pd if draw(st.integers(0, 9)) else draw(json_values(4)), "application_data": app}


@fast(300)
@given(body=v2_bodies(), require_full=st.booleans())
def test_v2_payment_garbage(body: Any, require_full: bool) -> None:
    err = only_typed_errors(parse_v2_payment, body, require_full=require_full)
    assert err is None or isinstance(err, InvalidInput)


def test_v2_rules_of_the_tolerant_parser() -> None:
    """Spec 5.4: flag in signature_data or in sighash_flag; both must agree; one is required."""
    pd = dict(_VALID_BODY["payment_data"])
    both_agree = {**pd, "signature_data": pd["signature_data"] + "83"}
    assert parse_v2_payment(both_agree).signature.sighash == SINGLE_ACP
    disagree = {**pd, "signature_data": pd["signature_data"] + "82"}
    assert isinstance(only_typed_errors(parse_v2_payment, disagree), InvalidInput)
    no_flag = {k: v for k, v in pd.items() if k != "sighash_flag"}
    assert isinstance(only_typed_errors(parse_v2_payment, no_flag), InvalidInput)
    extra = {**pd, "signature_data": pd["signature_data"] + "8300"}
    assert isinstance(only_typed_errors(parse_v2_payment, extra), InvalidInput)
    upper = {**pd, "signature_data": pd["signature_data"].upper(), "funding_txid": pd["funding_txid"].upper()}
    assert parse_v2_payment(upper) == parse_v2_payment(pd)
    compact = {"change_value": pd["change_value"], "signature_data": pd["signature_data"] + "83"}
    parsed = parse_v2_payment({"payment_data": compact, "application_data": "x"})
    assert parsed.outpoint is None and parsed.redeem_script is None and parsed.change_address is None
    assert parsed.application_data == "x"
    assert isinstance(only_typed_errors(parse_v2_payment, compact, require_full=True), InvalidInput)
    half_outpoint = {k: v for k, v in pd.items() if k != "funding_vout"}
    assert isinstance(only_typed_errors(parse_v2_payment, half_outpoint), InvalidInput)
    for bad_value in (1.0, True, "12345678800000", -1, 21_000_000 * 10**8 + 1, None):
        assert isinstance(only_typed_errors(parse_v2_payment, {**pd, "change_value": bad_value}), InvalidInput)
    for bad_vout in (2.0, False, "2", -1, 2**32):
        assert isinstance(only_typed_errors(parse_v2_payment, {**pd, "funding_vout": bad_vout}), InvalidInput)
    unknown_keys = {**pd, "extra": [1, {"a": None}]}
    assert parse_v2_payment(unknown_keys) == parse_v2_payment(pd)
    not_objects: list[object] = [[], "x", 1, None, 1.5]
    for not_object in not_objects:
        assert isinstance(only_typed_errors(parse_v2_payment, not_object), InvalidInput)


def test_v2_network_independence_of_parser() -> None:
    """The parser keeps change_address as text; validation against the network happens in the rules."""
    pd = {**_VALID_BODY["payment_data"], "change_address": h.B_P2SH_LIVE}
    assert parse_v2_payment(pd).change_address == h.B_P2SH_LIVE


@fast(300)
@given(state=states(), change=st.integers(0, U64), sig=st.binary(min_size=1, max_size=80),
       sighash=st.integers(0, 255), now=st.integers(-(2**63), 2**63 - 1),
       address=st.one_of(st.none(), st.text(max_size=90)))
def test_with_payment_and_serialize_after_equal_replace_and_serialize(
        state: ChannelState, change: int, sig: bytes, sighash: int, now: int, address: str | None) -> None:
    script = None if address is None else address.encode()
    paid = state.with_payment(change, sig, sighash, now, change_address=address, change_script=script)
    assert paid == replace(state, change_value=change, signature=sig, sighash=sighash,
                           payment_count=state.payment_count + 1, last_payment_time=now,
                           change_address=state.change_address if address is None else address,
                           change_script=state.change_script if script is None else script)
    try:
        expected = paid.serialize()
    except struct.error:  # payment_count past u32: both refuse it
        with pytest.raises(struct.error):
            paid.serialize_after(state, state.serialize())
        return
    assert paid.serialize_after(state, state.serialize()) == expected
    other = replace(paid, status=Status.CLOSED)  # not a payment's successor: the full encoding
    assert other.serialize_after(state, state.serialize()) == other.serialize()
