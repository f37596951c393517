"""Fee bumping against the deadline (spec 8.6) on a real Bitcoin Knots node in regtest, with the three services
as subprocesses: a settlement kept out of blocks by the node's `-blockmintxfee` is replaced by higher-fee
versions until one is mined before exp_time (each stored before it was published); the refund race, lost
without bumping and won with it; and the ALERT when the fee ceiling cannot reach the node's estimate."""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path
from typing import Any

import pytest

from paychan_common.state import ChannelState, Status
from paychan_common.tx import Transaction
from tests.functional.test_regtest_settlement import cli, cli_ok, fund_and_open, pay_n
from tests.support import regtest_stack as stack
from tests.support.regtest import RegtestNode, wait_for
from tests.support.services import Services

log = logging.getLogger("paychan.tests")
pytestmark = pytest.mark.regtest

BLOCK_MIN_RATE = 50  # sat/vB: the node mines nothing paying less (-blockmintxfee)
MARGIN = 1800  # settlement.bump_deadline_margin_seconds: the deadline is exp_time - 30 min (by MTP)
STEP = 300  # chain time moved per step


def fee_of(state: ChannelState, tx: bytes) -> int:
    """Funding value minus the outputs of one settlement version."""
    return state.funding_value - sum(o.value for o in Transaction.parse(tx).outputs)


def txid_of(tx: bytes) -> str:
    """Display txid."""
    return Transaction.parse(tx).txid


def funding_spenders_in_mempool(node: RegtestNode, state: ChannelState) -> set[str]:
    """Mempool transactions spending the channel's funding output."""
    found = set()
    for txid in node.rpc("getrawmempool"):
        for vin in node.rpc("getrawtransaction", txid, True)["vin"]:
            if (vin.get("txid"), vin.get("vout")) == (state.outpoint.display_txid, state.outpoint.vout):
                found.add(txid)
    return found


def versions_stored(svc: Services, ch: Any) -> int:
    """How many settlement versions ChanStore holds for the channel."""
    state = stack.stored_state(svc, ch.funding_outpoint)
    return 0 if state is None else len(state.settlement_versions)


def stuck_settlement(node: RegtestNode, tmp_path: Path, *, bump: bool) -> tuple[Services, Any, int, ChannelState]:
    """A v2 channel auto-closed at 3 sat/vB on a node that mines only >= 50 sat/vB: the settlement waits."""
    svc = stack.regtest_services(tmp_path / "svc", node, server={"settlement": {
        "bump_enable": bump, "bump_deadline_margin_seconds": MARGIN}})
    svc.start()
    exp = int(time.time()) + 3 * stack.HOUR + 600
    with stack.client(svc) as c:
        ch = pay_n(c, fund_and_open(c, node, "v2", exp=exp), 5)
    log.info("the node now mines only transactions paying >= %d sat/vB", BLOCK_MIN_RATE)
    stack.restart_node(node, [f"-blockmintxfee={BLOCK_MIN_RATE * 1000 / 1e8:.8f}"])
    log.info("chain time reaches exp - settlement period - margin: the scheduler settles at 3 sat/vB")
    stack.advance_chain_time(node, exp - 2 * stack.HOUR + 60)
    state = stack.wait_state(svc, ch.funding_outpoint, lambda s: bool(s.settlement_txid), what="settlement stored")
    wait_for(lambda: state.settlement_txid in node.rpc("getrawmempool"), timeout=30, description="published")
    node.mine(1)
    assert state.settlement_txid in node.rpc("getrawmempool"), "kept out of the block by -blockmintxfee"
    assert fee_of(state, state.settlement_tx) < BLOCK_MIN_RATE * len(state.settlement_tx) // 10
    return svc, ch, exp, state


