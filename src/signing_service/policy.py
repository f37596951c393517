"""The SigningService's own checks of a settlement request (DESIGN: signing_service; spec 8.1-8.3).

Pure: no I/O and no key. `approve()` either returns the unsigned settlement transaction, whose server
output can only pay the configured destination, or raises:

* InvalidInput (400) for a malformed request (types, hex, DER encoding, sighash byte);
* SigningRefused (403) with a stable code for a well-formed request the policy refuses:
  `foreign_destination`, `not_channel_script`, `foreign_script`, `change_above_funding`,
  `fee_above_cap`, `bad_client_signature`, `no_output`, `unexpected_output` (and, from the funding check
  and the memory, `funding_mismatch`, `older_state`, `lower_fee_rate`).

The service's own dust limit decides whether the server output is kept; a `dust_limit` in the request is
accepted for older callers and ignored (spec 8.6): a caller-chosen limit could drop the server output and
hand the server's share to miners. The per-channel memory (older states, lower fee rates) is `memory.py`.
"""

from __future__ import annotations

from dataclasses import dataclass

from paychan_common.address import Address
from paychan_common.channel import ClientSignature, PaymentVerifier, parse_hex
from paychan_common.errors import InvalidInput, SigningRefused
from paychan_common.keys import PublicKey
from paychan_common.script import parse_channel_script
from paychan_common.settlement import SettlementInput, signed_size_bound, unsigned_settlement
from paychan_common.sighash import NONE_ACP
from paychan_common.tx import OutPoint, Transaction

from .contract import SettlementRequest


@dataclass(frozen=True, slots=True)
class SigningPolicy:
    """What the service signs for: channels holding server_pubkey, paying destination, fee <= max_fee;
    the server output is dropped below dust_limit (the service's own)."""

    server_pubkey: PublicKey
    destination: Address
    max_fee: int
    dust_limit: int


@dataclass(frozen=True, slots=True)
class ApprovedSettlement:
    """A settlement that passed every check, ready for the server signature."""

    settlement: SettlementInput
    tx: Transaction
    server_value: int
    fee: int
    size: int  # upper bound of the signed size, for fee-rate comparisons


def _refuse(code: str, message: str) -> SigningRefused:
    return SigningRefused(message, code=code)


def _client_signature(req: SettlementRequest) -> ClientSignature:
    der = parse_hex(req.client_signature, "client_signature", max_len=2 * 73)
    try:
        return ClientSignature.from_parts(der, req.client_sighash)
    except InvalidInput as exc:  # malformed DER or an unsupported sighash byte: a malformed field
        raise InvalidInput(f"client_signature: {exc.message}", code=exc.code) from None


def _check_destination(req: SettlementRequest, policy: SigningPolicy) -> None:
    if req.destination is None:
        return
    try:
        asked = Address.parse(req.destination, policy.destination.network).script_pubkey
    except InvalidInput:
        asked = None
    if asked != policy.destination.script_pubkey:
        raise _refuse("foreign_destination", "destination differs from the configured settlement destination")


def _client_key(redeem_script: bytes, policy: SigningPolicy) -> PublicKey:
    try:
        server_pk, client_pk, _exp_time = parse_channel_script(redeem_script)
        client = PublicKey.from_bytes(client_pk)
    except InvalidInput as exc:
        raise _refuse("not_channel_script", f"redeem_script is not a channel script: {exc.message}") from None
    if server_pk != policy.server_pubkey.data:
        raise _refuse("foreign_script", "redeem_script does not hold this service's key")
    return client


def _check_outputs(tx: Transaction, s: SettlementInput, policy: SigningPolicy) -> int:
    """Every output is the client's signed change output or pays the destination; returns the server value."""
    outputs = list(tx.outputs)
    if s.client_signature.sighash != NONE_ACP:
        change = outputs.pop(0)
        if (change.value, change.script_pubkey) != (s.change_value, s.change_script):
            raise _refuse("unexpected_output", "settlement output 0 is not the client's change output")
    if len(outputs) > 1 or any(o.script_pubkey != policy.destination.script_pubkey for o in outputs):
        raise _refuse("unexpected_output", "settlement has an output not paying the destination")
    return outputs[0].value if outputs else 0


def approve(req: SettlementRequest, policy: SigningPolicy) -> ApprovedSettlement:
    """Run every check of a settlement request and build its unsigned transaction (spec 8.1, 8.3)."""
    redeem_script = parse_hex(req.redeem_script, "redeem_script", max_len=2 * 81)
    outpoint = OutPoint.from_display(req.funding_txid, req.funding_vout)
    change_script = parse_hex(req.change_script, "change_script", max_len=2 * 520)
    client_sig = _client_signature(req)

    _check_destination(req, policy)
    client_pubkey = _client_key(redeem_script, policy)
    if req.change_value > req.funding_value:
        raise _refuse("change_above_funding", "change_value exceeds funding_value")
    if req.fee > policy.max_fee:
        raise _refuse("fee_above_cap", f"fee {req.fee} exceeds the cap of {policy.max_fee} sat")
    try:
        PaymentVerifier(client_pubkey, outpoint, redeem_script).verify(client_sig, req.change_value, change_script)
    except InvalidInput:
        raise _refuse("bad_client_signature", "client signature does not sign this payment") from None

    settlement = SettlementInput(outpoint, req.funding_value, redeem_script, req.change_value, change_script,
                                 client_sig)
    try:
        tx = unsigned_settlement(settlement, policy.destination.script_pubkey, req.fee, policy.dust_limit)
    except InvalidInput as exc:
        raise _refuse("no_output", exc.message) from None
    server_value = _check_outputs(tx, settlement, policy)
    implied_fee = req.funding_value - sum(o.value for o in tx.outputs)
    if implied_fee < 0:
        raise _refuse("unexpected_output", "settlement outputs exceed the funding value")
    if implied_fee > policy.max_fee:
        raise _refuse("fee_above_cap", f"settlement fee {implied_fee} (funding minus outputs) exceeds the cap "
                                       f"of {policy.max_fee} sat")
    return ApprovedSettlement(settlement, tx, server_value, implied_fee, signed_size_bound(settlement, tx))
