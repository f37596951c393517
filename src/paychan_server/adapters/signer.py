"""Client of the SigningService (its messages: `signing_service.contract`)."""

from __future__ import annotations

from paychan_common.address import Address
from paychan_common.keys import PublicKey
from paychan_common.network import Network
from paychan_common.settlement import SettlementInput
from paychan_runtime.client import InternalClient
from signing_service.contract import SettlementRequest, SignedSettlementAnswer, SignerInfo, parse_answer

from ..domain.ports import SignedSettlement, SignerPolicy


class SignerClient:
    """Asks the SigningService for its key and for settlement signatures."""

    def __init__(self, client: InternalClient) -> None:
        self._client = client

    async def info(self, network: Network) -> tuple[PublicKey, Address]:
        """The server public key and the settlement destination."""
        info = parse_answer(SignerInfo, await self._client.request("GET", "/pubkey"))
        return PublicKey.from_hex(info.pubkey), Address.parse(info.destination, network)

    async def policy(self) -> SignerPolicy:
        """The signer's max_fee and dust_limit from GET /pubkey (spec 8.6)."""
        info = parse_answer(SignerInfo, await self._client.request("GET", "/pubkey"))
        return SignerPolicy(info.policy.max_fee, info.policy.dust_limit)

    async def sign_settlement(self, s: SettlementInput, fee: int, dust_limit: int) -> SignedSettlement:
        """Have the settlement of s signed (the signer re-checks everything, spec 8.1)."""
        request = SettlementRequest.of(s, fee, dust_limit)
        data = await self._client.request("POST", "/sign_settlement", request.model_dump(exclude_none=True))
        answer = parse_answer(SignedSettlementAnswer, data)
        return SignedSettlement(bytes.fromhex(answer.tx), answer.txid, answer.fee, answer.server_value)

    async def close(self) -> None:
        """Close the pool."""
        await self._client.close()
