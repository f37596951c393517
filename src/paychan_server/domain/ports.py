"""The ports of the domain: what PayChanService and the Settler need from ChanStore, Bitcoin and the SigningService.

Adapters (`paychan_server.adapters`, `chan_store.client`) implement them; the domain imports nothing concrete.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

from paychan_common.address import Address
from paychan_common.channel import Funding
from paychan_common.keys import PublicKey
from paychan_common.network import Network
from paychan_common.settlement import SettlementInput
from paychan_common.state import ChannelState, Status
from paychan_common.tx import OutPoint


class AppliedPayment(Protocol):
    """ChanStore's answer to one payment."""

    @property
    def value_received(self) -> int: ...
    @property
    def change_value(self) -> int: ...


class ChannelStorePort(Protocol):
    """ChanStore operations used by PayChanServer."""

    async def create(self, state: ChannelState) -> ChannelState: ...
    async def get(self, outpoint: OutPoint) -> ChannelState | None: ...
    async def apply_payment(self, outpoint: OutPoint, change_value: int, der: bytes, sighash: int,
                            now: int) -> AppliedPayment: ...
    async def compare_and_set(self, old: ChannelState, new: ChannelState) -> ChannelState: ...
    async def list(self, *, status: Status | None = None, client_pubkey: bytes | None = None,
                   expiring_before: int | None = None, after: OutPoint | None = None,
                   limit: int = 100) -> list[ChannelState]: ...
    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class TxStatus:
    """What the chain says of a transaction."""

    confirmations: int  # 0 = in mempool
    known: bool  # False when neither mined nor in the mempool


class OutputState(enum.Enum):
    """Whether a transaction output (a channel's funding) is still spendable."""

    UNSPENT = "unspent"
    SPENT_IN_MEMPOOL = "spent_in_mempool"  # a mempool transaction spends it; the chain still has it
    SPENT = "spent"  # gone from the chain's UTXO set (spent by a mined transaction, or never existed)


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

    async def estimate_rate(self, conf_target: int) -> int | None:
        """The node's fee-rate estimate for conf_target blocks in sat/byte, not capped (spec 8.6); None
        without an estimate."""
        ...

    async def incremental_rate(self) -> int:
        """The node's incremental relay fee rate in sat/byte (BIP125 rule 4)."""
        ...

    async def median_time(self) -> int | None:
        """Median time past of the chain tip (None when there is no chain)."""
        ...

    async def tx_status(self, txid: str, tx: bytes = b"") -> TxStatus:
        """Confirmations of a transaction (tx, when given, helps nodes without a transaction index)."""
        ...

    async def output_state(self, outpoint: OutPoint) -> OutputState:
        """Whether the output at outpoint is unspent, spent in the mempool, or spent on chain."""
        ...

    async def startup_check(self) -> None:
        """Check the backend once at start-up (the node's chain matches the network); fatal if not."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


@dataclass(frozen=True, slots=True)
class SignedSettlement:
    """The SigningService's answer."""

    tx: bytes
    txid: str
    fee: int
    server_value: int


@dataclass(frozen=True, slots=True)
class SignerPolicy:
    """What the SigningService publishes of its policy (spec 8.6): its fee cap and its dust limit."""

    max_fee: int
    dust_limit: int


class SignerPort(Protocol):
    """What PayChanServer needs from the SigningService."""

    async def info(self, network: Network) -> tuple[PublicKey, Address]:
        """The server public key and the settlement destination."""
        ...

    async def policy(self) -> SignerPolicy:
        """The signer's published policy (spec 8.6)."""
        ...

    async def sign_settlement(self, s: SettlementInput, fee: int, dust_limit: int) -> SignedSettlement:
        """Have the settlement of s signed (the signer re-checks everything)."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
