"""The domain's time source (a port, so tests drive time through a fake); debug mode shifts the wall clock."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Protocol


class ClockPort(Protocol):
    """What the domain needs of time: wall-clock seconds, a monotonic clock for retry timing, and sleeping."""

    def now(self) -> int: ...
    def monotonic(self) -> float: ...
    async def sleep(self, seconds: float) -> None: ...


@dataclass(frozen=True, slots=True)
class Clock:
    """Wall-clock seconds plus a fixed offset."""

    offset: int = 0

    def now(self) -> int:
        """Current UNIX time in seconds (shifted)."""
        return int(time.time()) + self.offset

    def monotonic(self) -> float:
        """Seconds of a clock that never goes back (retry and alert timing)."""
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds`."""
        await asyncio.sleep(seconds)
