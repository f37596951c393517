"""Fuzz the v2-seed JSON payment (spec 5.2-5.4): parse_v2_payment's dict fast path must agree with the
pydantic models it shortcuts (same payment, or both refuse), for the opening (full) and later payments."""

from __future__ import annotations

from typing import Any

import atheris

from tests.fuzz import INSTRUMENTED

with atheris.instrument_imports(include=INSTRUMENTED):
    from pydantic import ValidationError

    from paychan_common import wire_v2
    from paychan_common.errors import InvalidInput
    from paychan_common.messages import PaymentBody as PaymentModel
    from paychan_common.messages import PaymentDataBody as PaymentDataModel
    from paychan_common.wire_v2 import parse_v2_payment, payment_to_json
    from tests.fuzz.common import NOT_JSON, json_input, main, rejects_cleanly
    from tests.fuzz.seeds import v2_bodies

SEEDS = v2_bodies()


def _by_models(body: Any, require_full: bool) -> Any:
    """The slow path alone: what parse_v2_payment does when the fast path declines."""
    if not isinstance(body, dict):
        raise InvalidInput("not an object")
    try:
        model = (PaymentModel.model_validate(body) if "payment_data" in body
                 else PaymentModel(payment_data=PaymentDataModel.model_validate(body)))
    except ValidationError as exc:
        raise InvalidInput(str(exc)) from None
    m = model.payment_data
    return wire_v2._payment(m.change_value, m.signature_data, m.sighash_flag, m.funding_txid, m.funding_vout,
                            m.redeem_script, m.change_address, model.application_data, require_full)


def harness(data: bytes) -> None:
    """One input."""
    body = json_input(data)
    if body is NOT_JSON:
        return
    for full in (False, True):
        fast = rejects_cleanly(lambda f=full: parse_v2_payment(body, require_full=f))  # type: ignore[misc]
        slow = rejects_cleanly(lambda f=full: _by_models(body, f))  # type: ignore[misc]
        assert fast == slow, (body, fast, slow)
        if fast is not None and fast.outpoint is not None:
            assert parse_v2_payment(payment_to_json(fast), require_full=full) == fast


if __name__ == "__main__":
    main(harness, SEEDS)
