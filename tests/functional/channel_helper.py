"""Builds client requests for the functional tests from the core primitives (an independent client)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from paychan_common.address import Address
from paychan_common.channel import ChannelParams, ClientSignature, debug_funding, sign_payment
from paychan_common.keys import PrivateKey, PublicKey
from paychan_common.network import Network
from paychan_common.sighash import NONE_ACP, SINGLE_ACP
from paychan_common.tx import OutPoint
from paychan_common.wire_v1 import encode_v1_payload

DEBUG_SERVER_PK = PublicKey.from_hex("0225b3aaf58992a8cc909522c2ec859ef218fd29fda0a6723cfb4e0529f80cc8f3")
CLIENT_REFUND = "n4XmX91N5FfccY678vaG1ELNtXh6skVES7"


@dataclass
class TestChannel:
    """One client channel in debug mode (fake funding derived from the key)."""

    __test__ = False

    exp_time: int
    key: PrivateKey = field(default_factory=lambda: PrivateKey(secrets.token_bytes(32)))
    network: Network = Network.TEST
    server_pk: PublicKey = DEBUG_SERVER_PK
    outpoint: OutPoint | None = None
    funding_value: int = 0

    def __post_init__(self) -> None:
        self.params = ChannelParams(self.key.public_key, self.server_pk, self.exp_time, self.network)
        if self.outpoint is None:
            f = debug_funding(self.key.public_key, self.exp_time, self.params.funding_address.script_pubkey)
            self.outpoint, self.funding_value = f.outpoint, f.value

    @property
    def pk(self) -> str:
        """Client key hex."""
        return self.key.public_key.hex

    @property
    def op(self) -> OutPoint:
        """Funding outpoint."""
        assert self.outpoint is not None
        return self.outpoint

    def sign(self, change: int, address: str | None = None, sighash: int = SINGLE_ACP) -> ClientSignature:
        """Sign a payment leaving `change` to address (default: the funding address)."""
        addr = Address.parse(address, self.network) if address else self.params.funding_address
        return sign_payment(self.key.secret, self.op, self.params.redeem_script, change, addr.script_pubkey, sighash)

    def v1_payload(self, change: int, address: str, sighash: int = SINGLE_ACP, padded: bool = False) -> str:
        """v1 base64url payload."""
        sig = self.sign(change, address, sighash)
        return encode_v1_payload(change, sig.der, sig.sighash, padded=padded)

    def v2_body(self, change: int, address: str | None = None, sighash: int = SINGLE_ACP) -> dict[str, Any]:
        """v2-seed Payment wrapper."""
        sig = self.sign(change, address, sighash)
        return {"payment_data": {
            "change_value": change, "signature_data": sig.der.hex(), "sighash_flag": f"{sig.sighash:02x}",
            "funding_txid": self.op.display_txid, "funding_vout": self.op.vout,
            "redeem_script": self.params.redeem_script.hex(),
            "change_address": address or self.params.funding_address.text}, "application_data": ""}

    def v23_full(self, change: int, address: str | None = None) -> dict[str, Any]:
        """v2.3.0 full PaymentData wrapper (DER+flag in signature_data)."""
        sig = self.sign(change, address)
        return {"payment_data": {
            "change_value": change, "signature_data": sig.script_sig_push.hex(),
            "funding_txid": self.op.display_txid, "funding_vout": self.op.vout,
            "redeem_script": self.params.redeem_script.hex(),
            "change_address": address or self.params.funding_address.text}, "application_data": ""}

    def v23_compact(self, change: int, sighash: int = SINGLE_ACP) -> dict[str, Any]:
        """v2.3.0 CompactPaymentData wrapper."""
        sig = self.sign(change, None, sighash)
        return {"payment_data": {"change_value": change, "signature_data": sig.script_sig_push.hex()},
                "application_data": ""}

    def secret(self, opening_change: int) -> str:
        """The v2.3.0 secret of the opening payment."""
        return self.sign(opening_change).secret().hex()

    @property
    def seed_url(self) -> str:
        """v2-seed channel path."""
        return f"/v2/channels/{self.pk}/{self.exp_time}/{self.op.display_txid}/{self.op.vout}"

    @property
    def v23_url(self) -> str:
        """v2.3.0 channel path."""
        return f"/v2/channels/{self.op.display_txid}/{self.op.vout}"


__all__ = ["CLIENT_REFUND", "DEBUG_SERVER_PK", "NONE_ACP", "SINGLE_ACP", "TestChannel"]
