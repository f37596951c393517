"""Settlement that never misses expiry, on a real regtest node with the services as subprocesses: the
scheduler (two PayChanServer instances, one killed mid-settlement), the client's refund with the server
gone (through the `paychan-client` CLI), the SigningService down during a close, and a node outage with a
mempool wiped by a restart (the settlement is rebroadcast)."""

from __future__ import annotations

import json
import logging
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import tomli_w

from paychan_client import ClientChannel, Family, PaychanClient, ServerRejected
from paychan_common.keys import PrivateKey
from paychan_common.state import Status
from paychan_common.tx import OutPoint
from tests.support.ports import reserve_port
from tests.support.regtest import RegtestNode, wait_for
from tests.support.regtest_stack import (
    HOUR,
    advance_chain_time,
    all_blocks,
    client,
    decoded,
    mempool_accepts,
    mtp,
    outputs_by_address,
    regtest_services,
    restart_node,
    spender_of,
    stored_state,
    wait_state,
    wallet_rpc,
)
from tests.support.services import PROJECT_ROOT, Service, Services, deep_merge

log = logging.getLogger("paychan.tests")
pytestmark = pytest.mark.regtest


def fund_and_open(c: PaychanClient, node: RegtestNode, family: Family | str, *, exp: int | None = None,
                  amount: int = 1_000_000, refund_address: str | None = None) -> ClientChannel:
    """Fund from the node wallet, confirm twice, open (the library checks the funding address)."""
    key = PrivateKey(secrets.token_bytes(32))
    exp = exp or int(time.time()) + 4 * HOUR
    info = c.funding_info(key.public_key, exp, family)
    rpc = wallet_rpc(node)
    try:
        outpoint, value = rpc.find_output(rpc.send_to_address(info.funding_address, amount),
                                          info.params.funding_address.script_pubkey)
    finally:
        rpc.close()
    node.mine(2)
    return c.open_channel(key, exp, outpoint, value, family, info=info, refund_address=refund_address).channel


def pay_n(c: PaychanClient, ch: ClientChannel, n: int, amount: int = 1_000) -> ClientChannel:
    """n payments."""
    for _ in range(n):
        ch = c.pay(ch, amount).channel
    return ch


def second_server(svc: Services, name: str = "paychan_server_b") -> tuple[Service, str]:
    """Another PayChanServer instance on the same ChanStore and SigningService (own port)."""
    port = reserve_port()
    cfg = deep_merge(svc.configs["server"], {"listen": {"port": port}})
    path = svc.root / f"{name}.toml"
    path.write_text(tomli_w.dumps(cfg))
    return Service(name, "paychan_server", path, svc.root), f"http://127.0.0.1:{port}"


