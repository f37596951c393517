"""Fuzz the stored-state codec (ChannelState.parse) and ChanStore's raw field readers: an accepted state
re-serializes to its input, the raw readers of chan_store.keys agree with the full parse, and a payment's
record patched in place (ChannelState.serialize_after) equals its full encoding."""

from __future__ import annotations

import atheris

from tests.fuzz import INSTRUMENTED

with atheris.instrument_imports(include=INSTRUMENTED):
    from chan_store import keys
    from paychan_common.state import ChannelState
    from tests.fuzz.common import main, rejects_cleanly
    from tests.fuzz.seeds import sample_states

SEEDS = [state.serialize() for state in sample_states()] + [b"\x01", b""]


def harness(data: bytes) -> None:
    """One input."""
    state = rejects_cleanly(lambda: ChannelState.parse(data))
    if state is None:
        return
    assert state.serialize() == data
    op = state.outpoint.serialize()
    assert keys.raw_status(data) is state.status and keys.raw_exp_time(data) == state.exp_time
    assert keys.raw_client_pubkey(data) == state.client_pubkey and keys.raw_outpoint(data) == op
    status_key = keys.index_keys(op, data)[1]
    assert keys.raw_index_key_ok(status_key, op, data)
    assert keys.raw_index_fields(data) == bytes([state.status.value]) + state.client_pubkey + data[36:40]
    if state.payment_count < 0xFFFFFFFF:  # ChanStore's payment path: the patched record is the full encoding
        paid = state.with_payment(state.change_value // 2, data[:72] or b"\x30", len(data) & 0xFF, state.open_time)
        assert paid.serialize_after(state, data) == paid.serialize()


if __name__ == "__main__":
    main(harness, SEEDS)
