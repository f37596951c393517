"""Crash points for fault-injection tests (in the manner of Bitcoin Core's feature_dbcrash): end the process
with `os._exit` at a named point of a write or a settlement, leaving disk exactly as a power cut would.

Armed ONLY by the environment variable PAYCHAN_CRASH_POINT=`name` or `name@N` (crash at the N-th time the
point is reached, default 1). Unset (the default, and in every shipped config) `crash_point_from_env()`
returns None and the callers install no hook at all: zero cost when off. An unknown name refuses to start,
so a typo cannot silently disable a test (ConfigError).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping

from paychan_runtime.config import ConfigError

__all__ = ["ENV_VAR", "EXIT_CRASH_POINT", "POINTS", "CrashHook", "CrashPoint", "crash_point_from_env"]

log = logging.getLogger("paychan.faults")

ENV_VAR = "PAYCHAN_CRASH_POINT"
EXIT_CRASH_POINT = 86
"""Exit status of a process ended at a crash point (tests tell it from a real failure)."""

POINTS: Mapping[str, str] = {
    "store.before_write": "ChanStore, writer thread: a group write is about to reach LevelDB",
    "store.after_write": "ChanStore, writer thread: the group write is durable, no waiter acknowledged yet",
    "settler.after_sign": "PayChanServer: the settlement is signed, not yet stored",
    "settler.after_store": "PayChanServer: the signed settlement is stored, not yet published",
    "settler.after_publish": "PayChanServer: the settlement is published, the channel not yet marked closed",
}

CrashHook = Callable[[str], None]
"""Called with a point's name where a crash may be injected."""


class CrashPoint:
    """A hook that ends the process the N-th time its point is reached (other points pass)."""

    __slots__ = ("countdown", "name")

    def __init__(self, name: str, nth: int = 1) -> None:
        if name not in POINTS:
            raise ConfigError(f"{ENV_VAR}: unknown crash point {name!r} (known: {', '.join(sorted(POINTS))})")
        if nth < 1:
            raise ConfigError(f"{ENV_VAR}: the hit count must be >= 1")
        self.name = name
        self.countdown = nth

    def __call__(self, point: str) -> None:
        """Count a pass through `point`; at the chosen one, log CRITICAL and `os._exit(EXIT_CRASH_POINT)`."""
        if point != self.name:
            return
        self.countdown -= 1
        if self.countdown > 0:
            return
        log.critical("crash point %s reached: ending the process (%s=%s)", point, ENV_VAR, point)
        for handler in logging.getLogger().handlers:
            handler.flush()
        os._exit(EXIT_CRASH_POINT)


def crash_point_from_env(environ: Mapping[str, str] = os.environ) -> CrashPoint | None:
    """The armed crash point named by PAYCHAN_CRASH_POINT (`name` or `name@N`), or None when unset."""
    spec = environ.get(ENV_VAR, "").strip()
    if not spec:
        return None
    name, _, nth = spec.partition("@")
    if nth and not nth.isdigit():
        raise ConfigError(f"{ENV_VAR}: the hit count after @ must be a number, not {nth!r}")
    point = CrashPoint(name, int(nth) if nth else 1)
    log.warning("crash point armed: %s at hit %d (fault-injection tests only)", name, point.countdown)
    return point
