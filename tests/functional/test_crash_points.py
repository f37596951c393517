"""Crash points (issue 15, as Bitcoin Core's feature_dbcrash): the process ends with os._exit at a chosen point
of a ChanStore write or of a settlement (PAYCHAN_CRASH_POINT, paychan_runtime.faults); after a restart every
acknowledged payment is stored, the store's indexes agree with its states, and a channel settles exactly once
with the one settlement that was signed and stored."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from pathlib import Path

import httpx
import pytest

from chan_store.leveldb_storage import LevelDBStorage
from chan_store.verify import StoreReport, verify_storage
from paychan_client import TransportError
from paychan_common.state import ChannelState, Status
from paychan_common.tx import Transaction
from paychan_runtime.faults import ENV_VAR, EXIT_CRASH_POINT
from tests.functional.test_regtest_settlement import fund_and_open, pay_n
from tests.support import regtest_stack as stack
from tests.support.channels import CLIENT_REFUND, TestChannel
from tests.support.regtest import RegtestNode, wait_for
from tests.support.services import Services, logged

log = logging.getLogger("paychan.tests")
pytestmark = pytest.mark.functional

OPEN_PRICE = 100_000
CRASH_AT_WRITE = 6  # write 1 stores the open, writes 2..5 four payments; the fifth payment's write crashes


def verified(root: Path) -> StoreReport:
    """verify_storage over a stopped ChanStore's LevelDB directory."""
    storage = LevelDBStorage(root / "chanstore")
    try:
        return verify_storage(storage)
    finally:
        asyncio.run(storage.close())


def assert_one_channel_closed(root: Path) -> None:
    """The stopped store is consistent and holds exactly one channel, closed."""
    report = verified(root)
    assert report.ok and report.counts == {"open": 0, "closing": 0, "closed": 1}, report.problems


def exit_code(svc_proc: object) -> int | None:
    """Wait (bounded) for a crashed process and return its exit status."""
    proc = svc_proc
    assert proc is not None
    return int(proc.wait(timeout=30))  # type: ignore[attr-defined]


def signed_txids(svc: Services, ch: TestChannel) -> set[str]:
    """Settlement txids the SigningService's audit log shows for this channel."""
    line = re.compile(rf"signed settlement txid=([0-9a-f]{{64}}) outpoint={ch.op.display_txid}:{ch.op.vout}\b")
    return set(line.findall(svc.signer.logfile.read_text(errors="replace")))


def open_v2(svc: Services, ch: TestChannel) -> int:
    """Open a v2-seed channel; returns the opening change value."""
    change = ch.funding_value - OPEN_PRICE
    r = httpx.post(svc.url + ch.seed_url, json=ch.v2_body(change), timeout=30)
    assert r.status_code == 201, r.text
    return change


@pytest.mark.parametrize("point", ["store.before_write", "store.after_write"])
def test_chanstore_crash_point_keeps_every_acknowledged_payment(tmp_path: Path, point: str) -> None:
    svc = Services(tmp_path / "svc")
    svc.store.env[ENV_VAR] = f"{point}@{CRASH_AT_WRITE}"
    with logged(svc):
        svc.start()
        ch = TestChannel(exp_time=int(time.time()) + 7 * 24 * 3600)
        change = open_v2(svc, ch)
        acked = [change]
        log.info("payments until ChanStore ends itself at %s of write %d", point, CRASH_AT_WRITE)
        failed: int | None = None
        with httpx.Client(timeout=30) as c:
            for _ in range(CRASH_AT_WRITE + 2):
                change -= 1
                r = c.put(svc.url + ch.seed_url, json=ch.v2_body(change))
                if r.status_code != 200:
                    assert r.status_code == 503, r.text  # ChanStore gone: not acknowledged, outcome unknown
                    failed = change
                    break
                acked.append(change)
        assert failed is not None and len(acked) == CRASH_AT_WRITE - 1, (failed, acked)
        assert exit_code(svc.store.proc) == EXIT_CRASH_POINT
        assert f"crash point {point} reached" in svc.store.tail()
        log.info("restarted without the crash point: the store is consistent and holds every acknowledged payment")
        report = verified(svc.root)
        assert report.ok, report.problems
        del svc.store.env[ENV_VAR]
        svc.start_store()
        state = stack.stored_state(svc, ch.op)
        assert state is not None and state.status is Status.OPEN
        # before the write the failed payment is lost (never acknowledged); after it, it is on disk (unacknowledged)
        assert state.change_value == (min(acked) if point == "store.before_write" else failed)
        log.info("the channel goes on: a payment and a close are acknowledged")
        r = httpx.put(svc.url + ch.seed_url, json=ch.v2_body(failed - 1), timeout=30)
        assert r.status_code == 200 and r.json()["value_received"] == state.change_value - (failed - 1), r.text
        r = httpx.put(svc.url + ch.seed_url + "/close", json=ch.v2_body(failed - 1, CLIENT_REFUND), timeout=30)
        assert r.status_code == 200 and r.json()["channel_status"] == "closed", r.text
        svc.stop()
        assert_one_channel_closed(svc.root)


