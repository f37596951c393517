"""The ChannelStore the ChanStore harnesses feed: over MemoryStorage, holding three sample channels (so
payments and compare-and-sets find one), made once per run; a fail-stop is a finding."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from chan_store.memory_storage import MemoryStorage
from chan_store.store import ChannelStore
from tests.fuzz.seeds import sample_states

_T = TypeVar("_T")
LOOP = asyncio.new_event_loop()
_STORE: list[ChannelStore] = []


def _fatal(exc: BaseException) -> None:
    raise AssertionError(f"an input made MemoryStorage's store fail-stop: {exc!r}")


def store() -> ChannelStore:
    """The run's store (created, with the sample states, at first use)."""
    if not _STORE:
        created = ChannelStore(MemoryStorage(), on_fatal=_fatal)
        created.load()
        for state in sample_states()[:3]:
            LOOP.run_until_complete(created.create(state))
        _STORE.append(created)
    return _STORE[0]


def run(call: Coroutine[Any, Any, _T]) -> _T:
    """Run one store operation to its end."""
    return LOOP.run_until_complete(call)
