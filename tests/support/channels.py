"""Channel builders for every tier: `Chan` (both private keys known: payments, signatures and stored states) and
`TestChannel` (a client in debug mode: the JSON bodies and paths of the HTTP routes)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field, replace
from typing import Any

from chan_store.contract import PaymentItem
from paychan_common.address import Address
from paychan_common.channel import (
    DEBUG_FUNDING_VALUE,
    ChannelParams,
    ClientSignature,
    Funding,
    PaymentVerifier,
    debug_funding,
    sign_payment,
)
from paychan_common.hashing import sha256
from paychan_common.keys import PrivateKey, PublicKey
from paychan_common.network import Network
from paychan_common.payment import Payment
from paychan_common.rules import ChannelPolicy, open_state
from paychan_common.sighash import NONE_ACP, SINGLE_ACP
from paychan_common.state import ChannelState, Family, Status
from paychan_common.tx import OutPoint
from paychan_common.wire_v1 import encode_v1_payload

__all__ = ["CLIENT_REFUND", "DEBUG_SERVER_PK", "NONE_ACP", "OPENED_AT", "SINGLE_ACP", "Chan", "StoredChannel",
           "TestChannel", "make_chan", "make_channel"]

DEBUG_SERVER_PK = PublicKey.from_hex("0225b3aaf58992a8cc909522c2ec859ef218fd29fda0a6723cfb4e0529f80cc8f3")
CLIENT_REFUND = "n4XmX91N5FfccY678vaG1ELNtXh6skVES7"
STORE_SERVER_KEY = PrivateKey(sha256(b"chan-store test server key"))
OPENED_AT = 1_700_000_000
STORE_EXP_TIME = 1_800_000_000


@dataclass(frozen=True)
class Chan:
    """A channel with both private keys known, for building and signing payments in tests."""

    client: PrivateKey
    server: PrivateKey
    params: ChannelParams
    funding: Funding
    verifier: PaymentVerifier

    @property
    def redeem_script(self) -> bytes:
        return self.params.redeem_script

    @property
    def funding_address(self) -> Address:
        return self.params.funding_address

    @property
    def outpoint(self) -> OutPoint:
        return self.funding.outpoint

    def sign(self, change_value: int, change_script: bytes | None = None, sighash: int = SINGLE_ACP,
             ) -> ClientSignature:
        """The client's signature of a payment (change to the funding address by default)."""
        script = self.funding_address.script_pubkey if change_script is None else change_script
        return sign_payment(self.client.secret, self.outpoint, self.redeem_script, change_value, script, sighash)

    def payment(self, change_value: int, *, sighash: int = SINGLE_ACP, address: Address | None = None,
                full: bool = True) -> Payment:
        """A v2 payment (full: with outpoint, redeem script and change address)."""
        addr = self.funding_address if address is None else address
        sig = self.sign(change_value, addr.script_pubkey, sighash)
        if not full:
            return Payment(change_value=change_value, signature=sig)
        return Payment(change_value=change_value, signature=sig, outpoint=self.outpoint,
                       redeem_script=self.redeem_script, change_address=addr.text)

    def opened(self, change_value: int, *, family: Family = Family.V2_SEED, address: Address | None = None,
               now: int = 1_700_000_000, policy: ChannelPolicy | None = None) -> ChannelState:
        """The state ChanStore holds after an opening payment leaving change_value (rules.open_state)."""
        addr = self.funding_address if address is None else address
        payment = self.payment(change_value, address=addr, full=False)
        return open_state(self.params, self.funding, payment, self.verifier, addr, family,
                          policy or ChannelPolicy(funding_min_conf=0), now).state


def make_chan(client_secret: bytes, server_secret: bytes, exp_time: int, network: Network,
              outpoint: OutPoint | None = None, funding_value: int = DEBUG_FUNDING_VALUE,
              confirmations: int = 0) -> Chan:
    """Build a channel; debug funding unless an outpoint is given."""
    client = PrivateKey(client_secret)
    server = PrivateKey(server_secret)
    params = ChannelParams(client.public_key, server.public_key, exp_time, network)
    spk = params.funding_address.script_pubkey
    if outpoint is None:
        funding = debug_funding(params.client_pubkey, exp_time, spk)
        funding = Funding(funding.outpoint, funding_value, confirmations, spk)
    else:
        funding = Funding(outpoint, funding_value, confirmations, spk)
    verifier = PaymentVerifier(params.client_pubkey, funding.outpoint, params.redeem_script)
    return Chan(client, server, params, funding, verifier)


@dataclass(frozen=True)
class StoredChannel(Chan):
    """A Chan and the state ChanStore holds after its opening payment; signs further payments as PaymentItems."""

    change_script: bytes
    state: ChannelState

    def pay(self, change_value: int, now: int = OPENED_AT + 60) -> PaymentItem:
        """A signed payment leaving `change_value` to the client."""
        sig = self.sign(change_value, self.change_script)
        return PaymentItem(self.outpoint, change_value, sig.der, sig.sighash, now)


def make_channel(client: int, *, exp_time: int = STORE_EXP_TIME, vout: int | None = None,
                 family: Family = Family.V2_SEED) -> StoredChannel:
    """ChanStore test client number `client`'s opened channel; `vout` picks another outpoint for the same key."""
    secret = sha256(b"chan-store test client %d" % client)
    chan = make_chan(secret, STORE_SERVER_KEY.secret, exp_time, Network.TEST)
    if vout is not None:
        chan = make_chan(secret, STORE_SERVER_KEY.secret, exp_time, Network.TEST,
                         outpoint=OutPoint(chan.outpoint.txid, vout))
    change = Address.p2pkh(chan.client.public_key.hash160(), Network.TEST)
    state = chan.opened(chan.funding.value - ChannelPolicy().open_price, family=family, address=change,
                        now=OPENED_AT, policy=ChannelPolicy())
    return StoredChannel(chan.client, chan.server, chan.params, chan.funding, chan.verifier, change.script_pubkey,
                         state)


def with_status(state: ChannelState, status: Status, txid: str = "") -> ChannelState:
    """The state moved to status with settlement txid (test set-up of closing and closed channels)."""
    return replace(state, status=status, settlement_txid=txid)


@dataclass
class TestChannel:
    """One client channel in debug mode (fake funding derived from the key), as the HTTP routes see it."""

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
