"""Amount checks, secp256k1 keys, networks and addresses (spec 2; project decisions on segwit)."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import coincurve
import pytest
from hypothesis import given
from hypothesis import strategies as st

from paychan_common.address import Address
from paychan_common.amount import MAX_MONEY, check_amount
from paychan_common.base58 import b58check_encode
from paychan_common.bech32 import BECH32_CONST, BECH32M_CONST, CHARSET, _convertbits, _hrp_expand, _polymod
from paychan_common.der import CURVE_ORDER
from paychan_common.errors import InvalidInput
from paychan_common.hashing import hash160
from paychan_common.keys import PrivateKey, PublicKey
from paychan_common.network import Network

from . import helpers as h
from .helpers import fast, networks, secrets

P = 2**256 - 2**32 - 977  # secp256k1 field prime


# ---------------------------------------------------------------------------------------------
# check_amount
# ---------------------------------------------------------------------------------------------
class TestCheckAmount:
    @fast(200)
    @given(value=st.integers(0, MAX_MONEY))
    def test_accepts_ints_in_range(self, value: int) -> None:
        amount = check_amount(value)
        assert amount == value and type(amount) is int

    @pytest.mark.parametrize("value", [0, 1, MAX_MONEY, 21 * 10**14])
    def test_edges(self, value: int) -> None:
        assert check_amount(value) == value

    @pytest.mark.parametrize("value", [1.0, 0.0, 1e3, float("nan"), float("inf"), Decimal(5), Fraction(1, 2),
                                       True, False, "5", b"5", None, [5], 5 + 0j])
    def test_refuses_non_integers(self, value: object) -> None:
        with pytest.raises(InvalidInput, match="fee must be an integer"):
            check_amount(value, "fee")

    @fast(100)
    @given(value=st.one_of(st.integers(max_value=-1), st.integers(min_value=MAX_MONEY + 1)))
    def test_refuses_out_of_range(self, value: int) -> None:
        with pytest.raises(InvalidInput, match="change_value must be between"):
            check_amount(value, "change_value")


# ---------------------------------------------------------------------------------------------
# Keys
# ---------------------------------------------------------------------------------------------
def _off_curve_x() -> int:
    """The smallest x with x^3 + 7 a non-residue mod p: no point has it."""
    x = 1
    while pow(x**3 + 7, (P - 1) // 2, P) == 1:
        x += 1
    return x


class TestKeys:
    def test_compressed_key_accepted(self) -> None:
        key = PublicKey.from_hex(h.B_CLIENT_PUBKEY)
        assert key.hex == h.B_CLIENT_PUBKEY and len(key.data) == 33
        assert PublicKey.from_hex(h.B_CLIENT_PUBKEY.upper()) == key
        assert PublicKey.from_bytes(key.data) == key

    def test_uncompressed_key_rejected(self) -> None:
        uncompressed = coincurve.PublicKey(bytes.fromhex(h.B_CLIENT_PUBKEY)).format(compressed=False)
        assert len(uncompressed) == 65 and coincurve.PublicKey(uncompressed)  # a valid point ...
        with pytest.raises(InvalidInput):
            PublicKey.from_bytes(uncompressed)  # ... but not accepted (spec 2.1)
        with pytest.raises(InvalidInput):
            PublicKey.from_hex(uncompressed.hex())
        hybrid = bytes([6 + (uncompressed[-1] & 1)]) + uncompressed[1:]
        with pytest.raises(InvalidInput):
            PublicKey.from_bytes(hybrid)

    def test_off_curve_key_rejected(self) -> None:
        x = _off_curve_x()
        for prefix in (2, 3):
            data = bytes([prefix]) + x.to_bytes(32, "big")
            with pytest.raises(ValueError):
                coincurve.PublicKey(data)
            with pytest.raises(InvalidInput):
                PublicKey.from_bytes(data)
            with pytest.raises(InvalidInput):
                PublicKey.from_hex(data.hex())

    @pytest.mark.parametrize("x", [P, P + 1, 2**256 - 1])
    def test_x_not_a_field_element(self, x: int) -> None:
        with pytest.raises(InvalidInput):
            PublicKey.from_bytes(b"\x02" + x.to_bytes(32, "big"))

    @pytest.mark.parametrize("prefix", [0, 1, 4, 5, 6, 7, 0xFF])
    def test_bad_prefix(self, prefix: int) -> None:
        good = bytes.fromhex(h.B_CLIENT_PUBKEY)
        with pytest.raises(InvalidInput):
            PublicKey.from_bytes(bytes([prefix]) + good[1:])

    @pytest.mark.parametrize("text", [
        "", "zz" * 33, h.B_CLIENT_PUBKEY[:-1], h.B_CLIENT_PUBKEY + "0", h.B_CLIENT_PUBKEY[:-2] + "g0",
        "0x" + h.B_CLIENT_PUBKEY[2:], " " + h.B_CLIENT_PUBKEY[1:], h.B_CLIENT_PUBKEY[:-2] + "\u0661\u0662",
        h.B_CLIENT_PUBKEY[:32] + "  " + h.B_CLIENT_PUBKEY[34:], "é" * 66,
    ])
    def test_bad_hex_rejected(self, text: str) -> None:
        with pytest.raises(InvalidInput):
            PublicKey.from_hex(text)

    @pytest.mark.parametrize("value", [None, 5, b"02" * 33, bytes.fromhex(h.B_CLIENT_PUBKEY)])
    def test_non_string_rejected(self, value: object) -> None:
        with pytest.raises(InvalidInput):
            PublicKey.from_hex(value)  # type: ignore[arg-type]

    @fast(100)
    @given(secret=secrets())
    def test_private_to_public(self, secret: bytes) -> None:
        key = PrivateKey(secret)
        expected = coincurve.PrivateKey(secret).public_key.format(compressed=True)
        assert key.public_key.data == expected
        assert PublicKey.from_bytes(expected) == key.public_key
        assert key.public_key.hash160() == hash160(expected)

    @pytest.mark.parametrize("secret", [bytes(32), CURVE_ORDER.to_bytes(32, "big"),
                                        (CURVE_ORDER + 1).to_bytes(32, "big"), b"\xff" * 32, b"\x01" * 31,
                                        b"\x01" * 33, b""])
    def test_bad_private_key(self, secret: bytes) -> None:
        with pytest.raises(InvalidInput):
            PrivateKey(secret)

    def test_private_key_never_printed(self) -> None:
        key = PrivateKey(bytes.fromhex(h.B_SERVER_SECRET))
        assert h.B_SERVER_SECRET not in repr(key) and h.B_SERVER_SECRET not in str(key)
        assert repr(key) == "PrivateKey(<secret>)"


# ---------------------------------------------------------------------------------------------
# Networks and addresses
# ---------------------------------------------------------------------------------------------
class TestNetwork:
    def test_params(self) -> None:
        assert (Network.LIVE.params.p2pkh_version, Network.LIVE.params.p2sh_version, Network.LIVE.params.hrp) == \
            (0x00, 0x05, "bc")
        assert (Network.TEST.params.p2pkh_version, Network.TEST.params.p2sh_version, Network.TEST.params.hrp) == \
            (0x6F, 0xC4, "tb")
        assert (Network.REGTEST.params.p2pkh_version, Network.REGTEST.params.p2sh_version,
                Network.REGTEST.params.hrp) == (0x6F, 0xC4, "bcrt")

    @pytest.mark.parametrize("name", ["live", "test", "regtest"])
    def test_parse(self, name: str) -> None:
        assert Network.parse(name).params.name == name

    @pytest.mark.parametrize("name", ["", "mainnet", "testnet", "LIVE", "signet", "Test"])
    def test_parse_unknown(self, name: str) -> None:
        with pytest.raises(InvalidInput):
            Network.parse(name)


_H = bytes(range(20))
_BASE58 = {
    Network.LIVE: (Address.p2pkh(_H, Network.LIVE).text, Address.p2sh(_H, Network.LIVE).text),
    Network.TEST: (Address.p2pkh(_H, Network.TEST).text, Address.p2sh(_H, Network.TEST).text),
}


class TestAddressNetworks:
    @pytest.mark.parametrize("text", [*_BASE58[Network.LIVE], h.A_P2SH_LIVE, h.B_P2SH_LIVE,
                                      "1M8iwBs5XD7ZJQJCDC7BdLEpSivRQZJ2Hg"])
    def test_mainnet_base58_on_test_and_regtest(self, text: str) -> None:
        assert Address.parse(text, Network.LIVE).text == text
        for net in (Network.TEST, Network.REGTEST):
            with pytest.raises(InvalidInput) as exc:
                Address.parse(text, net)
            assert "not for the" in exc.value.message

    @pytest.mark.parametrize("text", [*_BASE58[Network.TEST], h.B_P2SH_TEST, h.B_CLIENT_ADDRESS, h.B_DESTINATION])
    def test_testnet_base58_on_live(self, text: str) -> None:
        Address.parse(text, Network.TEST)
        assert Address.parse(text, Network.REGTEST).script_pubkey == Address.parse(text, Network.TEST).script_pubkey
        with pytest.raises(InvalidInput):
            Address.parse(text, Network.LIVE)

    @fast(100)
    @given(net=networks(), other=networks(), witver=st.sampled_from([0, 1]), data=st.data())
    def test_segwit_of_another_network(self, net: Network, other: Network, witver: int, data: st.DataObject) -> None:
        size = 32 if witver == 1 else data.draw(st.sampled_from([20, 32]))
        text = Address.segwit(witver, data.draw(st.binary(min_size=size, max_size=size)), net).text
        if other is net:
            assert Address.parse(text, other).text == text
        else:
            with pytest.raises(InvalidInput):
                Address.parse(text, other)

    def test_tb_on_regtest_and_bcrt_on_test(self) -> None:
        tb = Address.segwit(0, _H, Network.TEST).text
        bcrt = Address.segwit(0, _H, Network.REGTEST).text
        assert tb.startswith("tb1q") and bcrt.startswith("bcrt1q")
        with pytest.raises(InvalidInput):
            Address.parse(tb, Network.REGTEST)
        with pytest.raises(InvalidInput):
            Address.parse(bcrt, Network.TEST)
        with pytest.raises(InvalidInput):
            Address.parse(bcrt, Network.LIVE)  # "bcrt1..." does not start with "bc1"
        with pytest.raises(InvalidInput):
            Address.parse(Address.segwit(0, _H, Network.LIVE).text, Network.REGTEST)

    @pytest.mark.parametrize("version", [0x01, 0x30, 0x80, 0xFF])
    def test_unknown_base58_version(self, version: int) -> None:
        text = b58check_encode(version, _H)
        for net in Network:
            with pytest.raises(InvalidInput):
                Address.parse(text, net)

    @pytest.mark.parametrize("size", [0, 19, 21, 32])
    def test_base58_payload_length(self, size: int) -> None:
        text = b58check_encode(0x05, bytes(size))
        with pytest.raises(InvalidInput):
            Address.parse(text, Network.LIVE)

    @pytest.mark.parametrize("value", [None, 5, b"1abc", "", "x" * 91, "2MyLfPrxCF46e4JUnuvgXaVxtgcYQ6EUK7W\u00e9"])
    def test_not_an_address(self, value: object) -> None:
        with pytest.raises(InvalidInput):
            Address.parse(value, Network.TEST)  # type: ignore[arg-type]

    def test_bad_checksum(self) -> None:
        text = h.B_P2SH_TEST[:-1] + ("X" if h.B_P2SH_TEST[-1] != "X" else "Y")
        with pytest.raises(InvalidInput):
            Address.parse(text, Network.TEST)


# BIP350 test vectors (valid: address -> scriptPubKey; invalid: any reason)
BIP350_VALID = [
    ("BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4", "0014751e76e8199196d454941c45d1b3a323f1433bd6"),
    ("tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7",
     "00201863143c14c5166804bd19203356da136c985678cd4d27a1b8c6329604903262"),
    ("bc1pw508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7kt5nd6y",
     "5128751e76e8199196d454941c45d1b3a323f1433bd6751e76e8199196d454941c45d1b3a323f1433bd6"),
    ("BC1SW50QGDZ25J", "6002751e"),
    ("bc1zw508d6qejxtdg4y5r3zarvaryvaxxpcs", "5210751e76e8199196d454941c45d1b3a323"),
    ("tb1qqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvsesrxh6hy",
     "0020000000c4a5cad46221b2a187905e5266362b99d5e91c6ce24d165dab93e86433"),
    ("tb1pqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvsesf3hn0c",
     "5120000000c4a5cad46221b2a187905e5266362b99d5e91c6ce24d165dab93e86433"),
    ("bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0",
     "512079be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"),
]
BIP350_INVALID = [
    "tc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq5zuyut",  # invalid hrp
    "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqh2y7hd",  # v1 with bech32
    "tb1z0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqglt7rf",  # v2 with bech32
    "BC1S0XLXVLHEMJA6C4DQV22UAPCTQUPFHLXM9H8Z3K2E72Q4K9HCZ7VQ54WELL",  # v16 with bech32
    "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kemeawh",  # v0 with bech32m
    "tb1q0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq24jc47",  # v0 with bech32m
    "bc1p38j9r5y49hruaue7wxjce0updqjuyyx0kh56v8s25huc6995vvpql3jow4",  # invalid character in checksum
    "BC130XLXVLHEMJA6C4DQV22UAPCTQUPFHLXM9H8Z3K2E72Q4K9HCZ7VQ7ZWS8R",  # invalid witness version
    "bc1pw5dgrnzv",  # program of 1 byte
    "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7v8n0nx0muaewav253zgeav",  # program of 41 bytes
    "BC1QR508D6QEJXTDG4Y5R3ZARVARYV98GJ9P",  # v0 program of 16 bytes
    "tb1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq47Zagq",  # mixed case
    "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7v07qwwzcrf",  # zero padding of more than 4 bits
    "tb1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vpggkg4j",  # non-zero padding
    "bc1gmk9yu",  # empty data section
]


def _net_of(text: str) -> Network:
    return Network.TEST if text.lower().startswith("tb1") else Network.LIVE


@pytest.mark.parametrize(("text", "spk"), BIP350_VALID)
def test_bip350_valid(text: str, spk: str) -> None:
    net = _net_of(text)
    assert Address.parse(text, net).script_pubkey.hex() == spk
    for other in Network:
        if other.params.hrp != net.params.hrp:
            with pytest.raises(InvalidInput):
                Address.parse(text, other)


@pytest.mark.parametrize("text", BIP350_INVALID)
def test_bip350_invalid(text: str) -> None:
    for net in Network:
        with pytest.raises(InvalidInput):
            Address.parse(text, net)


def _encode_with_const(hrp: str, witver: int, prog: bytes, const: int) -> str:
    """Encode a segwit address with a chosen checksum constant (to build wrong-variant addresses)."""
    data = [witver, *_convertbits(prog, 8, 5, True)]
    poly = _polymod([*_hrp_expand(hrp), *data, 0, 0, 0, 0, 0, 0]) ^ const
    return hrp + "1" + "".join(CHARSET[d] for d in data + [(poly >> 5 * (5 - i)) & 31 for i in range(6)])


@fast(100)
@given(net=networks(), size=st.sampled_from([20, 32]), data=st.data())
def test_v0_with_bech32m_rejected(net: Network, size: int, data: st.DataObject) -> None:
    prog = data.draw(st.binary(min_size=size, max_size=size))
    hrp = net.params.hrp
    assert Address.parse(_encode_with_const(hrp, 0, prog, BECH32_CONST), net).script_pubkey == bytes([0, size]) + prog
    with pytest.raises(InvalidInput):
        Address.parse(_encode_with_const(hrp, 0, prog, BECH32M_CONST), net)


@fast(100)
@given(net=networks(), witver=st.integers(1, 16), data=st.data())
def test_v1_plus_with_bech32_rejected(net: Network, witver: int, data: st.DataObject) -> None:
    prog = data.draw(st.binary(min_size=2, max_size=40))
    hrp = net.params.hrp
    good = _encode_with_const(hrp, witver, prog, BECH32M_CONST)
    assert Address.parse(good, net).script_pubkey == bytes([0x50 + witver, len(prog)]) + prog
    with pytest.raises(InvalidInput):
        Address.parse(_encode_with_const(hrp, witver, prog, BECH32_CONST), net)
