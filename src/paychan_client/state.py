"""The client's view of one open (or closed) channel, and its JSON state file."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Any, Literal

from paychan_common.address import Address
from paychan_common.channel import ChannelParams, ClientSignature
from paychan_common.errors import PaychanError
from paychan_common.keys import PrivateKey, PublicKey
from paychan_common.network import Network
from paychan_common.sighash import NONE_ACP, SINGLE_ACP
from paychan_common.state import Family
from paychan_common.tx import OutPoint

from .errors import StateFileError
from .models import PaymentResult
from .statefile import FORMAT, FORMAT_VERSION, Fields, public_view, read_json, write_json_atomic

ChannelStatus = Literal["open", "closed"]


@dataclass(frozen=True, slots=True)
class ClientChannel:
    """Everything the client keeps about a channel; a change returns a new value."""

    network: Network
    client_key: PrivateKey
    server_pubkey: PublicKey
    exp_time: int
    family: Family
    funding_outpoint: OutPoint
    funding_value: int
    redeem_script: bytes
    change_address: str  # v1: the client's own address; v2 families: the funding address (spec 4.1)
    refund_address: str
    dust_limit: int
    change_value: int  # latest payment's change
    signature: bytes  # latest payment's DER signature
    sighash: int  # latest payment's sighash byte
    channel_url: str
    secret: str = ""  # v2.3.0: hex SHA256(DER ‖ flag) of the opening payment (spec 6.4)
    status: ChannelStatus = "open"
    settlement_txid: str | None = None

    @property
    def params(self) -> ChannelParams:
        """(client key, server key, exp_time) on this network."""
        return ChannelParams(self.client_key.public_key, self.server_pubkey, self.exp_time, self.network)

    @property
    def client_pubkey(self) -> PublicKey:
        """The client's public key."""
        return self.client_key.public_key

    @property
    def funding_address(self) -> str:
        """The channel's P2SH funding address."""
        return self.params.funding_address.text

    @property
    def latest_signature(self) -> ClientSignature:
        """The latest payment's signature."""
        return ClientSignature(self.signature, self.sighash)

    @property
    def value_sent(self) -> int:
        """Total value given to the server so far."""
        return self.funding_value - self.change_value

    def with_payment(self, change_value: int, sig: ClientSignature) -> ClientChannel:
        """The channel after a payment the server accepted."""
        return replace(self, change_value=change_value, signature=sig.der, sighash=sig.sighash)

    def with_result(self, result: PaymentResult) -> ClientChannel:
        """Record the server's status and settlement txid."""
        status: ChannelStatus = "closed" if result.closed else self.status
        return replace(self, status=status, settlement_txid=result.settlement_txid or self.settlement_txid)

    def to_json(self) -> dict[str, Any]:
        """The state file's content (private key as hex; derived values for reading only)."""
        return {
            "format": FORMAT, "version": FORMAT_VERSION, "stage": "channel",
            "network": self.network.params.name, "family": self.family.label,
            "client_privkey": self.client_key.secret.hex(), "client_pubkey": self.client_pubkey.hex,
            "server_pubkey": self.server_pubkey.hex, "exp_time": self.exp_time,
            "funding_txid": self.funding_outpoint.display_txid, "funding_vout": self.funding_outpoint.vout,
            "funding_value": self.funding_value, "funding_address": self.funding_address,
            "redeem_script": self.redeem_script.hex(), "change_address": self.change_address,
            "refund_address": self.refund_address, "dust_limit": self.dust_limit,
            "change_value": self.change_value, "signature": self.signature.hex(), "sighash": f"{self.sighash:02x}",
            "channel_url": self.channel_url, "secret": self.secret, "status": self.status,
            "settlement_txid": self.settlement_txid,
        }

    def public_json(self) -> dict[str, Any]:
        """The state without the private key (for printing)."""
        return public_view(self.to_json())

    @classmethod
    def from_json(cls, obj: dict[str, Any], source: str = "<memory>") -> ClientChannel:
        """Parse and cross-check a state file's content (the script must match the keys)."""
        f = Fields(obj, source)
        if obj.get("stage") != "channel":
            raise StateFileError(f"state file {source} holds no opened channel yet (stage {obj.get('stage')!r})")
        network = f.network()
        sighash = f.hexbytes("sighash")
        if len(sighash) != 1 or sighash[0] not in (SINGLE_ACP, NONE_ACP):
            raise f.fail("sighash", "must be 83 or 82")
        status = f.text("status")
        if status not in ("open", "closed"):
            raise f.fail("status", "must be open or closed")
        channel = cls(
            network=network, client_key=f.private_key(), server_pubkey=f.public_key("server_pubkey"),
            exp_time=f.integer("exp_time"), family=f.family(), funding_outpoint=f.outpoint(),
            funding_value=f.integer("funding_value"), redeem_script=f.hexbytes("redeem_script"),
            change_address=f.text("change_address"), refund_address=f.text("refund_address"),
            dust_limit=f.integer("dust_limit"), change_value=f.integer("change_value"),
            signature=f.hexbytes("signature"),
            sighash=sighash[0], channel_url=f.text("channel_url"), secret=f.text("secret"),
            status="open" if status == "open" else "closed",
            settlement_txid=f.text("settlement_txid") if f.has("settlement_txid") else None,
        )
        try:
            params = channel.params
            Address.parse(channel.change_address, network)
            Address.parse(channel.refund_address, network)
        except PaychanError as exc:
            raise StateFileError(f"state file {source}: {exc.message}") from None
        if params.redeem_script != channel.redeem_script:
            raise f.fail("redeem_script", "does not match the keys and exp_time")
        if channel.change_value > channel.funding_value:
            raise f.fail("change_value", "exceeds funding_value")
        return channel

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the state file atomically with mode 0600."""
        write_json_atomic(path, self.to_json())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ClientChannel:
        """Read a state file written by save()."""
        return cls.from_json(read_json(path), str(path))
