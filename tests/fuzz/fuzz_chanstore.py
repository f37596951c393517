"""Fuzz ChanStore's request bodies and queries (chan_store.wire, as the app reads them) and, for what they
accept, the ChannelStore operation they feed (over MemoryStorage): every refusal is a PaychanError."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import atheris

from tests.fuzz import INSTRUMENTED

with atheris.instrument_imports(include=INSTRUMENTED):
    from chan_store.contract import (
        ListQuery,
        parse_cas_body,
        parse_outpoint,
        parse_payment_result,
        parse_payments_request,
        parse_state,
        require_object,
    )
    from tests.fuzz.common import NOT_JSON, json_input, main, rejects_cleanly, text_input
    from tests.fuzz.sample_store import run, store
    from tests.fuzz.seeds import chanstore_bodies

SEEDS = [bytes([i]) + body for body in chanstore_bodies() for i in range(4)] + [b"\x02limit=5&status=open"]
def _cas(body: Any) -> Any:
    expected, state = parse_cas_body(body)
    return run(store().compare_and_set(expected, state))


def harness(data: bytes) -> None:
    """One input: byte 0 picks the route."""
    if not data:
        return
    route, rest = data[0] % 4, data[1:]
    if route == 2:
        text = text_input(rest)
        query = dict(parse_qsl(text, keep_blank_values=True))
        rejects_cleanly(lambda: ListQuery.parse(query))
        rejects_cleanly(lambda: parse_outpoint(text))
        return
    body = json_input(rest)
    if body is NOT_JSON:
        return
    if route == 0:
        parsed = rejects_cleanly(lambda: parse_payments_request(body))
        if parsed is not None:
            now, items = parsed
            results = run(store().apply_payments(items[:50], now))
            assert len(results) == len(items[:50])
        rejects_cleanly(lambda: parse_payment_result(body))
    elif route == 1:
        state = rejects_cleanly(lambda: parse_state(require_object(body).get("state")))
        if state is not None:
            rejects_cleanly(lambda: run(store().create(state)))
    else:
        rejects_cleanly(lambda: _cas(body))


if __name__ == "__main__":
    main(harness, SEEDS)
