"""What the server tells the client: funding info (spec 6.2, 6.3) and payment results (spec 6.2, 6.3)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, cast

from paychan_common.channel import ChannelParams
from paychan_common.errors import PaychanError
from paychan_common.keys import PublicKey
from paychan_common.network import Network

from .errors import AddressMismatch, BadResponse, InvalidArgument

Family = Literal["v1", "v2", "v2.3"]
FAMILIES: tuple[Family, ...] = ("v1", "v2", "v2.3")
V1_DUST_LIMIT = 700  # the v1 server's hard-coded dust limit; v1 FundingInfo does not carry one (spec 6.2)
MAX_SATOSHI = 21_000_000 * 100_000_000


def parse_family(text: str) -> Family:
    """Parse a route family name: v1, v2 (v2-seed) or v2.3 (v2.3.0)."""
    names: dict[str, Family] = {"v1": "v1", "v2": "v2", "v2-seed": "v2", "v2.3": "v2.3", "v2.3.0": "v2.3"}
    family = names.get(text)
    if family is None:
        raise InvalidArgument(f"unknown route family {text!r} (expected v1, v2 or v2.3)")
    return family


def _field(body: dict[str, Any], key: str, kind: type, *, optional: bool = False) -> Any:
    value = body.get(key)
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, kind):
        raise BadResponse(f"server response field {key!r} is missing or not a {kind.__name__}")
    return value


def _amount(body: dict[str, Any], key: str, *, optional: bool = False) -> int | None:
    value = _field(body, key, int, optional=optional)
    if value is not None and not 0 <= value <= MAX_SATOSHI:
        raise BadResponse(f"server response field {key!r} is out of range: {value}")
    return cast("int | None", value)


def _json_object(body: object) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadResponse("server response is not a JSON object")
    return cast("dict[str, Any]", body)


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
            "family": self.family, "client_pubkey": self.params.client_pubkey.hex,
            "server_pubkey": self.server_pubkey.hex, "exp_time": self.params.exp_time,
            "funding_address": self.funding_address, "redeem_script": self.redeem_script.hex(),
            "open_price": self.open_price, "dust_limit": self.dust_limit,
            "funding_tx_min_conf": self.funding_tx_min_conf, "settlement_period_hours": self.settlement_period_hours,
            "min_duration_hours": self.min_duration_hours,
        }

    @classmethod
    def from_response(cls, body: object, family: Family, client_pubkey: PublicKey, exp_time: int,
                      network: Network, *, open_url: str | None = None) -> FundingInfo:
        """Parse a FundingInfo body and check its address (and script, when sent) against our derivation."""
        obj = _json_object(body)
        try:
            server_pubkey = PublicKey.from_hex(_field(obj, "server_pubkey", str))
            params = ChannelParams(client_pubkey, server_pubkey, exp_time, network)
        except PaychanError as exc:
            raise BadResponse(f"server funding info is invalid: {exc.message}") from None
        address_copy = _field(obj, "funding_address_copy", str)
        if address_copy != params.funding_address.text:
            raise AddressMismatch(f"server funding address {address_copy} differs from ours "
                                  f"{params.funding_address.text}")
        script_copy = _field(obj, "redeem_script_copy", str, optional=True)
        if script_copy is not None and script_copy.lower() != params.redeem_script.hex():
            raise AddressMismatch("server redeem script differs from ours")
        dust = _amount(obj, "dust_limit", optional=True)
        if dust is None:
            if family != "v1":
                raise BadResponse("server funding info lacks dust_limit")
            dust = V1_DUST_LIMIT
        return cls(
            family=family, params=params, open_price=cast(int, _amount(obj, "open_price")), dust_limit=dust,
            funding_tx_min_conf=_field(obj, "funding_tx_min_conf", int),
            settlement_period_hours=_field(obj, "settlement_period_hours", int),
            min_duration_hours=_field(obj, "min_duration_hours", int, optional=True), open_url=open_url,
        )


@dataclass(frozen=True, slots=True)
class PaymentResult:
    """The server's answer to open, pay and close (PaymentResult, spec 6.2, 6.3)."""

    channel_status: str
    channel_value_left: int
    value_received: int
    settlement_txid: str | None
    application_data: str = ""

    @property
    def closed(self) -> bool:
        """True once the server reports the channel closed."""
        return self.channel_status == "closed"

    def to_json(self) -> dict[str, Any]:
        """The result as JSON."""
        return {"channel_status": self.channel_status, "channel_value_left": self.channel_value_left,
                "value_received": self.value_received, "settlement_txid": self.settlement_txid,
                "application_data": self.application_data}

    @classmethod
    def from_response(cls, body: object) -> PaymentResult:
        """Parse a PaymentResult; `settlement_txid` "" or null mean none (spec 6.5)."""
        obj = _json_object(body)
        status = _field(obj, "channel_status", str)
        if status not in ("open", "closed"):
            raise BadResponse(f"unknown channel_status {status!r}")
        txid = _field(obj, "settlement_txid", str, optional=True) or None
        if txid is not None and (len(txid) != 64 or not _is_hex(txid)):
            raise BadResponse("settlement_txid is not a txid")
        app = _field(obj, "application_data", str, optional=True) or ""
        return cls(status, cast(int, _amount(obj, "channel_value_left")), cast(int, _amount(obj, "value_received")),
                   txid.lower() if txid else None, app)


def _is_hex(text: str) -> bool:
    try:
        bytes.fromhex(text)
    except ValueError:
        return False
    return True
