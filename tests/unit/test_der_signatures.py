"""Strict DER (BIP66), low-S normalisation (spec 4.4) and the sighash byte (spec 4.2): only 0x83 and 0x82."""

from __future__ import annotations

import json

import coincurve
import pytest
from hypothesis import given
from hypothesis import strategies as st

from paychan_common.channel import ClientSignature, payment_transaction
from paychan_common.der import CURVE_ORDER, HALF_ORDER, encode_der, normalize_der, parse_der
from paychan_common.errors import InvalidInput, InvalidPayment
from paychan_common.keys import PrivateKey
from paychan_common.payment import Payment
from paychan_common.rules import check_payment
from paychan_common.sighash import NONE_ACP, SINGLE_ACP, legacy_sighash
from paychan_common.wire_v1 import encode_v1_payload, parse_v1_payload
from paychan_common.wire_v2 import parse_v2_payment

from . import helpers as h
from .helpers import DEFAULT_POLICY, Chan, assert_error, fast, mutate, only_typed_errors, secrets

N = CURVE_ORDER


def _int_bytes(v: int) -> bytes:
    b = v.to_bytes((v.bit_length() + 7) // 8 or 1, "big")
    return b"\x00" + b if b[0] & 0x80 else b


def _der(r: bytes, s: bytes, *, header: int = 0x30, total: int | None = None, rtype: int = 2, stype: int = 2,
         rlen: int | None = None, slen: int | None = None) -> bytes:
    """Assemble a DER-like signature from raw integer bytes, with any field overridable."""
    body = (bytes([rtype, len(r) if rlen is None else rlen]) + r + bytes([stype, len(s) if slen is None else slen])
            + s)
    return bytes([header, len(body) if total is None else total]) + body


R = _int_bytes(0xC126D4B7F8D93BBBB4C6D16B02DE945AEA571B3701C186E1A923C6819CBE0F78)  # 33 bytes (padded)
S = _int_bytes(0x52FBA4B82226EE555D9EDD8B9B3F879A79FEB1D6DA21641E18AA579576F70619)  # 32 bytes
assert _der(R, S).hex() == h.B_OPEN_SIG

MALFORMED = {
    "wrong header 0x31": _der(R, S, header=0x31),
    "wrong header 0x02": _der(R, S, header=0x02),
    "total length too big": _der(R, S, total=len(R) + len(S) + 5),
    "total length too small": _der(R, S, total=len(R) + len(S) + 3),
    "trailing byte": _der(R, S) + b"\x01",
    "too short (7 bytes)": bytes.fromhex("30050201010200"),
    "too long (73 bytes)": _der(R, b"\x01" + b"\x00" * 32 + b"\x01"),
    "R not an integer": _der(R, S, rtype=0x03),
    "S not an integer": _der(R, S, stype=0x03),
    "R length past the end": _der(R, S, rlen=0x40),
    "R length one short": _der(R, S, rlen=len(R) - 1),
    "S length too big": _der(R, S, slen=len(S) + 1),
    "S length too small": _der(R, S, slen=len(S) - 1),
    "zero-length R": _der(b"", S),
    "zero-length S": _der(R, b""),
    "negative R": _der(R[1:], S),
    "negative S": _der(R, b"\x80" + S[1:]),
    "non-minimal R": _der(b"\x00" + S, S),
    "non-minimal S": _der(R, b"\x00" + S),
    "non-minimal R (two zero bytes)": _der(b"\x00\x00" + R[1:], S),
    "R is zero": _der(b"\x00", S),
    "S is zero": _der(R, b"\x00"),
    "R equals n": _der(_int_bytes(N), S),
    "S equals n": _der(R, _int_bytes(N)),
    "R above n": _der(_int_bytes(2**256 - 1), S),
    "S above n": _der(R, _int_bytes(N + 1)),
    "empty": b"",
    "sequence only": b"\x30\x00",
}


@pytest.mark.parametrize("sig", list(MALFORMED.values()), ids=list(MALFORMED))
def test_malformed_der_rejected(sig: bytes) -> None:
    for fn in (parse_der, normalize_der):
        with pytest.raises(InvalidPayment) as exc:
            fn(sig)
        assert_error(exc.value, InvalidPayment, "bad_signature", 400)
        assert exc.value.message.startswith("signature verification failed")
    with pytest.raises(InvalidPayment):
        ClientSignature.from_parts(sig, SINGLE_ACP)


@pytest.mark.parametrize("sig", [m for m in MALFORMED.values() if len(m) > 2], ids=[k for k, m in MALFORMED.items()
                                                                                      if len(m) > 2])
def test_malformed_der_rejected_on_the_wire(sig: bytes) -> None:
    pd = json.loads(h.B_OPEN_BODY)["payment_data"]
    assert isinstance(only_typed_errors(parse_v2_payment, {**pd, "signature_data": sig.hex()}), InvalidInput)
    assert isinstance(only_typed_errors(parse_v1_payload, encode_v1_payload(1000, sig, SINGLE_ACP)), InvalidInput)


@pytest.mark.parametrize(("r", "s"), [(1, 1), (N - 1, 1), (1, HALF_ORDER), (2**255, 2**200), (0x80, 0x7F)])
def test_edge_valid_der_accepted(r: int, s: int) -> None:
    sig = encode_der(r, s)
    assert parse_der(sig) == (r, s)
    assert normalize_der(sig) == sig
    assert ClientSignature.from_parts(sig, SINGLE_ACP).der == sig


def _bip66_valid(sig: bytes) -> bool:
    """Reference: BIP66 IsValidSignatureEncoding (sig includes the trailing hashtype byte)."""
    n = len(sig)
    if n < 9 or n > 73 or sig[0] != 0x30 or sig[1] != n - 3:
        return False
    len_r = sig[3]
    if 5 + len_r >= n:
        return False
    len_s = sig[5 + len_r]
    if len_r + len_s + 7 != n:
        return False
    if sig[2] != 0x02 or len_r == 0 or sig[4] & 0x80:
        return False
    if len_r > 1 and sig[4] == 0x00 and not sig[5] & 0x80:
        return False
    if sig[len_r + 4] != 0x02 or len_s == 0 or sig[len_r + 6] & 0x80:
        return False
    return not (len_s > 1 and sig[len_r + 6] == 0x00 and not sig[len_r + 7] & 0x80)


@fast(600)
@given(sig=st.one_of(st.binary(max_size=75), mutate(bytes.fromhex(h.B_OPEN_SIG)), mutate(bytes.fromhex(h.B_PAY2_SIG)),
                     mutate(encode_der(1, 1)), st.sampled_from(list(MALFORMED.values())).flatmap(mutate)))
def test_parse_der_agrees_with_bip66(sig: bytes) -> None:
    """Accepted iff BIP66-valid with 0 < R, S < n."""
    err = only_typed_errors(parse_der, sig)
    expected = _bip66_valid(sig + b"\x01")
    if expected:
        rlen = sig[3]
        r = int.from_bytes(sig[4 : 4 + rlen], "big")
        s = int.from_bytes(sig[6 + rlen :], "big")
        expected = 0 < r < N and 0 < s < N
    assert (err is None) == expected, sig.hex()


# ---------------------------------------------------------------------------------------------
# High-S signatures: accepted, normalised to low-S
# ---------------------------------------------------------------------------------------------
@fast(60)
@given(secret=secrets(), digest=st.binary(min_size=32, max_size=32))
def test_high_s_normalised(secret: bytes, digest: bytes) -> None:
    key = PrivateKey(secret)
    low = key.sign_digest(digest)
    r, s = parse_der(low)
    assert s <= HALF_ORDER  # the signer emits low-S
    high = encode_der(r, N - s)
    pub = coincurve.PublicKey(key.public_key.data)
    assert pub.verify(low, digest, hasher=None)
    assert not pub.verify(high, digest, hasher=None)  # libsecp256k1 refuses high-S as is
    assert parse_der(high) == (r, N - s)  # but it is strict DER
    assert normalize_der(high) == low
    sig = ClientSignature.from_parts(high, SINGLE_ACP)
    assert sig.der == low
    assert pub.verify(sig.der, digest, hasher=None)


def test_high_s_payment_verifies_after_normalisation(chan_b: Chan) -> None:
    low = chan_b.sign(h.B_PAY2_CHANGE)
    assert low.der.hex() == h.B_PAY2_SIG
    r, s = parse_der(low.der)
    high_der = encode_der(r, N - s)
    assert len(high_der) >= len(low.der)
    for payment in (
        Payment(h.B_PAY2_CHANGE, ClientSignature.from_parts(high_der, SINGLE_ACP)),
        parse_v1_payload(encode_v1_payload(h.B_PAY2_CHANGE, high_der, SINGLE_ACP)),
        parse_v2_payment({**json.loads(h.B_OPEN_BODY)["payment_data"], "change_value": h.B_PAY2_CHANGE,
                          "signature_data": high_der.hex()}),
    ):
        assert payment.signature.der == low.der
        check_payment(payment, chan_b.verifier, chan_b.funding_address, DEFAULT_POLICY)
    # the raw high-S signature does not verify without normalisation
    digest = chan_b.verifier.digest(h.B_PAY2_CHANGE, chan_b.funding_address.script_pubkey, SINGLE_ACP)
    assert not coincurve.PublicKey(chan_b.client.public_key.data).verify(high_der, digest, hasher=None)


def test_unnormalised_high_s_fails_verifier(chan_b: Chan) -> None:
    """A ClientSignature built around the parser (high-S kept) is refused by the verifier."""
    low = chan_b.sign(h.B_PAY2_CHANGE)
    r, s = parse_der(low.der)
    raw = ClientSignature(encode_der(r, N - s), SINGLE_ACP)
    with pytest.raises(InvalidPayment) as exc:
        chan_b.verifier.verify(raw, h.B_PAY2_CHANGE, chan_b.funding_address.script_pubkey)
    assert_error(exc.value, InvalidPayment, "bad_signature", 400)


# ---------------------------------------------------------------------------------------------
# All 256 sighash bytes
# ---------------------------------------------------------------------------------------------
ALL_BYTES = list(range(256))


def test_from_parts_accepts_only_83_and_82() -> None:
    der = bytes.fromhex(h.B_OPEN_SIG)
    accepted = set()
    for b in ALL_BYTES:
        err = only_typed_errors(ClientSignature.from_parts, der, b)
        if err is None:
            accepted.add(b)
        else:
            assert_error(err, InvalidPayment, "bad_sighash", 400)
        script_sig_err = only_typed_errors(ClientSignature.from_script_sig, der + bytes([b]))
        assert (script_sig_err is None) == (b in (SINGLE_ACP, NONE_ACP))
    assert accepted == {0x83, 0x82}


def test_wire_formats_accept_only_83_and_82() -> None:
    der = bytes.fromhex(h.B_OPEN_SIG)
    pd = json.loads(h.B_OPEN_BODY)["payment_data"]
    v1_ok, seed_ok, v23_ok = set(), set(), set()
    for b in ALL_BYTES:
        if only_typed_errors(parse_v1_payload, encode_v1_payload(1000, der, b)) is None:
            v1_ok.add(b)
        if only_typed_errors(parse_v2_payment, {**pd, "sighash_flag": f"{b:02x}"}) is None:
            seed_ok.add(b)
        v23 = {k: v for k, v in pd.items() if k != "sighash_flag"}
        v23["signature_data"] = (der + bytes([b])).hex()
        if only_typed_errors(parse_v2_payment, v23) is None:
            v23_ok.add(b)
    assert v1_ok == seed_ok == v23_ok == {0x83, 0x82}


@pytest.mark.parametrize("sighash", ALL_BYTES)
def test_check_payment_for_every_sighash_byte(chan_b: Chan, sighash: int) -> None:
    """Each byte gets a signature that is genuinely valid under that hashtype; only 0x83/0x82 pass."""
    change = 0 if sighash & 0x1F == 0x02 else h.B_PAY2_CHANGE
    spk = chan_b.funding_address.script_pubkey
    digest = legacy_sighash(payment_transaction(chan_b.outpoint, change, spk), 0, chan_b.redeem_script, sighash)
    sig = ClientSignature(chan_b.client.sign_digest(digest), sighash)  # bypasses from_parts on purpose
    payment = Payment(change, sig, chan_b.outpoint, chan_b.redeem_script, chan_b.funding_address.text)
    err = only_typed_errors(check_payment, payment, chan_b.verifier, chan_b.funding_address, DEFAULT_POLICY)
    if sighash in (SINGLE_ACP, NONE_ACP):
        assert err is None
    else:
        assert err is not None
        assert_error(err, InvalidPayment, "bad_sighash", 400)