@pytest.mark.parametrize("point", ["settler.after_sign", "settler.after_store", "settler.after_publish"])
def test_settler_crash_point_settles_once_after_restart(tmp_path: Path, point: str) -> None:
    svc = Services(tmp_path / "svc")
    svc.server.env[ENV_VAR] = point
    with logged(svc):
        svc.start()
        ch = TestChannel(exp_time=int(time.time()) + 7 * 24 * 3600)
        change = open_v2(svc, ch) - 3
        assert httpx.put(svc.url + ch.seed_url, json=ch.v2_body(change), timeout=30).status_code == 200
        log.info("the close request ends PayChanServer at %s", point)
        with pytest.raises(httpx.HTTPError):
            httpx.put(svc.url + ch.seed_url + "/close", json=ch.v2_body(change, CLIENT_REFUND), timeout=30)
        assert exit_code(svc.server.proc) == EXIT_CRASH_POINT
        crashed = stack.stored_state(svc, ch.op)
        assert crashed is not None and crashed.status is Status.CLOSING and crashed.change_value == change
        assert bool(crashed.settlement_tx) == (point != "settler.after_sign")  # stored before it is published
        log.info("restarted without the crash point: the follow-up loop finishes the closing")
        del svc.server.env[ENV_VAR]
        svc.server.start()
        closed: ChannelState = stack.wait_state(svc, ch.op, lambda s: s.status is Status.CLOSED, what="closed")
        if crashed.settlement_tx:
            assert closed.settlement_txid == crashed.settlement_txid  # the stored one, never a second one
        tx = Transaction.parse(closed.settlement_tx)
        assert tx.txid == closed.settlement_txid and [i.prevout for i in tx.inputs] == [ch.op]
        assert signed_txids(svc, ch) == {closed.settlement_txid}  # re-signed at most identically (RFC 6979)
        r = httpx.put(svc.url + ch.seed_url + "/close", json=ch.v2_body(change, CLIENT_REFUND), timeout=30)
        assert r.status_code == 200 and r.json()["settlement_txid"] == closed.settlement_txid, r.text
        svc.stop()
        assert_one_channel_closed(svc.root)


def test_unknown_crash_point_refuses_to_start(tmp_path: Path) -> None:
    svc = Services(tmp_path / "svc")
    svc.store.env[ENV_VAR] = "store.befor_write"
    svc.store.start()
    assert exit_code(svc.store.proc) == 2
    wait_for(lambda: "unknown crash point" in svc.store.tail(), timeout=10, description="one-line error")
    assert "Traceback" not in svc.store.tail()


@pytest.mark.regtest
def test_settler_crash_between_storing_and_publishing_on_a_real_node(regtest_node: RegtestNode,
                                                                     tmp_path: Path) -> None:
    node = regtest_node
    svc = stack.regtest_services(tmp_path / "svc", node)
    svc.server.env[ENV_VAR] = "settler.after_store"
    refund = node.rpc("getnewaddress", "", "legacy")
    with logged(svc):
        svc.start()
        with stack.client(svc) as c:
            ch = pay_n(c, fund_and_open(c, node, "v2.3", refund_address=refund), 3)
            log.info("the close ends PayChanServer after the signed settlement is stored, before it is published")
            with pytest.raises(TransportError):
                c.close(ch, refund, fee=2_000)
            assert exit_code(svc.server.proc) == EXIT_CRASH_POINT
            crashed = stack.stored_state(svc, ch.funding_outpoint)
            assert crashed is not None and crashed.status is Status.CLOSING and crashed.settlement_tx
            assert crashed.settlement_txid not in node.rpc("getrawmempool")  # never published
            verdict = stack.mempool_accepts(node, crashed.settlement_tx.hex())
            assert verdict["allowed"], verdict  # the stored settlement is valid for a real node
            log.info("restart: the follow-up loop publishes the stored settlement, and only it")
            del svc.server.env[ENV_VAR]
            svc.server.start()
            wait_for(lambda: crashed.settlement_txid in node.rpc("getrawmempool"), timeout=60,
                     description="the stored settlement published")
            node.mine(1)
            closed = stack.wait_state(svc, ch.funding_outpoint, lambda s: s.status is Status.CLOSED, what="closed")
            assert closed.settlement_txid == crashed.settlement_txid
            assert stack.spender_of(node, ch.funding_outpoint, stack.all_blocks(node)) == [crashed.settlement_txid]
            again = c.close(ch, refund, fee=2_000)
            assert again.settlement_txid == crashed.settlement_txid
