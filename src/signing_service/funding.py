"""The funding check: a legacy SIGHASH_ALL signature does not commit to the value of the output it spends,
so a caller that lies about `funding_value` could make the service sign away the difference as fee. The
service therefore confirms the funding output itself before it signs (DESIGN: "re-checks every request")."""

from __future__ import annotations

from typing import Protocol

from paychan_common.address import p2sh_script
from paychan_common.channel import debug_funding
from paychan_common.errors import SigningRefused
from paychan_common.hashing import hash160
from paychan_common.keys import PublicKey
from paychan_common.script import parse_channel_script
from paychan_common.settlement import SettlementInput
from paychan_runtime.bitcoin_rpc import BitcoinRpc, btc_to_sat

from .config import FundingCheckConfig


class FundingCheck(Protocol):
    """Confirms that a settlement's input is the channel's unspent funding output of the stated value."""

    async def verify(self, s: SettlementInput) -> None:
        """Raise SigningRefused (or ServiceUnavailable) unless the funding is as stated."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


def _mismatch(message: str) -> SigningRefused:
    return SigningRefused(message, code="funding_mismatch")


class TrustFunding:
    """No check (test networks only; refused on live by the config)."""

    async def verify(self, s: SettlementInput) -> None:
        """Accept the stated funding."""

    async def close(self) -> None:
        """Nothing to release."""


class DebugFundingCheck:
    """Debug mode: the funding must be the spec's deterministic fake funding of the channel (spec 9)."""

    async def verify(self, s: SettlementInput) -> None:
        """Compare with debug_funding(client key, exp_time)."""
        _server, client, exp_time = parse_channel_script(s.redeem_script)
        fake = debug_funding(PublicKey.from_bytes(client), exp_time, p2sh_script(hash160(s.redeem_script)))
        if (s.outpoint, s.funding_value) != (fake.outpoint, fake.value):
            raise _mismatch("funding is not this channel's debug funding")

    async def close(self) -> None:
        """Nothing to release."""


class NodeFundingCheck:
    """Real networks: `gettxout` on the service's own node must show exactly this unspent P2SH output."""

    def __init__(self, rpc: BitcoinRpc) -> None:
        self.rpc = rpc

    async def verify(self, s: SettlementInput) -> None:
        """Value and script of the unspent output: unspent with the mempool, or in the chain's UTXO set and
        spent only in the mempool (by an earlier version of the settlement that this one replaces, spec 8.6)."""
        out = await self.rpc.call("gettxout", s.outpoint.display_txid, s.outpoint.vout, True)
        if not out:
            out = await self.rpc.call("gettxout", s.outpoint.display_txid, s.outpoint.vout, False)
        if not out:
            raise _mismatch(f"funding output {s.outpoint} is unknown or already spent")
        if btc_to_sat(out["value"]) != s.funding_value:
            raise _mismatch(f"funding_value {s.funding_value} differs from the node's {btc_to_sat(out['value'])}")
        if bytes.fromhex(out["scriptPubKey"]["hex"]) != p2sh_script(hash160(s.redeem_script)):
            raise _mismatch("funding output does not pay to the channel's P2SH address")

    async def close(self) -> None:
        """Close the RPC session."""
        await self.rpc.close()


def make_funding_check(cfg: FundingCheckConfig) -> FundingCheck:
    """The check the config asks for."""
    if cfg.mode == "node":
        return NodeFundingCheck(BitcoinRpc(cfg.rpc_url, user=cfg.rpc_user, password=cfg.rpc_password,
                                           cookie_file=cfg.rpc_cookie_file, timeout=cfg.rpc_timeout_seconds))
    if cfg.mode == "debug":
        return DebugFundingCheck()
    return TrustFunding()
