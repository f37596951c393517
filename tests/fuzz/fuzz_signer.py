"""Fuzz the SigningService's request body (POST /sign_settlement): SettlementRequest.from_json, then every
policy check (approve); whatever passes must be a settlement paying the configured destination."""

from __future__ import annotations

import atheris

from tests.fuzz import INSTRUMENTED

with atheris.instrument_imports(include=INSTRUMENTED):
    from paychan_common.address import Address
    from paychan_common.network import Network
    from signing_service.policy import SettlementRequest, SigningPolicy, approve
    from tests.fuzz.common import NOT_JSON, json_input, main, rejects_cleanly
    from tests.fuzz.seeds import DEBUG_SERVER_PK, DESTINATION, signer_bodies

SEEDS = signer_bodies()
POLICY = SigningPolicy(DEBUG_SERVER_PK, Address.parse(DESTINATION, Network.TEST), 200_000)


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
    scripts = [out.script_pubkey for out in approved.tx.outputs]
    assert POLICY.destination.script_pubkey in scripts and approved.fee <= POLICY.max_fee
    assert [i.prevout for i in approved.tx.inputs] == [approved.settlement.outpoint]


if __name__ == "__main__":
    main(harness, SEEDS)
