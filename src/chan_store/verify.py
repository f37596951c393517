"""Full consistency check of a ChanStore storage (an fsck, for crash and chaos tests and operators): every
state parses and sits under its own outpoint, the two indexes hold exactly the entries the states call for,
and no client key has two open channels.

`python -m chan_store.verify DIR` checks a LevelDB directory (ChanStore must be stopped); exit 0 if clean,
1 with one line per problem otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from chan_store import keys
from chan_store.storage import Storage
from paychan_common.errors import InvalidInput
from paychan_common.state import ChannelState, Status

__all__ = ["StoreReport", "main", "verify_storage"]


@dataclass(slots=True)
class StoreReport:
    """What `verify_storage` found: the states by outpoint, counts by status, and every problem."""

    states: dict[bytes, ChannelState] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=lambda: {status.label: 0 for status in Status})
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return not self.problems


def verify_storage(storage: Storage, max_problems: int = 100) -> StoreReport:
    """Check every key of `storage` against the layout of `chan_store.keys` (reads only)."""
    report = StoreReport()
    expected: set[bytes] = set()
    open_of: dict[bytes, bytes] = {}

    def problem(text: str) -> None:
        if len(report.problems) < max_problems:
            report.problems.append(text)

    for key, value in storage.scan(keys.CHANNEL):
        op = key[1:]
        if len(op) != keys.OUTPOINT_LEN:
            problem(f"channel key of length {len(key)}: {key.hex()}")
            continue
        try:
            state = ChannelState.parse(value)
        except InvalidInput as exc:
            problem(f"channel {op.hex()}: stored state does not parse: {exc.message}")
            continue
        if state.outpoint.serialize() != op:
            problem(f"channel {op.hex()}: stored under another outpoint than its own {state.outpoint}")
        report.states[op] = state
        report.counts[state.status.label] += 1
        expected.update(keys.index_keys(op, value))
        if state.status is Status.OPEN:
            other = open_of.setdefault(state.client_pubkey, op)
            if other != op:
                problem(f"client key {state.client_pubkey.hex()} has two open channels: {other.hex()}, {op.hex()}")
    found = {key for prefix in (keys.CLIENT, keys.STATUS) for key, _ in storage.scan(prefix)}
    for key in sorted(expected - found):
        problem(f"index entry missing: {key.hex()}")
    for key in sorted(found - expected):
        problem(f"index entry without a matching state: {key.hex()}")
    for key, _ in storage.scan(b""):
        if key[:1] not in (keys.CHANNEL, keys.CLIENT, keys.STATUS):
            problem(f"key outside the layout: {key.hex()}")
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m chan_store.verify DIR`: check a (stopped) ChanStore's LevelDB directory."""
    from chan_store.leveldb_storage import LevelDBStorage

    parser = argparse.ArgumentParser(prog="python -m chan_store.verify", description=__doc__)
    parser.add_argument("directory", type=Path, help="the LevelDB directory (storage.path)")
    args = parser.parse_args(argv)
    if not args.directory.is_dir():
        print(f"not a directory: {args.directory}", file=sys.stderr)
        return 2
    storage = LevelDBStorage(args.directory)
    try:
        report = verify_storage(storage)
    finally:
        asyncio.run(storage.close())
    for line in report.problems:
        print(line)
    print(f"{len(report.states)} channels {report.counts}: {'ok' if report.ok else 'PROBLEMS FOUND'}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
