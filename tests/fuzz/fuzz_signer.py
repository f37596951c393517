"""Fuzz the SigningService's request body (POST /sign_settlement): SettlementRequest.from_json, then every
policy check (approve); whatever passes spends only the channel, pays only the client's change and the
configured destination, and pays a fee within the cap."""

from __future__ import annotations

import atheris

from tests.fuzz import INSTRUMENTED

with atheris.instrument_imports(include=INSTRUMENTED):
    from paychan_common.address import Address
    from paychan_common.network import Network
    from signing_service.contract import SettlementRequest
    from signing_service.policy import SigningPolicy, approve
    from tests.fuzz.common import NOT_JSON, json_input, main, rejects_cleanly
    from tests.fuzz.seeds import DESTINATION, signer_bodies
    from tests.support.channels import DEBUG_SERVER_PK

SEEDS = signer_bodies()
POLICY = SigningPolicy(DEBUG_SERVER_PK, Address.parse(DESTINATION, Network.TEST), 200_000, 700)


def harness(data: bytes) -> None:
    """One input."""
    body = json_input(data)
    if body is NOT_JSON:
        return
    req = rejects_cleanly(lambda: SettlementRequest.from_json(body))
    if req is None:
        return
    approved = rejects_cleanly(lambda: approve(req, POLICY))
    if approved is None:
        return
    # The server's output may be absent: below the dust limit it goes to the fee (settlement.unsigned_settlement).
    outputs = approved.tx.outputs
    allowed = {POLICY.destination.script_pubkey, approved.settlement.change_script}
    assert all(out.script_pubkey in allowed for out in outputs), outputs
    assert approved.fee == req.funding_value - sum(out.value for out in outputs) <= POLICY.max_fee
    assert [i.prevout for i in approved.tx.inputs] == [approved.settlement.outpoint]


if __name__ == "__main__":
    main(harness, SEEDS)
