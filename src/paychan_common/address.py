"""Addresses to output scripts and back (spec 2.2; segwit per the project decisions)."""

from __future__ import annotations

from dataclasses import dataclass

from .base58 import b58check_decode, b58check_encode
from .bech32 import decode_segwit, encode_segwit
from .errors import InvalidInput
from .network import Network


def p2pkh_script(h160: bytes) -> bytes:
    """OP_DUP OP_HASH160 <20> OP_EQUALVERIFY OP_CHECKSIG."""
    return b"\x76\xa9\x14" + h160 + b"\x88\xac"


def p2sh_script(h160: bytes) -> bytes:
    """OP_HASH160 <20> OP_EQUAL."""
    return b"\xa9\x14" + h160 + b"\x87"


@dataclass(frozen=True, slots=True)
class Address:
    """A parsed address: its text, its network and the output script it pays to."""

    text: str
    network: Network
    script_pubkey: bytes

    @classmethod
    def parse(cls, text: str, network: Network) -> Address:
        """Parse Base58Check P2PKH/P2SH or bech32/bech32m segwit; reject other networks."""
        if not isinstance(text, str) or not text or len(text) > 90 or not text.isascii():
            raise InvalidInput("invalid address")
        params = network.params
        lowered = text.lower()
        if lowered.startswith(params.hrp + "1"):
            witver, prog = decode_segwit(params.hrp, text)
            op = 0 if witver == 0 else 0x50 + witver
            return cls(text, network, bytes([op, len(prog)]) + prog)
        try:
            version, payload = b58check_decode(text)
        except InvalidInput:
            if "1" in lowered and lowered.split("1", 1)[0] in ("bc", "tb", "bcrt"):
                raise InvalidInput(f"address {text!r} is not for the {params.name} network") from None
            raise InvalidInput(f"invalid address {text!r}") from None
        if len(payload) != 20:
            raise InvalidInput(f"invalid address payload length in {text!r}")
        if version == params.p2pkh_version:
            return cls(text, network, p2pkh_script(payload))
        if version == params.p2sh_version:
            return cls(text, network, p2sh_script(payload))
        raise InvalidInput(f"address {text!r} is not for the {params.name} network")

    @classmethod
    def p2sh(cls, h160: bytes, network: Network) -> Address:
        """The P2SH address of a script hash."""
        return cls(b58check_encode(network.params.p2sh_version, h160), network, p2sh_script(h160))

    @classmethod
    def p2pkh(cls, h160: bytes, network: Network) -> Address:
        """The P2PKH address of a key hash."""
        return cls(b58check_encode(network.params.p2pkh_version, h160), network, p2pkh_script(h160))

    @classmethod
    def segwit(cls, witver: int, prog: bytes, network: Network) -> Address:
        """A segwit address (v0 bech32, v1+ bech32m)."""
        text = encode_segwit(network.params.hrp, witver, prog)
        return cls.parse(text, network)
