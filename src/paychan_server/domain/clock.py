"""The server's time source; tests shift it (debug mode only)."""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Clock:
    """Wall-clock seconds plus a fixed offset."""

    offset: int = 0

    def now(self) -> int:
        """Current UNIX time in seconds (shifted)."""
        return int(time.time()) + self.offset
