"""The blockchain port, and the debug adapter: deterministic fake funding, nothing broadcast (spec 9)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from paychan_common.address import Address
from paychan_common.channel import Funding, debug_funding
from paychan_common.hashing import sha256d
from paychan_common.keys import PublicKey
from paychan_common.tx import OutPoint

log = logging.getLogger("paychan.blockchain")


@dataclass(frozen=True, slots=True)
class TxStatus:
    """What the chain says of a transaction."""

    confirmations: int  # 0 = in mempool
    known: bool  # False when neither mined nor in the mempool


class Blockchain(Protocol):
    """What PayChanServer needs from Bitcoin."""

    debug: bool

    async def funding_by_outpoint(self, outpoint: OutPoint, client_pubkey: PublicKey, exp_time: int,
                                  funding_address: Address) -> Funding | None:
        """The unspent output at outpoint (value, confirmations, script), or None."""
        ...

    async def funding_by_address(self, client_pubkey: PublicKey, exp_time: int,
                                 funding_address: Address) -> list[Funding]:
        """Unspent outputs paying to the funding address (v1 open)."""
        ...

    async def publish(self, tx: bytes) -> str:
        """Broadcast a transaction; return its txid."""
        ...

    async def fee_rate(self) -> int:
        """Settlement fee rate in sat/byte."""
        ...

    async def median_time(self) -> int | None:
        """Median time past of the chain tip (None when there is no chain)."""
        ...

    async def tx_status(self, txid: str) -> TxStatus:
        """Confirmations of a transaction."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


class DebugChain:
    """The documented debug mode: fake funding derived from the client key (spec 9)."""

    debug = True

    def __init__(self, fee_rate: int) -> None:
        self._fee_rate = fee_rate

    async def funding_by_outpoint(self, outpoint: OutPoint, client_pubkey: PublicKey, exp_time: int,
                                  funding_address: Address) -> Funding | None:
        """The derived funding if the outpoint is the derived one."""
        fake = debug_funding(client_pubkey, exp_time, funding_address.script_pubkey)
        return fake if fake.outpoint == outpoint else None

    async def funding_by_address(self, client_pubkey: PublicKey, exp_time: int,
                                 funding_address: Address) -> list[Funding]:
        """Exactly the derived funding."""
        return [debug_funding(client_pubkey, exp_time, funding_address.script_pubkey)]

    async def publish(self, tx: bytes) -> str:
        """Not broadcast: the txid is the hash of the signed transaction."""
        txid = sha256d(tx)[::-1].hex()
        log.info("debug mode: settlement %s not broadcast", txid)
        return txid

    async def fee_rate(self) -> int:
        """The configured rate."""
        return self._fee_rate

    async def median_time(self) -> int | None:
        """No chain in debug mode."""
        return None

    async def tx_status(self, txid: str) -> TxStatus:
        """Debug settlements count as confirmed."""
        return TxStatus(confirmations=1_000_000, known=True)

    async def close(self) -> None:
        """Nothing to release."""