def healthy(url: str) -> bool:
    """True once GET /health answers 200."""
    try:
        return httpx.get(url + "/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def start_server(service: Service, url: str) -> None:
    """Start a PayChanServer process and wait until it answers."""
    service.start()
    wait_for(lambda: healthy(url), timeout=60, description=f"{service.name} ready")


# ---------------------------------------------------------------------------------------------- scheduler


def test_scheduler_settles_before_expiry_once_across_instances_and_a_crash(
        regtest_node_fresh: RegtestNode, tmp_path: Path) -> None:
    node = regtest_node_fresh
    log.info("the node refuses transactions below 10 sat/vB; the servers pay at most 2: publication stalls")
    restart_node(node, ["-minrelaytxfee=0.0001"])
    svc = regtest_services(tmp_path / "svc", node, server={"settlement": {"max_fee_rate_sat_per_byte": 2}})
    dest = svc.configs["signing"]["settlement"]["destination"]
    other, other_url = second_server(svc)
    try:
        svc.start()
        start_server(other, other_url)
        exp = int(time.time()) + 3 * HOUR + 600
        with client(svc) as c:
            ch = pay_n(c, fund_and_open(c, node, "v2", exp=exp), 5)
        outpoint = ch.funding_outpoint

        log.info("chain time reaches exp_time - settlement_period - margin: both instances' schedulers settle")
        target = exp - 2 * HOUR + 60
        advance_chain_time(node, target)
        state = wait_state(svc, outpoint, lambda s: s.status is Status.CLOSING and bool(s.settlement_tx),
                           what="settlement signed and stored")
        assert mtp(node) < exp
        wait_for(lambda: "min relay fee not met" in svc.server.tail(200) + other.tail(200), timeout=30,
                 description="the node refusing the settlement")
        assert state.settlement_txid not in node.rpc("getrawmempool")

        log.info("SIGKILL both PayChanServer instances in the middle of the settlement")
        svc.server.kill(signal.SIGKILL)
        other.kill(signal.SIGKILL)
        signed_lines = (svc.server.tail(400) + other.tail(400)).count("signed and stored")
        assert signed_lines == 1, "exactly one settlement stored for the channel"

        log.info("the node is back with its normal relay fee; the stored settlement passes testmempoolaccept")
        restart_node(node)
        node.setmocktime(target)
        stored = stored_state(svc, outpoint)
        assert stored is not None and stored.settlement_tx == state.settlement_tx
        verdict = mempool_accepts(node, state.settlement_tx.hex())
        assert verdict["allowed"] is True, verdict.get("reject-reason")

        log.info("restart one instance: the unfinished closing resumes with the stored transaction")
        svc.server.start()
        wait_for(lambda: healthy(svc.url), timeout=60, description="server back")
        wait_for(lambda: state.settlement_txid in node.rpc("getrawmempool"), timeout=30,
                 description="stored settlement published")
        node.mine(1)
        closed = wait_state(svc, outpoint, lambda s: s.status is Status.CLOSED, what="closed")
        assert closed.settlement_txid == state.settlement_txid
        assert mtp(node) < exp - HOUR, "settled before expiry, even before the settlement period"
        assert "still open" not in svc.server.tail(400) + other.tail(400), "no late-settlement alert"
        assert spender_of(node, outpoint, all_blocks(node)) == [state.settlement_txid]
        paid_to_dest = sum(outputs_by_address(tx).get(dest, 0)
                           for block in all_blocks(node) for tx in node.rpc("getblock", block, 2)["tx"])
        assert paid_to_dest == outputs_by_address(decoded(node, state.settlement_txid))[dest] > 0

        log.info("after expiry the client refunds its change, which the v2 settlement paid to the channel address")
        advance_chain_time(node, exp + 1)
        state_file = tmp_path / "channel.json"
        ch.save(state_file)
        change = ch.change_value
        built = cli_ok(state_file, "refund", "--txid", state.settlement_txid, "--vout", "0", "--value", str(change))
        verdict = mempool_accepts(node, built["tx"])
        assert verdict["allowed"] is True, verdict.get("reject-reason")
        rpc = ["--rpc-url", node.rpc_url + "/wallet/w", "--rpc-user", node.rpc_user,
               f"--rpc-password={node.rpc_password}"]
        published = cli_ok(state_file, "refund", *rpc)  # the funding is spent: the CLI finds the change output
        assert (published["funding_txid"], published["funding_vout"]) == (state.settlement_txid, 0)
        assert published["txid"] == built["txid"] and published["published"]
        node.mine(1)
        assert outputs_by_address(decoded(node, built["txid"]))[ch.refund_address] == built["value"]
        assert 0 < change - built["value"] < 1_000
    finally:
        other.stop()
        svc.stop()


# ---------------------------------------------------------------------------------------------- refund


def cli(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `python -m paychan_client` (the `paychan-client` command)."""
    return subprocess.run([sys.executable, "-m", "paychan_client", args[0], "--state", str(state), *args[1:]],
                          capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=120, check=False)


def cli_ok(state: Path, *args: str) -> dict[str, Any]:
    """Run the CLI, require success, return its JSON line."""
    proc = cli(state, *args)
    assert proc.returncode == 0, proc.stderr
    event: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return event


def test_refund_after_expiry_with_the_server_gone(regtest_node_fresh: RegtestNode, tmp_path: Path) -> None:
    node = regtest_node_fresh
    svc = regtest_services(tmp_path / "svc", node)
    state = tmp_path / "channel.json"
    rpc = ["--rpc-url", node.rpc_url + "/wallet/w", "--rpc-user", node.rpc_user,
           f"--rpc-password={node.rpc_password}"]
    refund_address = node.rpc("getnewaddress", "", "legacy")
    try:
        svc.start()
        log.info("paychan-client: keygen, info (address checked), fund from the node wallet, wait-conf, open, pay")
        cli_ok(state, "keygen", "--network", "regtest", "--family", "v1", "--endpoint", svc.url,
               "--refund-address", refund_address)
        info = cli_ok(state, "info", "--duration-hours", "4")
        exp = info["exp_time"]
        funded = cli_ok(state, "fund", "--amount-sat", "500000", *rpc)
        assert funded["funding_address"] == info["funding_address"]
        assert cli_ok(state, "wait-conf", "2", "--generate", *rpc)["confirmations"] >= 2
        opened = cli_ok(state, "open")
        assert opened["channel_status"] == "open" and opened["value_received"] == info["open_price"]
        for _ in range(3):
            assert cli_ok(state, "pay", "--amount", "1000")["value_received"] == 1000
        outpoint = OutPoint.from_display(funded["funding_txid"], funded["funding_vout"])

        log.info("the server is gone; before expiry the node refuses the refund as non-final, and the CLI says why")
        svc.stop()
        early = cli_ok(state, "refund")
        assert early["locktime"] == exp
        assert mempool_accepts(node, early["tx"])["reject-reason"] == "non-final"
        refused = cli(state, "refund", *rpc)
        assert refused.returncode == 2 and "error: too early: median time past " in refused.stderr
        assert f"exp_time {exp}, about " in refused.stderr and " h to go" in refused.stderr

        log.info("once median time past passes exp_time the refund is valid")
        advance_chain_time(node, exp + 1)
        assert mtp(node) > exp
        late = cli_ok(state, "refund")
        verdict = mempool_accepts(node, late["tx"])
        assert verdict["allowed"] is True, verdict.get("reject-reason")
        published = cli_ok(state, "refund", *rpc)
        assert published["published"] and published["txid"] == late["txid"]
        node.mine(1)
        assert outputs_by_address(decoded(node, late["txid"]))[refund_address] == late["value"]
        assert 0 < 500_000 - late["value"] < 1_000  # funding minus the refund fee (1 sat/byte)
        assert spender_of(node, outpoint, all_blocks(node)[-1:]) == [late["txid"]]

        log.info("the server comes back: it notices the funding went to the refund, marks it and alerts")
        svc.start()
        done = wait_state(svc, outpoint, lambda s: s.status is Status.CLOSED, what="marked")
        assert done.refunded
        assert not done.settlement_tx, "nothing may be signed for a funding output that is already spent"
        wait_for(lambda: "presumably the client's refund" in svc.server.tail(200), timeout=30,
                 description="refund alert")
        assert "ALERT" in svc.server.tail(200)
    finally:
        svc.stop()


# ---------------------------------------------------------------------------------------------- outages


def test_signing_service_down_during_close(regtest_node: RegtestNode, node_services: Services) -> None:
    node = regtest_node
    dest = node_services.configs["signing"]["settlement"]["destination"]
    refund = node.rpc("getnewaddress", "", "legacy")
    with client(node_services) as c:
        ch = pay_n(c, fund_and_open(c, node, "v2.3", refund_address=refund), 10)
        log.info("SigningService stopped: the close answers 503 and the channel waits in closing")
        node_services.signer.stop()
        try:
            for _ in range(2):  # a retried close is answered the same way while the signer is away
                with pytest.raises(ServerRejected) as err:
                    c.close(ch, refund, fee=1_500)
                assert err.value.status == 503
            state = stored_state(node_services, ch.funding_outpoint)
            assert state is not None and state.status is Status.CLOSING and not state.settlement_tx
        finally:
            node_services.signer.start()
        log.info("SigningService back: the background settler signs, stores and publishes")
        state = wait_state(node_services, ch.funding_outpoint, lambda s: bool(s.settlement_txid), what="signed")
        wait_for(lambda: state.settlement_txid in node.rpc("getrawmempool"), timeout=30, description="published")
        again = c.close(ch, refund, fee=1_500)
    assert again.settlement_txid == state.settlement_txid
    node.mine(1)
    wait_state(node_services, ch.funding_outpoint, lambda s: s.status is Status.CLOSED, what="closed")
    paid = outputs_by_address(decoded(node, state.settlement_txid))
    assert paid[refund] == ch.change_value - 1_500
    assert paid[dest] == ch.funding_value - ch.change_value  # the closing payment (1,500) paid the fee


def test_node_outage_and_mempool_loss(regtest_node_fresh: RegtestNode, tmp_path: Path) -> None:
    node = regtest_node_fresh
    svc = regtest_services(tmp_path / "svc", node)
    try:
        svc.start()
        with client(svc) as c:
            a = pay_n(c, fund_and_open(c, node, "v2"), 3)
            b = pay_n(c, fund_and_open(c, node, "v1"), 3)
            key = PrivateKey(secrets.token_bytes(32))
            exp = int(time.time()) + 4 * HOUR
            info = c.funding_info(key.public_key, exp, "v2.3")
            rpc = wallet_rpc(node)
            outpoint, value = rpc.find_output(rpc.send_to_address(info.funding_address, 400_000),
                                              info.params.funding_address.script_pubkey)
            rpc.close()
            node.mine(2)
            log.info("channel A closes; its settlement waits in the mempool")
            closing_a = c.close(a, node.rpc("getnewaddress"))
            txid_a = closing_a.settlement_txid
            assert txid_a is not None and txid_a in node.rpc("getrawmempool")

            log.info("the node stops: open answers 503 without internal detail, payments keep working")
            node.stop()
            with pytest.raises(ServerRejected) as err:
                c.open_channel(key, exp, outpoint, value, "v2.3", info=info)
            assert err.value.status == 503
            assert err.value.server_message == "service temporarily unavailable; retry later"
            assert "bitcoin node unreachable" in svc.server.tail(50)  # the detail is for the operator's log only
            b = pay_n(c, b, 5)
            with pytest.raises(ServerRejected) as err:
                c.close(b)
            assert err.value.status == 503

            log.info("the node restarts with an empty mempool: A is rebroadcast, B settles, the open succeeds")
            # -walletbroadcast=0: A pays the node wallet's address, and a wallet loaded at start-up resubmits its
            # unconfirmed transactions itself, racing paychan's rebroadcast that this test is about.
            restart_node(node, ["-persistmempool=0", "-walletbroadcast=0"])
            wait_for(lambda: "rebroadcasting" in svc.server.tail(300), timeout=30, description="rebroadcast")
            wait_for(lambda: txid_a in node.rpc("getrawmempool"), timeout=30, description="A back in the mempool")
            state_b = wait_state(svc, b.funding_outpoint, lambda s: bool(s.settlement_txid), what="B signed")
            wait_for(lambda: state_b.settlement_txid in node.rpc("getrawmempool"), timeout=30,
                     description="B published")
            opened = c.open_channel(key, exp, outpoint, value, "v2.3", info=info)
            assert opened.result.channel_status == "open"
        node.mine(1)
        wait_state(svc, a.funding_outpoint, lambda s: s.status is Status.CLOSED, what="A closed")
        wait_state(svc, b.funding_outpoint, lambda s: s.status is Status.CLOSED, what="B closed")
    finally:
        svc.stop()
