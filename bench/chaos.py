"""Chaos soak (issue 15): a mixed workload against the real stack while a fault injector SIGKILLs processes.

The stack is the three real services (debug config; PayChanServer with 2 SO_REUSEPORT workers under its
supervisor, which restarts a dead worker). Client threads open channels on all three route families (v1,
v2-seed, v2.3.0), pay on them and close them. Meanwhile the injector SIGKILLs, at random moments, ChanStore,
one PayChanServer worker or the SigningService, and restarts it (the supervisor restarts workers), until every
target has been killed `--kills` times or `--seconds` have passed. Then, with every process up again, it waits
for the closings to finish, stops the stack and checks the invariants:

- every acknowledged payment is stored: per channel, stored change <= the lowest acknowledged change (so
  value received >= the sum acknowledged), and >= the lowest change the client ever signed;
- every channel whose open was acknowledged exists; every acknowledged close is closed with a settlement
  that spends the channel's funding outpoint, and its txid is the one every close answer reported;
- no channel settles twice: the SigningService's audit log shows one settlement txid per channel;
- the store's indexes agree with its states (`chan_store.verify`);
- no request got a 500 or an unexpected status.

`python bench/chaos.py --kills 300 --seconds 3600 --out bench/results/chaos/long.json` is the long run
(figures in bench/RESULTS.md); `tests/functional/test_chaos.py` runs a CI-sized one (>= 30 kills).
Later engines and services plug in as targets (`Target`): a PostgreSQL engine as one more killable process
whose store is checked by its own verify, the gateway as one more client family; neither exists yet.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import re
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT, ROOT / "bench"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import httpx  # noqa: E402
from tests.support.channels import TestChannel  # noqa: E402
from tests.support.services import Services  # noqa: E402

from chan_store.leveldb_storage import LevelDBStorage  # noqa: E402
from chan_store.verify import verify_storage  # noqa: E402
from chaos_faults import Injector, ServiceTarget, Target, WorkerTarget, wait_until  # noqa: E402
from chaos_regtest import RegtestWorld  # noqa: E402
from chaos_workload import Chan, Client, Tally  # noqa: E402
from paychan_common.keys import PublicKey  # noqa: E402
from paychan_common.state import ChannelState, Status  # noqa: E402
from paychan_common.tx import Transaction  # noqa: E402

log = logging.getLogger("paychan.chaos")

AUDIT_LINE = re.compile(r"signed settlement txid=([0-9a-f]{64}) outpoint=([0-9a-f]{64}:\d+)")
WEEK = 7 * 24 * 3600


# ----------------------------------------------------------------------------------------------- the checks
@dataclass
class Report:
    """The run's figures and the invariant violations found (`ok` when none)."""

    seed: int
    regtest: bool = False
    seconds: float = 0.0
    kills: dict[str, int] = field(default_factory=dict)
    restart_seconds: dict[str, dict[str, float]] = field(default_factory=dict)
    channels: int = 0
    opened: int = 0
    payments_acknowledged: int = 0
    payments_lost: int = 0
    closes_acknowledged: int = 0
    settlements_checked: int = 0
    node_checked: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    store_counts: dict[str, int] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every invariant held."""
        return not self.violations

    @property
    def total_kills(self) -> int:
        """Kills of every target."""
        return sum(self.kills.values())


def _signed_txids(signer_log: Path) -> dict[str, set[str]]:
    """outpoint -> settlement txids the SigningService's audit log says it signed."""
    signed: dict[str, set[str]] = {}
    for match in AUDIT_LINE.finditer(signer_log.read_text(errors="replace")):
        signed.setdefault(match.group(2), set()).add(match.group(1))
    return signed


