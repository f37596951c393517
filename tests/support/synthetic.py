"""Synthetic channel states for storage tests and benchmarks: every family and status, cheap to make
(no signatures are computed: ChanStore stores what it is given), and a writer of ChanStore's LevelDB layout."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import plyvel

from chan_store import keys
from paychan_common.state import ChannelState, Family, Status
from paychan_common.tx import OutPoint

__all__ = ["synthetic_states", "write_leveldb"]


def synthetic_states(n: int, seed: int = 7) -> list[ChannelState]:
    """n states of every family and status; each client key has at most one open channel."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        status = (Status.OPEN, Status.CLOSING, Status.CLOSED)[i % 3]
        funding = rng.randint(10_000, 10**9)
        change = rng.randint(0, funding)
        txid = "" if status is Status.OPEN else hashlib.sha256(i.to_bytes(8, "big")).hexdigest()
        out.append(ChannelState(
            client_pubkey=b"\x02" + hashlib.sha256(b"client" + (i // 3).to_bytes(8, "big")).digest(),
            exp_time=1_700_000_000 + rng.randint(0, 10**7),
            outpoint=OutPoint(hashlib.sha256(b"funding" + i.to_bytes(8, "big")).digest(), rng.randint(0, 9)),
            funding_value=funding, redeem_script=rng.randbytes(rng.randint(70, 80)), change_address="n" * 34,
            change_script=rng.randbytes(25), family=Family(1 + i % 3), status=status, change_value=change,
            signature=rng.randbytes(71), sighash=0x83, secret=rng.randbytes(32), payment_count=rng.randint(1, 10**6),
            open_time=1_690_000_000 + i, last_payment_time=1_690_000_100 + i,
            settlement_tx=rng.randbytes(300) if txid else b"", settlement_txid=txid,
            settlement_fee=rng.randint(0, 20_000) if txid else 0))
    return out


def write_leveldb(path: Path, states: list[ChannelState]) -> None:
    """A ChanStore LevelDB holding these states, written with the store's own key layout."""
    db = plyvel.DB(str(path), create_if_missing=True)
    with db.write_batch(sync=True) as batch:
        for state in states:
            op, data = state.outpoint.serialize(), state.serialize()
            batch.put(keys.channel_key(op), data)
            for index_key in keys.index_keys(op, data):
                batch.put(index_key, b"")
    db.close()
