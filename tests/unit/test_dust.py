"""Relay dust thresholds computed as Bitcoin Core's GetDustThreshold (policy.cpp) at 3 sat/vB."""

from __future__ import annotations

import pytest

from paychan_common.address import Address
from paychan_common.dust import change_dust_thresholds, dust_threshold, is_witness_program
from paychan_common.network import Network


def test_every_accepted_change_type_has_cores_threshold() -> None:
    assert change_dust_thresholds() == {"P2PKH": 546, "P2SH": 540, "P2WPKH": 294, "P2WSH": 330, "P2TR": 330}


@pytest.mark.parametrize(("address", "threshold"), [
    ("n4XmX91N5FfccY678vaG1ELNtXh6skVES7", 546),  # spec 13.2's refund address (P2PKH)
    ("2MyLfPrxCF46e4JUnuvgXaVxtgcYQ6EUK7W", 540),  # spec 13.2's funding address (P2SH)
    ("tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx", 294),  # BIP173 P2WPKH
    ("tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7", 330),  # BIP173 P2WSH
])
def test_parsed_addresses(address: str, threshold: int) -> None:
    assert dust_threshold(Address.parse(address, Network.TEST).script_pubkey) == threshold


def test_threshold_scales_with_the_relay_fee_and_rounds_up() -> None:
    p2pkh = Address.parse("n4XmX91N5FfccY678vaG1ELNtXh6skVES7", Network.TEST).script_pubkey
    assert dust_threshold(p2pkh, 1000) == 182
    assert dust_threshold(p2pkh, 1001) == 183  # 182.182 rounded up


@pytest.mark.parametrize(("script", "witness"), [
    (b"\x00\x14" + bytes(20), True), (b"\x51\x20" + bytes(32), True), (b"\x60\x02ab", True),
    (b"\x00\x01a", False), (b"\x61\x02ab", False), (b"\x00\x14" + bytes(19), False), (b"\xa9\x14" + bytes(20), False),
])
def test_witness_program_shape(script: bytes, witness: bool) -> None:
    assert is_witness_program(script) is witness
