"""The debug blockchain adapter: deterministic fake funding, nothing broadcast (spec 9)."""

from __future__ import annotations

import logging

from paychan_common.address import Address
from paychan_common.channel import Funding, debug_funding
from paychan_common.hashing import sha256d
from paychan_common.keys import PublicKey
from paychan_common.tx import OutPoint

from ..domain.ports import OutputState, TxStatus

log = logging.getLogger("paychan.blockchain")


class DebugChain:
    """The documented debug mode: fake funding derived from the client key (spec 9)."""

    debug = True

    def __init__(self, fee_rate: int) -> None:
        self._fee_rate = fee_rate
        self._published: set[str] = set()

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
        self._published.add(txid)
        return txid

    async def fee_rate(self) -> int:
        """The configured rate."""
        return self._fee_rate

    async def estimate_rate(self, conf_target: int) -> int | None:
        """The configured rate, whatever the target."""
        return self._fee_rate

    async def incremental_rate(self) -> int:
        """1 sat/byte, the default of bitcoind."""
        return 1

    async def median_time(self) -> int | None:
        """No chain in debug mode."""
        return None

    async def tx_status(self, txid: str, tx: bytes = b"") -> TxStatus:
        """A debug settlement counts as deeply confirmed once "published" by this process."""
        if txid in self._published:
            return TxStatus(confirmations=1_000_000, known=True)
        return TxStatus(confirmations=0, known=False)

    async def output_state(self, outpoint: OutPoint) -> OutputState:
        """Fake funding is never spent."""
        return OutputState.UNSPENT

    async def startup_check(self) -> None:
        """No node to check (spec 9: the start-up self-test is skipped)."""

    async def close(self) -> None:
        """Nothing to release."""
