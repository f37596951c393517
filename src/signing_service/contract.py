"""The SigningService's API, shared by its app (`signing_service.app`) and its client
(`paychan_server.adapters.signer`): the request and answer models of `GET /pubkey` and
`POST /sign_settlement` (spec 10.3, redesigned as bearer-authenticated JSON; spec 8.1-8.3 for what is
signed). Strict JSON types, no unknown keys, amounts bounded by MAX_MONEY; errors name fields, never
echo values.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from paychan_common.amount import MAX_MONEY
from paychan_common.errors import InvalidInput, ServiceUnavailable
from paychan_common.settlement import SettlementInput
from paychan_runtime.config import validation_summary

__all__ = ["MAX_BODY_BYTES", "SettlementRequest", "SignedSettlementAnswer", "SignerInfo", "SignerPolicy",
           "parse_answer"]

Satoshis = Annotated[int, Field(ge=0, le=MAX_MONEY)]
Hex = Annotated[str, Field(max_length=1024)]

MAX_BODY_BYTES = 16 * 1024
"""Largest request body the service reads."""

_STRICT = ConfigDict(strict=True, frozen=True, extra="forbid")
_Model = TypeVar("_Model", bound=BaseModel)


class SettlementRequest(BaseModel):
    """The body of POST /sign_settlement."""

    model_config = _STRICT

    redeem_script: Hex
    funding_txid: Hex
    funding_vout: Annotated[int, Field(ge=0, le=0xFFFFFFFF)]
    funding_value: Annotated[int, Field(ge=1, le=MAX_MONEY)]
    change_value: Satoshis
    change_script: Hex
    client_signature: Hex
    client_sighash: int
    fee: Satoshis
    dust_limit: Satoshis | None = None  # ignored: the service applies its own (spec 8.6)
    destination: Annotated[str, Field(max_length=100)] | None = None

    @classmethod
    def of(cls, s: SettlementInput, fee: int, dust_limit: int) -> SettlementRequest:
        """The request to sign the settlement of `s` (client side)."""
        return cls(redeem_script=s.redeem_script.hex(), funding_txid=s.outpoint.display_txid,
                   funding_vout=s.outpoint.vout, funding_value=s.funding_value, change_value=s.change_value,
                   change_script=s.change_script.hex(), client_signature=s.client_signature.der.hex(),
                   client_sighash=s.client_signature.sighash, fee=fee, dust_limit=dust_limit)

    @classmethod
    def from_json(cls, data: Any) -> SettlementRequest:
        """Validate a parsed JSON body; InvalidInput naming the bad fields (never echoing values)."""
        if not isinstance(data, dict):
            raise InvalidInput("request body must be a JSON object", code="invalid_field")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise InvalidInput(f"invalid request: {validation_summary(exc, '<body>')}", code="invalid_field") from None


class SignedSettlementAnswer(BaseModel):
    """The answer of POST /sign_settlement: the signed transaction, its txid, fee and server output value."""

    model_config = _STRICT

    tx: Annotated[str, Field(pattern="^(?:[0-9a-f]{2})+$")]
    txid: Annotated[str, Field(pattern="^[0-9a-f]{64}$")]
    fee: Satoshis
    server_value: Satoshis


class SignerPolicy(BaseModel):
    """What the signer enforces, published so that PayChanServer can refuse a fee cap above it (spec 8.6)."""

    model_config = _STRICT

    max_fee: Satoshis
    dust_limit: Satoshis


class SignerInfo(BaseModel):
    """The answer of GET /pubkey: the server public key, the network, the settlement destination, the policy."""

    model_config = _STRICT

    pubkey: Annotated[str, Field(pattern="^[0-9a-f]{66}$")]
    network: str
    destination: Annotated[str, Field(max_length=100)]
    policy: SignerPolicy


def parse_answer(model: type[_Model], data: Any) -> _Model:
    """A service answer as `model` (client side); ServiceUnavailable naming the bad fields."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ServiceUnavailable(f"signing service sent a malformed answer: {validation_summary(exc)}") from None
