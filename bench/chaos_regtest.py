"""The chaos soak's regtest world (bench/chaos.py --regtest): a real bitcoind that funds the channels, mines,
is itself SIGKILLed and restarted (losing its mempool), and judges every settlement at the end."""

from __future__ import annotations

import logging
import secrets
import signal
import threading
import time
from collections import deque
from decimal import Decimal
from pathlib import Path
from typing import Any
from unittest import mock

import httpx
from tests.support import regtest as harness
from tests.support.channels import TestChannel
from tests.support.regtest import BitcoindError, RegtestNode, RpcError, find_bitcoind
from tests.support.regtest_stack import regtest_services
from tests.support.services import Services

from chaos_faults import RESTART_TIMEOUT, Target
from paychan_common.keys import PrivateKey, PublicKey
from paychan_common.network import Network
from paychan_common.state import ChannelState
from paychan_common.tx import OutPoint

log = logging.getLogger("paychan.chaos")

COIN = 100_000_000
FUNDING = 2_000_000  # satoshis per channel
BATCH = 12  # channels funded by one sendmany
EXP_SECONDS = 4 * 3600  # >= FAST_SERVER's min_duration (2 h), far from its settle-by horizon (exp - 2 h)


class RegtestWorld(Target):
    """The node (one killable target), a funder of channels and a miner; every RPC goes through `call`."""

    name = "bitcoind"

    def __init__(self, root: Path) -> None:
        self.node = RegtestNode(root / "node", find_bitcoind())
        self.lock = threading.RLock()
        self.up = False
        self.pool: deque[TestChannel] = deque()
        self.server_pk: PublicKey | None = None
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self.funded = 0

    def start(self) -> None:
        """Start the node with a funded wallet."""
        self.node.start()
        self.node.create_wallet("w")
        self.node.mine(101)
        self.up = True

    def services(self, root: Path, server: dict[str, Any]) -> Services:
        """The three services on this node (not started)."""
        return regtest_services(root, self.node, server=server)

    def call(self, method: str, *params: Any, wallet: str | None = None) -> Any:
        """One RPC; raises ConnectionError while the node is down or restarting."""
        with self.lock:
            if not self.up:
                raise ConnectionError("bitcoind is down")
            try:
                return self.node.rpc(method, *params, wallet=wallet)
            except (httpx.HTTPError, BitcoindError) as exc:
                raise ConnectionError(f"bitcoind RPC failed: {exc!r}") from None

    # ------------------------------------------------------------------ the target
    def kill(self) -> None:
        """SIGKILL bitcoind (no clean shutdown: the mempool is lost)."""
        with self.lock:
            self.up = False
            proc = self.node.process
            assert proc is not None
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            self.node._cleanup()

    def restore(self) -> None:
        """Start it again on the same ports (the services find it) and load the wallet."""
        ports = [self.node.rpc_port, self.node.p2p_port]
        with self.lock:
            with mock.patch.object(harness, "_reserve_ports", lambda count: ports):
                self.node.start(timeout=RESTART_TIMEOUT)
            try:
                self.node.rpc("loadwallet", "w")
            except RpcError as exc:
                if "already loaded" not in exc.message:
                    raise
            self.up = True

    # ------------------------------------------------------------------ channels and blocks
    def new_channel(self) -> TestChannel | None:
        """A funded, confirmed channel for a client, or None if the funder has none ready."""
        with self.lock:
            return self.pool.popleft() if self.pool else None

    def run_background(self, server_pk: PublicKey, keep_ready: int) -> None:
        """Start the funder (keeps `keep_ready` channels funded) and the miner (a block about every second)."""
        self.server_pk = server_pk
        for target, name in ((lambda: self._funder(keep_ready), "chaos-funder"), (self._miner, "chaos-miner")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self.threads.append(thread)

    def stop_background(self) -> None:
        """Stop the funder and the miner."""
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=60)

    def _funder(self, keep_ready: int) -> None:
        while not self.stop.is_set():
            if len(self.pool) >= keep_ready:
                self.stop.wait(0.2)
                continue
            try:
                self._fund_batch()
            except (ConnectionError, RpcError) as exc:
                log.info("funding postponed: %s", exc)
                self.stop.wait(0.5)

    def _fund_batch(self) -> None:
        assert self.server_pk is not None
        exp = int(time.time()) + EXP_SECONDS
        channels = [TestChannel(exp_time=exp, key=PrivateKey(secrets.token_bytes(32)), network=Network.REGTEST,
                                server_pk=self.server_pk, outpoint=OutPoint(bytes(32), 0), funding_value=FUNDING)
                    for _ in range(BATCH)]
        amounts = {ch.params.funding_address.text: str(Decimal(FUNDING) / COIN) for ch in channels}
        with self.lock:  # one piece: a kill waits until the funding is mined
            txid = self.call("sendmany", "", amounts, wallet="w")
            self.call("generatetoaddress", 2, self.call("getnewaddress", wallet="w"))
            tx = self.call("getrawtransaction", txid, True)
        vouts = {out["scriptPubKey"].get("address"): out["n"] for out in tx["vout"]}
        for ch in channels:
            ch.outpoint = OutPoint.from_display(txid, vouts[ch.params.funding_address.text])
            self.pool.append(ch)
        self.funded += len(channels)

    def _miner(self) -> None:
        while not self.stop.wait(1.0):
            try:
                self.call("generatetoaddress", 1, self.call("getnewaddress", wallet="w"))
            except (ConnectionError, RpcError):
                continue

    # ------------------------------------------------------------------ the judge
    def judge(self, states: dict[bytes, ChannelState]) -> tuple[int, list[str]]:
        """Every stored settlement accepted by the node: mined in its chain spending the channel's funding output,
        or else allowed by testmempoolaccept (or in its mempool); (settlements checked, violations)."""
        bad: list[str] = []
        checked = 0
        for state in states.values():
            if not state.settlement_tx:
                continue
            checked += 1
            tx = self.call("getrawtransaction", state.settlement_txid, True) if self._known(state) else None
            if tx is None or tx.get("confirmations", 0) < 1:  # not (yet) mined: the node must accept it now
                [verdict] = self.call("testmempoolaccept", [state.settlement_tx.hex()])
                if not (verdict["allowed"] or verdict.get("reject-reason") == "txn-already-in-mempool"):
                    bad.append(f"node: settlement {state.settlement_txid} of {state.outpoint} refused: {verdict}")
                continue
            spent = [(vin["txid"], vin["vout"]) for vin in tx["vin"]]
            if spent != [(state.outpoint.display_txid, state.outpoint.vout)]:
                bad.append(f"node: settlement {state.settlement_txid} spends {spent}, not {state.outpoint}")
        return checked, bad

    def _known(self, state: ChannelState) -> bool:
        try:
            self.call("getrawtransaction", state.settlement_txid, False)
        except RpcError:
            return False
        return True

    def close(self) -> None:
        """Stop the background threads and the node."""
        self.stop_background()
        with self.lock:
            self.up = False
            self.node.stop()