def check_channels(channels: list[Chan], states: dict[bytes, ChannelState], signed: dict[str, set[str]],
                   report: Report, *, strict_audit: bool = True) -> None:
    """The per-channel invariants (module docstring) against the stored states."""
    bad = report.violations.append
    for chan in channels:
        op = chan.ch.op
        state = states.get(op.serialize())
        report.payments_acknowledged += max(len(chan.acked) - 1 - bool(chan.close_txids), 0)
        if state is None:
            if chan.opened:
                bad(f"{chan.family} channel {op}: open acknowledged, not stored")
                report.payments_lost += len(chan.acked)
            continue
        if state.change_value < chan.lowest_sent:
            bad(f"{chan.family} channel {op}: stored change {state.change_value} below any the client signed "
                f"({chan.lowest_sent})")
        lost = [c for c in chan.acked if c < state.change_value]
        if lost:
            report.payments_lost += len(lost)
            bad(f"{chan.family} channel {op}: {len(lost)} acknowledged payments not stored (stored change "
                f"{state.change_value}, lowest acknowledged {chan.lowest_acked})")
        if chan.close_txids:
            report.closes_acknowledged += 1
            if state.status is not Status.CLOSED:
                bad(f"{chan.family} channel {op}: close acknowledged, stored status {state.status.label}")
            if chan.close_txids != {state.settlement_txid}:
                bad(f"{chan.family} channel {op}: closes reported {sorted(chan.close_txids)}, stored "
                    f"{state.settlement_txid}")
        if state.status is Status.CLOSING:
            bad(f"{chan.family} channel {op}: still closing after the run")
        if state.settlement_tx:
            report.settlements_checked += 1
            tx = Transaction.parse(state.settlement_tx)
            if tx.txid != state.settlement_txid or [i.prevout for i in tx.inputs] != [op]:
                bad(f"{chan.family} channel {op}: stored settlement {tx.txid} does not spend the funding alone")
        txids = signed.get(f"{op.display_txid}:{op.vout}", set())
        if strict_audit and len(txids) > 1:  # fixed fee (debug): a re-sign is identical (RFC 6979)
            bad(f"{chan.family} channel {op}: {len(txids)} different settlements signed: {sorted(txids)}")
        if state.settlement_txid and txids and state.settlement_txid not in txids:
            bad(f"{chan.family} channel {op}: signed {sorted(txids)}, stored {state.settlement_txid}")


def _closing_left(svc: Services) -> int:
    r = httpx.get(f"http://127.0.0.1:{svc.store_port}/channels", params={"status": "closing", "limit": 1000},
                  headers={"Authorization": "Bearer " + svc.token}, timeout=10)
    r.raise_for_status()
    return len(r.json()["states"])


def _stored_states(root: Path, report: Report) -> dict[bytes, ChannelState]:
    """Every state of the stopped ChanStore, its indexes checked (problems into the report)."""
    storage = LevelDBStorage(root / "chanstore")
    try:
        verified = verify_storage(storage)
    finally:
        asyncio.run(storage.close())
    report.violations.extend(f"store: {p}" for p in verified.problems)
    report.store_counts = verified.counts
    return verified.states


