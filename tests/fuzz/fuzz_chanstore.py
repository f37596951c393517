"""Fuzz ChanStore's request bodies and queries (chan_store.wire, as the app reads them) and, for what they
accept, the ChannelStore operation they feed (over MemoryStorage): every refusal is a PaychanError."""

from __future__ import annotations

import asyncio
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
    from chan_store.memory_storage import MemoryStorage
    from chan_store.store import ChannelStore
    from tests.fuzz.common import NOT_JSON, json_input, main, rejects_cleanly, text_input
    from tests.fuzz.seeds import chanstore_bodies, sample_states

SEEDS = [bytes([i]) + body for body in chanstore_bodies() for i in range(4)] + [b"\x02limit=5&status=open"]
LOOP = asyncio.new_event_loop()
STORE: ChannelStore | None = None


def _fatal(exc: BaseException) -> None:
    raise AssertionError(f"a request made MemoryStorage's store fail-stop: {exc!r}")


def store() -> ChannelStore:
    """One store for the run, holding the sample states (so payments and compare-and-sets find a channel)."""
    global STORE
    if STORE is None:
        STORE = ChannelStore(MemoryStorage(), on_fatal=_fatal)
        STORE.load()
        for state in sample_states()[:3]:
            LOOP.run_until_complete(STORE.create(state))
    return STORE


def _cas(body: Any) -> Any:
    expected, state = parse_cas_body(body)
    return LOOP.run_until_complete(store().compare_and_set(expected, state))


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
            results = LOOP.run_until_complete(store().apply_payments(items[:50], now))
            assert len(results) == len(items[:50])
        rejects_cleanly(lambda: parse_payment_result(body))
    elif route == 1:
        state = rejects_cleanly(lambda: parse_state(require_object(body).get("state")))
        if state is not None:
            rejects_cleanly(lambda: LOOP.run_until_complete(store().create(state)))
    else:
        rejects_cleanly(lambda: _cas(body))


if __name__ == "__main__":
    main(harness, SEEDS)
