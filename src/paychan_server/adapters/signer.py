"""Client of the SigningService."""

from __future__ import annotations

from paychan_common.address import Address
from paychan_common.errors import ServiceUnavailable
from paychan_common.keys import PublicKey
from paychan_common.network import Network
from paychan_common.settlement import SettlementInput
from paychan_runtime.client import InternalClient

from ..domain.ports import SignedSettlement, SignerPolicy


class SignerClient:
    """Asks the SigningService for its key and for settlement signatures."""

    def __init__(self, client: InternalClient) -> None:
        self._client = client

    async def info(self, network: Network) -> tuple[PublicKey, Address]:
        """The server public key and the settlement destination."""
        data = await self._client.request("GET", "/pubkey")
        return PublicKey.from_hex(data["pubkey"]), Address.parse(data["destination"], network)

    async def policy(self) -> SignerPolicy:
        """The signer's max_fee and dust_limit from GET /pubkey (spec 8.6)."""
        data = await self._client.request("GET", "/pubkey")
        policy = data.get("policy") if isinstance(data, dict) else None
        try:
            return SignerPolicy(int(policy["max_fee"]), int(policy["dust_limit"]))  # type: ignore[index]
        except (KeyError, TypeError, ValueError):
            raise ServiceUnavailable("the SigningService publishes no signing policy (max_fee, dust_limit): "
                                     "upgrade it", code="signer_policy_missing") from None

    async def sign_settlement(self, s: SettlementInput, fee: int, dust_limit: int) -> SignedSettlement:
        """Have the settlement of s signed (the signer re-checks everything)."""
        body = {
            "redeem_script": s.redeem_script.hex(), "funding_txid": s.outpoint.display_txid,
            "funding_vout": s.outpoint.vout, "funding_value": s.funding_value, "change_value": s.change_value,
            "change_script": s.change_script.hex(), "client_signature": s.client_signature.der.hex(),
            "client_sighash": s.client_signature.sighash, "fee": fee, "dust_limit": dust_limit,
        }
        data = await self._client.request("POST", "/sign_settlement", body)
        return SignedSettlement(bytes.fromhex(data["tx"]), data["txid"], int(data["fee"]), int(data["server_value"]))

    async def close(self) -> None:
        """Close the pool."""
        await self._client.close()
