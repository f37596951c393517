"""A channel before it is opened (key made, terms fetched, funding recorded), kept in the same state file."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from paychan_common.channel import ChannelParams
from paychan_common.errors import PaychanError
from paychan_common.keys import PrivateKey, PublicKey
from paychan_common.network import Network
from paychan_common.state import Family
from paychan_common.tx import OutPoint

from .errors import ChannelStateError, StateFileError
from .state import ClientChannel
from .statefile import FORMAT, FORMAT_VERSION, Fields, public_view, read_json, write_json_atomic


@dataclass(frozen=True, slots=True)
class ChannelDraft:
    """What the client knows before the opening payment; optional fields fill in step by step."""

    network: Network
    family: Family
    client_key: PrivateKey
    endpoint: str | None = None
    exp_time: int | None = None
    server_pubkey: PublicKey | None = None
    dust_limit: int | None = None
    open_price: int | None = None
    funding_outpoint: OutPoint | None = None
    funding_value: int | None = None
    refund_address: str | None = None

    @property
    def params(self) -> ChannelParams:
        """Channel parameters; needs the funding info step done."""
        if self.exp_time is None or self.server_pubkey is None:
            raise ChannelStateError("no funding info yet: run `info` first")
        try:
            return ChannelParams(self.client_key.public_key, self.server_pubkey, self.exp_time, self.network)
        except PaychanError as exc:
            raise StateFileError(exc.message) from None

    @property
    def funding(self) -> tuple[OutPoint, int]:
        """The recorded funding outpoint and value; needs the fund step done."""
        if self.funding_outpoint is None or self.funding_value is None:
            raise ChannelStateError("no funding recorded yet: run `fund` first")
        return self.funding_outpoint, self.funding_value

    def to_json(self) -> dict[str, Any]:
        """The state file's content."""
        op = self.funding_outpoint
        out: dict[str, Any] = {
            "format": FORMAT, "version": FORMAT_VERSION, "stage": "draft",
            "network": self.network.params.name, "family": self.family.label,
            "client_privkey": self.client_key.secret.hex(), "client_pubkey": self.client_key.public_key.hex,
            "endpoint": self.endpoint, "exp_time": self.exp_time,
            "server_pubkey": self.server_pubkey.hex if self.server_pubkey else None,
            "dust_limit": self.dust_limit, "open_price": self.open_price,
            "funding_txid": op.display_txid if op else None, "funding_vout": op.vout if op else None,
            "funding_value": self.funding_value, "refund_address": self.refund_address,
        }
        if self.exp_time is not None and self.server_pubkey is not None:
            out["funding_address"] = self.params.funding_address.text
        return out

    def public_json(self) -> dict[str, Any]:
        """The draft without the private key (for printing)."""
        return public_view(self.to_json())

    @classmethod
    def from_json(cls, obj: dict[str, Any], source: str = "<memory>") -> ChannelDraft:
        """Parse a draft state file's content."""
        f = Fields(obj, source)
        has_op = f.has("funding_txid") or f.has("funding_vout")
        return cls(
            network=f.network(), family=f.family(), client_key=f.private_key(),
            endpoint=f.text("endpoint") if f.has("endpoint") else None,
            exp_time=f.integer("exp_time") if f.has("exp_time") else None,
            server_pubkey=f.public_key("server_pubkey") if f.has("server_pubkey") else None,
            dust_limit=f.integer("dust_limit") if f.has("dust_limit") else None,
            open_price=f.integer("open_price") if f.has("open_price") else None,
            funding_outpoint=f.outpoint() if has_op else None,
            funding_value=f.integer("funding_value") if f.has("funding_value") else None,
            refund_address=f.text("refund_address") if f.has("refund_address") else None,
        )

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the state file atomically with mode 0600."""
        write_json_atomic(path, self.to_json())


def load_any(path: str | os.PathLike[str]) -> ClientChannel | ChannelDraft:
    """Load a state file in either stage."""
    obj = read_json(path)
    stage = obj.get("stage")
    if stage == "channel":
        return ClientChannel.from_json(obj, str(path))
    if stage == "draft":
        return ChannelDraft.from_json(obj, str(path))
    raise StateFileError(f"state file {path} has unknown stage {stage!r}")