def test_a_stuck_settlement_is_replaced_until_mined_before_expiry_and_beats_the_refund(
        regtest_node_fresh: RegtestNode, tmp_path: Path) -> None:
    node = regtest_node_fresh
    svc, ch, exp, _first = stuck_settlement(node, tmp_path, bump=True)
    outpoint = ch.funding_outpoint
    dest = svc.configs["signing"]["settlement"]["destination"]
    seen: set[str] = set()
    try:
        target = exp - 2 * stack.HOUR + 60
        while not stack.spender_of(node, outpoint, stack.all_blocks(node)[-12:]):
            assert target < exp - MARGIN, "not mined before the deadline"
            before = stack.stored_state(svc, outpoint)
            assert before is not None
            in_pool = funding_spenders_in_mempool(node, before)
            stored_now = stack.stored_state(svc, outpoint)
            assert stored_now is not None
            assert in_pool <= {txid_of(v) for v in stored_now.settlement_versions}, "published before stored"
            seen |= in_pool
            target += STEP
            log.info("chain time +%d s (%.2f h to the deadline): expect a replacement", STEP,
                     (exp - MARGIN - target) / 3600)
            stack.advance_chain_time(node, target)
            def replaced_or_mined(b: ChannelState = before) -> bool:
                return (bool(stack.spender_of(node, outpoint, stack.all_blocks(node)[-12:]))
                        or versions_stored(svc, ch) > len(b.settlement_versions))

            wait_for(replaced_or_mined, timeout=30, description="a replacement or the settlement mined")
            newest = stack.stored_state(svc, outpoint)
            assert newest is not None

            def published_or_mined(n: ChannelState = newest) -> bool:
                return (n.settlement_txid in node.rpc("getrawmempool")
                        or bool(stack.spender_of(node, outpoint, stack.all_blocks(node)[-12:])))

            wait_for(published_or_mined, timeout=30, description="the newest version published")
            node.mine(1)
        assert stack.mtp(node) < exp, "mined before the refund became valid"
        closed = stack.wait_state(svc, outpoint, lambda s: s.status is Status.CLOSED, what="closed")
        [mined] = stack.spender_of(node, outpoint, stack.all_blocks(node))
        versions = closed.settlement_versions
        log.info("%d versions signed; %s mined", len(versions), mined)
        assert len(versions) >= 3, "replaced more than once"
        assert closed.settlement_txid == mined and mined in {txid_of(v) for v in versions}
        assert seen <= {txid_of(v) for v in versions}, "every published version is a stored one"
        fees = [fee_of(closed, v) for v in versions]
        log.info("fees by version: %s sat; rates %s sat/vB", fees,
                 [fee_of(closed, v) // len(v) for v in versions])
        assert fees == sorted(fees) and len(set(fees)) == len(fees), "each version pays more"
        for old, new, tx in zip(fees, fees[1:], versions[1:], strict=False):
            assert new - old >= len(tx), "BIP125: at least the incremental relay fee (1 sat/vB) x size"
        mined_fee = fee_of(closed, closed.settlement_tx)
        assert mined_fee >= BLOCK_MIN_RATE * len(closed.settlement_tx)
        paid = stack.outputs_by_address(stack.decoded(node, mined))
        assert paid[dest] == closed.value_received - mined_fee > 0, "the destination gets its share minus the fee"
        assert paid[ch.funding_address] == ch.change_value, "the client's change is untouched"
        log_text = svc.server.tail(2000)
        for tx in versions:
            txid = txid_of(tx)
            stored_at = log_text.find(txid)
            published = re.search(rf"{txid} published", log_text)
            assert stored_at >= 0 and published is not None and stored_at < published.start(), txid

        log.info("exp_time passes: the client's refund of the funding would pay more, but it comes too late")
        stack.advance_chain_time(node, exp + 1)
        state_file = tmp_path / "channel.json"
        ch.save(state_file)
        built = cli_ok(state_file, "refund", "--fee", "30000")
        assert built["refund_valid_after_median_time_past"] == exp
        verdict = stack.mempool_accepts(node, built["tx"])
        assert verdict["allowed"] is False and "missing" in verdict["reject-reason"]
        rpc = ["--rpc-url", node.rpc_url + "/wallet/w", "--rpc-user", node.rpc_user,
               f"--rpc-password={node.rpc_password}", "--fee", "30000"]
        refunded = cli(state_file, "refund", *rpc)
        assert built["txid"] not in node.rpc("getrawmempool"), "never a refund of a settled funding output"
        assert refunded.returncode == 0 and mined in refunded.stdout, "only the settlement's change is refunded"
    finally:
        svc.stop()


def test_without_bumping_the_clients_refund_replaces_a_stuck_settlement(regtest_node_fresh: RegtestNode,
                                                                        tmp_path: Path) -> None:
    node = regtest_node_fresh
    svc, ch, exp, state = stuck_settlement(node, tmp_path, bump=False)
    try:
        log.info("no bumping: the settlement still pays 3 sat/vB when median time past passes exp_time")
        stack.advance_chain_time(node, exp + 1)
        assert state.settlement_txid in node.rpc("getrawmempool")
        state_file = tmp_path / "channel.json"
        ch.save(state_file)
        rpc = ["--rpc-url", node.rpc_url + "/wallet/w", "--rpc-user", node.rpc_user,
               f"--rpc-password={node.rpc_password}"]
        refund = cli_ok(state_file, "refund", "--fee", "30000", *rpc)  # ~130 sat/vB: more than the settlement
        assert refund["published"] and refund["refund_valid_now"] is True
        pool = node.rpc("getrawmempool")
        assert refund["txid"] in pool and state.settlement_txid not in pool, "full RBF: the refund replaced it"
        node.mine(1)
        assert stack.spender_of(node, ch.funding_outpoint, stack.all_blocks(node)[-1:]) == [refund["txid"]]
        done = stack.wait_state(svc, ch.funding_outpoint, lambda s: s.status is Status.CLOSED, what="marked")
        assert done.refunded
        wait_for(lambda: "presumably the client's refund" in svc.server.tail(300), timeout=30,
                 description="the loss alert")
    finally:
        svc.stop()


def test_the_ceiling_alert_fires_hours_before_the_deadline(regtest_node_fresh: RegtestNode, tmp_path: Path) -> None:
    node = regtest_node_fresh
    log.info("the node learns a fee estimate of 25 sat/vB from wallet transactions")
    sink = node.new_address()
    for _ in range(6):
        for _ in range(4):
            node.rpc("sendtoaddress", sink, "0.01", "", "", False, True, None, "unset", None, 25, wallet="w")
        node.mine(1)
    assert node.rpc("estimatesmartfee", 6)["feerate"] * 100_000_000 // 1000 == 25
    svc = stack.regtest_services(tmp_path / "svc", node, server={"settlement": {
        "max_fee_rate_sat_per_byte": 5, "bump_max_fee": 3_000, "alert_hours_before_deadline": 12,
        "bump_deadline_margin_seconds": MARGIN}})
    try:
        svc.start()
        exp = int(time.time()) + 10 * stack.HOUR
        with stack.client(svc) as c:
            ch = pay_n(c, fund_and_open(c, node, "v2", exp=exp), 3)
            closing = c.close(ch)
        assert closing.settlement_txid in node.rpc("getrawmempool")
        wait_for(lambda: "cannot reach the node's estimate" in svc.server.tail(300), timeout=30,
                 description="the ceiling ALERT")
        line = next(x for x in svc.server.tail(300).splitlines() if "cannot reach the node's estimate" in x)
        assert "ALERT" in line and "25 sat/byte" in line
        assert exp - MARGIN - stack.mtp(node) > 9 * stack.HOUR, "hours before the deadline"
        state = stack.stored_state(svc, ch.funding_outpoint)
        assert state is not None and state.status is Status.CLOSING
        assert all(fee_of(state, v) <= 3_000 for v in state.settlement_versions), "never above the ceiling"
    finally:
        svc.stop()
