"""What the server tells the client, parsed with the shared wire models (`paychan_common.messages`): funding
info checked against our own derivation (spec 3.3, 6.2, 6.3) and payment results (spec 6.2-6.4)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from paychan_common.channel import ChannelParams
from paychan_common.errors import PaychanError
from paychan_common.keys import PublicKey
from paychan_common.messages import FundingInfo as WireFundingInfo
from paychan_common.messages import FundingInfoV1, PaymentResult, describe
from paychan_common.network import Network
from paychan_common.state import Family

from .errors import AddressMismatch, BadResponse, InvalidArgument

FAMILIES: tuple[Family, ...] = tuple(Family)
V1_DUST_LIMIT = 700  # the v1 server's hard-coded dust limit; v1 FundingInfo does not carry one (spec 6.2)
M = TypeVar("M", bound=BaseModel)

__all__ = ["FAMILIES", "Family", "FundingInfo", "PaymentResult", "parse_family", "parse_response"]


def parse_family(family: Family | str) -> Family:
    """A route family (spec 0.1): the core `Family` itself, or its label (v1, v2-seed, v2.3.0) or short
    spelling (v2, v2.3), as the CLI, older state files and callers of the library give it."""
    if isinstance(family, Family):
        return family
    try:
        return Family.parse(family)
    except PaychanError:
        raise InvalidArgument(f"unknown route family {family!r} (expected v1, v2-seed/v2 or v2.3.0/v2.3)") from None


def parse_response(model: type[M], body: object) -> M:
    """A server answer validated as the wire model `model`; BadResponse naming the first problem."""
    if not isinstance(body, dict):
        raise BadResponse("server response is not a JSON object")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise BadResponse(f"server response: {describe(exc)}") from None


@dataclass(frozen=True, slots=True)
class FundingInfo:
    """Channel terms for one (client key, exp_time), checked against our own derivation."""

    family: Family
    params: ChannelParams
    open_price: int
    dust_limit: int
    funding_tx_min_conf: int
    settlement_period_hours: int
    min_duration_hours: int | None = None
    open_url: str | None = None  # v1: the fundingInfo response's Location header
    earliest_exp_time: int | None = None  # extra field of this project's servers (spec 6.3); None if not sent

    @property
    def server_pubkey(self) -> PublicKey:
        """The server's key."""
        return self.params.server_pubkey

    @property
    def funding_address(self) -> str:
        """The P2SH address to fund (spec 3.3)."""
        return self.params.funding_address.text

    @property
    def redeem_script(self) -> bytes:
        """The channel redeem script (spec 3.1)."""
        return self.params.redeem_script

    def to_json(self) -> dict[str, Any]:
        """A JSON-friendly summary."""
        return {
            "family": self.family.label, "client_pubkey": self.params.client_pubkey.hex,
            "server_pubkey": self.server_pubkey.hex, "exp_time": self.params.exp_time,
            "funding_address": self.funding_address, "redeem_script": self.redeem_script.hex(),
            "open_price": self.open_price, "dust_limit": self.dust_limit,
            "funding_tx_min_conf": self.funding_tx_min_conf, "settlement_period_hours": self.settlement_period_hours,
            "min_duration_hours": self.min_duration_hours, "earliest_exp_time": self.earliest_exp_time,
        }

    @classmethod
    def from_response(cls, body: object, family: Family, client_pubkey: PublicKey, exp_time: int,
                      network: Network, *, open_url: str | None = None) -> FundingInfo:
        """Parse a FundingInfo body and check its address (and script, when sent) against our derivation."""
        wire: FundingInfoV1 | WireFundingInfo
        script_copy: str | None = None
        if family is Family.V1:
            wire = parse_response(FundingInfoV1, body)
            dust, min_duration = V1_DUST_LIMIT, None
        else:
            wire = parse_response(WireFundingInfo, body)
            dust, min_duration, script_copy = wire.dust_limit, wire.min_duration_hours, wire.redeem_script_copy
        try:
            params = ChannelParams(client_pubkey, PublicKey.from_hex(wire.server_pubkey), exp_time, network)
        except PaychanError as exc:
            raise BadResponse(f"server funding info is invalid: {exc.message}") from None
        if wire.funding_address_copy != params.funding_address.text:
            raise AddressMismatch(f"server funding address {wire.funding_address_copy} differs from ours "
                                  f"{params.funding_address.text}")
        if script_copy is not None and script_copy.lower() != params.redeem_script.hex():
            raise AddressMismatch("server redeem script differs from ours")
        return cls(family=family, params=params, open_price=wire.open_price, dust_limit=dust,
                   funding_tx_min_conf=wire.funding_tx_min_conf, settlement_period_hours=wire.settlement_period_hours,
                   min_duration_hours=min_duration, open_url=open_url,
                   earliest_exp_time=wire.earliest_exp_time)