def run_chaos(root: Path, *, kills_each: int, seconds: float, seed: int, clients: int = 3, workers: int = 2,
              regtest: bool = False) -> Report:
    """Start the stack in `root`, run the workload and the injector, check the invariants (module docstring)."""
    rng = random.Random(seed)
    report = Report(seed=seed, regtest=regtest)
    world = RegtestWorld(root) if regtest else None
    server = {"listen": {"workers": workers}, "log_level": "WARNING"}
    svc: Services | None = None
    channels: list[Chan] = []
    tally = Tally()
    stop = threading.Event()
    threads: list[threading.Thread] = []
    started = time.monotonic()
    try:
        if world is not None:
            world.start()
            svc = world.services(root, server)
        else:
            svc = Services(root, server=server)
        svc.start()
        probe = TestChannel(exp_time=int(time.time()) + WEEK)
        info = httpx.get(f"{svc.url}/v1/fundingInfo", params={"client_pubkey": probe.pk, "exp_time": probe.exp_time},
                         timeout=10).json()
        v1_price = int(info["open_price"])
        workers_target = WorkerTarget(svc.server, svc.port, workers, random.Random(rng.random()))
        targets: list[Target] = [
            ServiceTarget("chan_store", svc.store, f"http://127.0.0.1:{svc.store_port}/health"),
            ServiceTarget("signing_service", svc.signer, f"http://127.0.0.1:{svc.signer_port}/health"),
            workers_target,
        ]
        wait_until(workers_target.ready, "PayChanServer workers")

        def debug_channel() -> TestChannel:
            return TestChannel(exp_time=int(time.time()) + WEEK)

        new_channel = debug_channel
        if world is not None:
            targets.append(world)
            world.run_background(PublicKey.from_hex(info["server_pubkey"]), keep_ready=2 * clients)
            new_channel = world.new_channel  # type: ignore[assignment]
        for i in range(clients):
            client = Client(svc.url, random.Random(rng.random()), tally, stop, channels, v1_price, new_channel)
            threads.append(threading.Thread(target=client.run, name=f"chaos-client-{i}", daemon=True))
            threads[-1].start()
        injector = Injector(targets, random.Random(rng.random()), kills_each, time.monotonic() + seconds)
        injector.run()
        report.kills = dict(injector.kills)
        report.restart_seconds = {name: {"median": round(statistics.median(times), 2), "max": round(max(times), 2)}
                                  for name, times in sorted(injector.restarts.items())}
        report.violations.extend(f"injector: {e}" for e in injector.errors)
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
            if thread.is_alive():
                report.violations.append(f"{thread.name} did not stop")
        wait_until(lambda: _closing_left(svc) == 0, "closings to finish", timeout=120)
        svc.stop()
        states = _stored_states(root, report)
        check_channels(channels, states, _signed_txids(svc.signer.logfile), report, strict_audit=world is None)
        if world is not None:
            world.stop_background()
            report.node_checked, problems = world.judge(states)
            report.violations.extend(problems)
        report.channels = len(channels)
        report.opened = sum(c.opened for c in channels)
        report.outcomes = dict(sorted(tally.outcomes.items()))
        report.violations.extend(f"client: {u}" for u in tally.unexpected)
        if any(k.endswith(":500") for k in tally.outcomes):
            report.violations.append("some requests got 500")
    except BaseException:
        if svc is not None:
            log.error("service logs:\n%s", svc.logs())
        raise
    finally:
        stop.set()
        if svc is not None:
            svc.stop()
        if world is not None:
            world.close()
        report.seconds = round(time.monotonic() - started, 1)
    return report


def main(argv: list[str] | None = None) -> int:
    """Command line: run the soak, print the report as JSON, exit 1 if an invariant failed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=300, help="kills of each target (default 300)")
    parser.add_argument("--seconds", type=float, default=3600.0, help="time bound of the fault phase")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--clients", type=int, default=3)
    parser.add_argument("--regtest", action="store_true", help="a real regtest bitcoind, killed too")
    parser.add_argument("--root", type=Path, default=None, help="working folder (default: a fresh temporary one)")
    parser.add_argument("--out", type=Path, default=None, help="write the report (JSON) here too")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    seed = args.seed if args.seed is not None else random.randrange(1 << 32)
    root = args.root if args.root is not None else Path(tempfile.mkdtemp(prefix="paychan-chaos-"))
    log.info("chaos soak in %s, seed %d, %d kills of each target within %.0f s%s", root, seed, args.kills,
             args.seconds, " (regtest)" if args.regtest else "")
    report = run_chaos(root, kills_each=args.kills, seconds=args.seconds, seed=seed, clients=args.clients,
                       regtest=args.regtest)
    text = json.dumps(asdict(report) | {"total_kills": report.total_kills, "ok": report.ok}, indent=2)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
