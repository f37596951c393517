"""Client-side payments: the dust rule, signing, and each route family's encoding (spec 4, 5)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from paychan_common.address import Address
from paychan_common.channel import ClientSignature, sign_payment
from paychan_common.errors import PaychanError
from paychan_common.keys import PrivateKey
from paychan_common.network import Network
from paychan_common.payment import Payment
from paychan_common.sighash import NONE_ACP, SINGLE_ACP
from paychan_common.tx import OutPoint
from paychan_common.wire_v1 import encode_v1_payload
from paychan_common.wire_v2 import payment_to_json

from .errors import InvalidArgument


def change_and_sighash(change_value: int, dust_limit: int) -> tuple[int, int]:
    """JS client rule (spec 4.2): 0x83 if change >= dust limit, else change 0 with 0x82 (all to the server)."""
    if change_value >= max(dust_limit, 1):
        return change_value, SINGLE_ACP
    return 0, NONE_ACP


def parse_address(text: str, network: Network) -> Address:
    """Parse an address for this network, as a client error."""
    try:
        return Address.parse(text, network)
    except PaychanError as exc:
        raise InvalidArgument(exc.message) from None


@dataclass(frozen=True, slots=True)
class SignedPayment:
    """A payment signed by the client, ready for any route family's encoding."""

    outpoint: OutPoint
    redeem_script: bytes
    change_value: int
    change_address: str
    signature: ClientSignature

    @property
    def secret(self) -> str:
        """hex SHA256(DER ‖ flag): the v2.3.0 `secret` when this is the opening payment (spec 6.4)."""
        return self.signature.secret().hex()

    def v1_payload(self) -> str:
        """The v1 base64url payload, unpadded like the JS client (spec 5.1)."""
        return encode_v1_payload(self.change_value, self.signature.der, self.signature.sighash)

    def _payment(self, application_data: str) -> Payment:
        return Payment(self.change_value, self.signature, self.outpoint, self.redeem_script, self.change_address,
                       application_data)

    def v2_seed_body(self, application_data: str = "") -> dict[str, Any]:
        """v2-seed Payment wrapper: DER-only signature_data plus sighash_flag (spec 5.2)."""
        return payment_to_json(self._payment(application_data), seed_form=True)

    def v2_3_body(self, application_data: str = "") -> dict[str, Any]:
        """v2.3.0 Payment wrapper around a full PaymentData: signature_data = DER ‖ flag (spec 5.3)."""
        return payment_to_json(self._payment(application_data), seed_form=False)

    def v2_3_compact_body(self, application_data: str = "") -> dict[str, Any]:
        """v2.3.0 Payment wrapper around a CompactPaymentData (spec 5.3)."""
        return {"payment_data": {"change_value": self.change_value,
                                 "signature_data": self.signature.script_sig_push.hex()},
                "application_data": application_data}


def sign(key: PrivateKey, outpoint: OutPoint, redeem_script: bytes, change_value: int, change_address: str,
         network: Network, dust_limit: int) -> SignedPayment:
    """Sign a payment leaving change_value (dust rule applied) to change_address (spec 4.1-4.3)."""
    change, sighash = change_and_sighash(change_value, dust_limit)
    address = parse_address(change_address, network)
    sig = sign_payment(key.secret, outpoint, redeem_script, change, address.script_pubkey, sighash)
    return SignedPayment(outpoint, redeem_script, change, change_address, sig)


def client_address(key: PrivateKey, network: Network) -> str:
    """The client's own P2PKH address: default v1 change and refund address (spec 13.2)."""
    return Address.p2pkh(key.public_key.hash160(), network).text
