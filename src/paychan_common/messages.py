"""The public RBPCP wire messages, defined once (spec 5.2-5.4, 6.1-6.4): the server answers with them, the
client parses them, and the OpenAPI document is generated from them.

Field order is wire order (the JSON objects keep it). Every model is frozen and strict; the few tolerances
a client needs towards other servers (spec 6.5: `settlement_txid` "" for none) are `before` validators.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
    WithJsonSchema,
    field_validator,
)

from .amount import MAX_MONEY

__all__ = [
    "HEX64",
    "PUBKEY",
    "V1_RESULT_FIELDS",
    "ChannelLocation",
    "ErrorBody",
    "FundingInfo",
    "FundingInfoV1",
    "Health",
    "PaymentBody",
    "PaymentDataBody",
    "PaymentResult",
    "describe",
    "result_json",
    "result_json_v1",
]

HEX64 = "^[0-9a-fA-F]{64}$"
PUBKEY = "^0[23][0-9a-fA-F]{64}$"

Satoshis = Annotated[StrictInt, Field(ge=0, le=MAX_MONEY, description="satoshis")]
Count = Annotated[StrictInt, Field(ge=0)]
Txid = Annotated[StrictStr, Field(pattern=HEX64, description="display order")]
ServerKey = Annotated[StrictStr, Field(pattern=PUBKEY, description="compressed public key, hex")]

_FROZEN = ConfigDict(frozen=True, strict=True, extra="ignore")

M = TypeVar("M", bound=BaseModel)


def _no_default(schema: dict[str, Any]) -> None:
    """For a field the server omits rather than sends as null: no `default: null` in the schema."""
    schema.pop("default", None)


class ErrorBody(BaseModel):
    """Every error answer; the message is also the HTTP reason phrase (spec 6.1)."""

    model_config = _FROZEN

    type: Literal["payment_error", "application_error"]
    code: StrictStr = Field(description="stable machine-readable code")
    message: StrictStr = Field(description="human-readable; clients must not parse it")


EarliestExpTime = Annotated[Count | None, WithJsonSchema({"type": "integer", "minimum": 0})]
_EARLIEST = Field(
    default=None, json_schema_extra=_no_default,
    description="extra field of this project's servers: the earliest exp_time an open is accepted with now "
                "(now + min_duration_hours + settlement_period_hours); it moves with the clock (spec 6.3, 7.2); "
                "absent from other servers")


class FundingInfoV1(BaseModel):
    """v1 FundingInfo (spec 6.2): no dust limit, no script copy."""

    model_config = _FROZEN

    server_pubkey: ServerKey
    funding_address_copy: StrictStr
    open_price: Satoshis
    funding_tx_min_conf: Count
    settlement_period_hours: Count
    earliest_exp_time: EarliestExpTime = _EARLIEST


class FundingInfo(BaseModel):
    """v2 FundingInfo (spec 6.3 #1, 6.4 #1): v2-seed carries `redeem_script_copy`, v2.3.0 omits it."""

    model_config = _FROZEN

    server_pubkey: ServerKey
    dust_limit: Satoshis
    funding_address_copy: StrictStr
    redeem_script_copy: Annotated[StrictStr | None, WithJsonSchema({"type": "string"})] = Field(
        default=None, description="hex; v2-seed only (client_pubkey first), absent otherwise",
        json_schema_extra=_no_default)
    open_price: Satoshis
    funding_tx_min_conf: Count
    settlement_period_hours: Count
    min_duration_hours: Count = Field(description="the shortest usable life of a channel: exp_time must be at "
                                      "least now + (min_duration_hours + settlement_period_hours) h (spec 7.2)")
    earliest_exp_time: EarliestExpTime = _EARLIEST

    def wire(self) -> dict[str, Any]:
        """The JSON object: `redeem_script_copy` only when set."""
        return self.model_dump(exclude_none=True)


class ChannelLocation(BaseModel):
    """The begin_open answer (spec 6.3 #2)."""

    model_config = _FROZEN

    channel_uri: StrictStr = Field(description="absolute URL of the channel")


class PaymentResult(BaseModel):
    """The answer to open, pay and close (spec 6.2-6.4); v1 omits `application_data`."""

    model_config = _FROZEN

    channel_status: Literal["open", "closed"]
    channel_value_left: Satoshis
    value_received: Satoshis
    settlement_txid: Txid | None = Field(description="display txid; null while open")
    application_data: StrictStr = Field(default="", description="from the value callback (spec 10.6); '' if none")

    @field_validator("settlement_txid", mode="before")
    @classmethod
    def _txid(cls, value: object) -> object:
        """`""` means none (spec 6.5); hex is kept lower-case."""
        if value == "":
            return None
        return value.lower() if isinstance(value, str) else value

    @field_validator("application_data", mode="before")
    @classmethod
    def _app_data(cls, value: object) -> object:
        """null means none, as ""."""
        return "" if value is None else value

    @property
    def closed(self) -> bool:
        """True once the channel is reported closed."""
        return self.channel_status == "closed"


V1_RESULT_FIELDS = ("channel_status", "channel_value_left", "value_received", "settlement_txid")


def result_json(r: PaymentResult) -> dict[str, Any]:
    """The v2 PaymentResult object; equal to `r.model_dump()` (pinned by a property test), without its cost."""
    return r.__dict__.copy()


def result_json_v1(r: PaymentResult) -> dict[str, Any]:
    """The v1 PaymentResult object (spec 6.2): the v2 one without `application_data`."""
    d = r.__dict__
    return {"channel_status": d["channel_status"], "channel_value_left": d["channel_value_left"],
            "value_received": d["value_received"], "settlement_txid": d["settlement_txid"]}


class PaymentDataBody(BaseModel):
    """PaymentData (full: opening, v2-seed) or CompactPaymentData (signature and value only; spec 5.2-5.4)."""

    model_config = _FROZEN

    change_value: Satoshis
    signature_data: StrictStr = Field(max_length=300,
                                      description="hex: DER signature (seed) or DER + sighash byte")
    sighash_flag: StrictStr | None = Field(default=None, max_length=2,
                                           description="hex sighash byte, v2-seed: 83 or 82")
    funding_txid: StrictStr | None = Field(default=None, max_length=64, description="display order")
    funding_vout: StrictInt | None = Field(default=None, ge=0, le=0xFFFFFFFF)
    redeem_script: StrictStr | None = Field(default=None, max_length=200, description="hex")
    change_address: StrictStr | None = Field(default=None, max_length=100)


class PaymentBody(BaseModel):
    """The Payment wrapper: payment_data plus application_data (spec 5.2, 5.3)."""

    model_config = _FROZEN

    payment_data: PaymentDataBody
    application_data: StrictStr = Field(default="", max_length=4096, description="forwarded to the value callback")


class Health(BaseModel):
    """GET /health."""

    model_config = _FROZEN

    ok: bool


def describe(exc: ValidationError) -> str:
    """The first problem of a validation failure, worded for a client ("invalid <field>: <reason>")."""
    first = exc.errors()[0]
    loc = ".".join(str(p) for p in first["loc"]) or "body"
    return f"invalid {loc}: {first['msg']}"
