"""The tolerant v2-seed / v2.3.0 payment parser and the client's payment body (spec 5.2-5.4, 6.3); the
models themselves are `messages.PaymentBody` and `messages.PaymentDataBody`."""

from __future__ import annotations

import functools
from typing import Any

from pydantic import ValidationError

from .amount import MAX_MONEY
from .channel import ClientSignature, parse_hex
from .der import der_length
from .errors import InvalidInput, InvalidPayment
from .messages import PaymentBody, PaymentDataBody, describe
from .payment import Payment
from .tx import outpoint_from_display

_OPTIONAL_TEXT = (("sighash_flag", 2), ("funding_txid", 64), ("redeem_script", 200), ("change_address", 100))


def _plain_fields(body: dict[str, Any]) -> tuple[dict[str, Any], str] | None:
    """(payment_data, application_data) when `body` certainly passes PaymentBody unchanged (the usual
    case: checked here in a few dict lookups); None to let the models judge it (and word any error)."""
    if "payment_data" in body:
        pd = body["payment_data"]
        app = body.get("application_data", "")
        if type(pd) is not dict or type(app) is not str or len(app) > 4096:
            return None
    else:
        pd, app = body, ""
    change, sig = pd.get("change_value"), pd.get("signature_data")
    if type(change) is not int or not 0 <= change <= MAX_MONEY or type(sig) is not str or len(sig) > 300:
        return None
    for name, limit in _OPTIONAL_TEXT:
        value = pd.get(name)
        if value is not None and (type(value) is not str or len(value) > limit):
            return None
    vout = pd.get("funding_vout")
    if vout is not None and (type(vout) is not int or not 0 <= vout <= 0xFFFFFFFF):
        return None
    return pd, app


def parse_v2_payment(body: Any, *, require_full: bool = False) -> Payment:
    """Tolerant v2 parser (spec 5.4): wrapper or bare PaymentData, DER with or without flag."""
    if not isinstance(body, dict):
        raise InvalidInput("request body must be a JSON object")
    plain = _plain_fields(body)
    if plain is not None:
        pd, application_data = plain
        return _payment(pd["change_value"], pd["signature_data"], pd.get("sighash_flag"), pd.get("funding_txid"),
                        pd.get("funding_vout"), pd.get("redeem_script"), pd.get("change_address"),
                        application_data, require_full)
    try:
        if "payment_data" in body:
            model = PaymentBody.model_validate(body)
        else:
            model = PaymentBody(payment_data=PaymentDataBody.model_validate(body))
    except ValidationError as exc:
        raise InvalidInput(describe(exc)) from None
    m = model.payment_data
    return _payment(m.change_value, m.signature_data, m.sighash_flag, m.funding_txid, m.funding_vout,
                    m.redeem_script, m.change_address, model.application_data, require_full)


def _payment(change_value: int, signature_data: str, sighash_flag: str | None, funding_txid: str | None,
             funding_vout: int | None, redeem_script: str | None, change_address: str | None,
             application_data: str, require_full: bool) -> Payment:
    sig_bytes = parse_hex(signature_data, "signature_data", 300)
    n = der_length(sig_bytes)
    flag: int | None = None
    if sighash_flag is not None:
        raw_flag = parse_hex(sighash_flag, "sighash_flag", 2)
        if len(raw_flag) != 1:
            raise InvalidInput("sighash_flag must be one byte of hex")
        flag = raw_flag[0]
    if len(sig_bytes) == n + 1:
        if flag is not None and flag != sig_bytes[n]:
            raise InvalidPayment("sighash_flag disagrees with the flag in signature_data", code="bad_sighash")
        flag = sig_bytes[n]
    elif len(sig_bytes) != n:
        raise InvalidPayment("signature_data is neither DER nor DER plus a sighash byte", code="bad_signature")
    if flag is None:
        raise InvalidInput("sighash_flag is required when signature_data carries no sighash byte")
    sig = ClientSignature.from_parts(sig_bytes[:n], flag)
    present = [funding_txid is not None, funding_vout is not None, redeem_script is not None,
               change_address is not None]
    if require_full and not all(present):
        raise InvalidInput("opening payment needs funding_txid, funding_vout, redeem_script and change_address")
    outpoint = None
    if funding_txid is not None or funding_vout is not None:
        if funding_txid is None or funding_vout is None:
            raise InvalidInput("funding_txid and funding_vout go together")
        outpoint = outpoint_from_display(funding_txid.lower(), funding_vout)
    script = _redeem_script(redeem_script) if redeem_script is not None else None
    return Payment(
        change_value=change_value, signature=sig, outpoint=outpoint, redeem_script=script,
        change_address=change_address, application_data=application_data,
    )


@functools.lru_cache(maxsize=1024)
def _remembered_script(text: str) -> bytes:
    return parse_hex(text, "redeem_script", 200)


def _redeem_script(text: str) -> bytes:
    """The redeem script's bytes, remembered for the last 1024 seen (full bodies repeat their channel's)."""
    return _remembered_script(text) if type(text) is str else parse_hex(text, "redeem_script", 200)


def payment_to_json(p: Payment, *, seed_form: bool = True) -> dict[str, Any]:
    """A full payment as a v2 `PaymentBody` (seed form: DER-only + sighash_flag; spec 5.4 rule 5)."""
    sig = p.signature
    op = p.outpoint
    data = PaymentDataBody(
        change_value=p.change_value, signature_data=(sig.der if seed_form else sig.script_sig_push).hex(),
        sighash_flag=f"{sig.sighash:02x}" if seed_form else None,
        funding_txid=None if op is None else op.display_txid, funding_vout=None if op is None else op.vout,
        redeem_script=None if p.redeem_script is None else p.redeem_script.hex(), change_address=p.change_address)
    return PaymentBody(payment_data=data, application_data=p.application_data).model_dump(exclude_none=True)
