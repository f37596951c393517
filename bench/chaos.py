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
import os
import random
import re
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from tests.functional.channel_helper import CLIENT_REFUND, TestChannel  # noqa: E402
from tests.functional.services import Service, Services  # noqa: E402

from chan_store.leveldb_storage import LevelDBStorage  # noqa: E402
from chan_store.verify import verify_storage  # noqa: E402
from paychan_common.state import ChannelState, Status  # noqa: E402
from paychan_common.tx import Transaction  # noqa: E402

log = logging.getLogger("paychan.chaos")

FAMILIES = ("v1", "v2", "v2.3")
OPEN_PRICE = 100_000
V23_CLOSE_FEE = 20_000
UNKNOWN_STATUSES = frozenset({502, 503, 504})  # the outcome of the request is not known: not acknowledged
AUDIT_LINE = re.compile(r"signed settlement txid=([0-9a-f]{64}) outpoint=([0-9a-f]{64}:\d+)")


# ----------------------------------------------------------------------------------------------- the workload
@dataclass
class Chan:
    """One client channel and what the client was told about it."""

    family: str
    ch: TestChannel
    url: str = ""  # the channel's URL (v1: from Location)
    secret: str = ""  # v2.3.0
    opened: bool = False  # the open was acknowledged (201, or 409 naming this very channel)
    acked: list[int] = field(default_factory=list)  # acknowledged change values (the open's included)
    lowest_sent: int = 0  # lowest change value the client ever signed and sent
    close_txids: set[str] = field(default_factory=set)  # settlement txids reported by acknowledged closes

    @property
    def lowest_acked(self) -> int | None:
        """The lowest acknowledged change value."""
        return min(self.acked) if self.acked else None


@dataclass
class Tally:
    """Counts of request outcomes, shared by the client threads."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    outcomes: Counter[str] = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)

    def count(self, what: str) -> None:
        """Count one outcome."""
        with self.lock:
            self.outcomes[what] += 1

    def bad(self, text: str) -> None:
        """Record an unexpected answer (a failed run)."""
        with self.lock:
            self.unexpected.append(text[:300])


class Client:
    """One client thread: open a channel on a random family, pay a few times, close it (usually); repeat."""

    def __init__(self, base: str, rng: random.Random, tally: Tally, stop: threading.Event,
                 channels: list[Chan], v1_price: int) -> None:
        self.base = base
        self.rng = rng
        self.tally = tally
        self.stop = stop
        self.channels = channels
        self.v1_price = v1_price
        self.http = httpx.Client(timeout=15.0)

    def run(self) -> None:
        """Channel after channel until stopped."""
        try:
            while not self.stop.is_set():
                self.one_channel()
        finally:
            self.http.close()

    def request(self, what: str, method: str, url: str, **kw: Any) -> httpx.Response | None:
        """One request; None when its outcome is unknown (unreachable, 502/503/504)."""
        try:
            r = self.http.request(method, url, **kw)
        except httpx.HTTPError:
            self.tally.count(f"{what}:unreachable")
            return None
        if r.status_code in UNKNOWN_STATUSES:
            self.tally.count(f"{what}:{r.status_code}")
            return None
        self.tally.count(f"{what}:{r.status_code}")
        return r

    def backoff(self) -> None:
        """A short pause after an unknown outcome (a process is restarting)."""
        self.stop.wait(self.rng.uniform(0.01, 0.05))

    def one_channel(self) -> None:
        """Open, pay, maybe close one channel."""
        family = self.rng.choice(FAMILIES)
        chan = Chan(family, TestChannel(exp_time=int(time.time()) + 7 * 24 * 3600))
        with self.tally.lock:
            self.channels.append(chan)
        if not self.open(chan):
            return
        for _ in range(self.rng.randint(3, 40)):
            if self.stop.is_set():
                return
            self.pay(chan, self.rng.choice((1, 1, 1, 7, 1000)))
        if self.rng.random() < 0.8:
            self.close(chan)

    def open(self, chan: Chan) -> bool:
        """Send the opening payment until its outcome is known; True once open."""
        ch = chan.ch
        price = self.v1_price if chan.family == "v1" else OPEN_PRICE
        change = ch.funding_value - price
        chan.lowest_sent = change
        if chan.family == "v2.3":
            chan.secret = ch.secret(change)
        while not self.stop.is_set():
            if chan.family == "v1":
                r = self.request("open", "POST", f"{self.base}/v1/channels/new", params={
                    "client_pubkey": ch.pk, "exp_time": ch.exp_time, "change_address": CLIENT_REFUND,
                    "payment": ch.v1_payload(change, CLIENT_REFUND)})
            elif chan.family == "v2":
                r = self.request("open", "POST", self.base + ch.seed_url, json=ch.v2_body(change))
            else:
                r = self.request("open", "POST", self.base + ch.v23_url, params={"secret": chan.secret},
                                 json=ch.v23_full(change))
            if r is None:
                self.backoff()
                continue
            if r.status_code in (201, 409):  # 409: our own open, stored by an earlier attempt
                chan.url = r.headers.get("Location", "").split("?")[0] if chan.family == "v1" else ""
                if r.status_code == 201 and r.json().get("value_received") != price:
                    self.tally.bad(f"open of {chan.family} reports {r.text}")
                if chan.family == "v1" and not chan.url:
                    self.tally.bad(f"v1 open {r.status_code} without Location: {r.text}")
                    return False
                chan.opened = True
                chan.acked.append(change)
                return True
            self.tally.bad(f"open {chan.family}: {r.status_code} {r.text}")
            return False
        return False

    def pay(self, chan: Chan, amount: int) -> bool:
        """One payment of `amount` below the lowest change sent; True if acknowledged."""
        change = chan.lowest_sent - amount
        chan.lowest_sent = change
        ch = chan.ch
        if chan.family == "v1":
            r = self.request("pay", "PUT", chan.url, params={"payment": ch.v1_payload(change, CLIENT_REFUND)})
        elif chan.family == "v2":
            r = self.request("pay", "PUT", self.base + ch.seed_url, json=ch.v2_body(change))
        else:
            r = self.request("pay", "PUT", self.base + ch.v23_url, params={"secret": chan.secret},
                             json=ch.v23_compact(change))
        if r is None:
            self.backoff()
            return False
        if r.status_code == 200:
            body = r.json()
            if body.get("channel_value_left") != change or body.get("channel_status") != "open":
                self.tally.bad(f"payment of {change} on {chan.family} reports {r.text}")
            chan.acked.append(change)
            return True
        self.tally.bad(f"pay {chan.family}: {r.status_code} {r.text}")
        return False

    def close(self, chan: Chan) -> None:
        """Make sure the latest payment is acknowledged, then close with it until a close is acknowledged."""
        for _ in range(50):
            if chan.lowest_acked == chan.lowest_sent or self.stop.is_set():
                break
            self.pay(chan, 1)  # the latest payment's outcome is unknown: one more, acknowledged, makes it known
        if chan.lowest_acked != chan.lowest_sent:
            return
        ch = chan.ch
        change = chan.lowest_sent
        if chan.family == "v2.3":
            change -= V23_CLOSE_FEE  # the closing payment's value is the settlement fee
        chan.lowest_sent = change
        for _ in range(200):
            if chan.family == "v1":
                r = self.request("close", "DELETE", chan.url, params={"payment": ch.v1_payload(change, CLIENT_REFUND)})
            elif chan.family == "v2":
                r = self.request("close", "PUT", self.base + ch.seed_url + "/close",
                                 json=ch.v2_body(change, CLIENT_REFUND))
            else:
                body = {"payment_data": ch.v23_full(change, CLIENT_REFUND)["payment_data"], "application_data": ""}
                r = self.request("close", "PUT", self.base + ch.v23_url + "/close", params={"secret": chan.secret},
                                 json=body)
            if r is None:
                if self.stop.is_set():
                    return
                self.backoff()
                continue
            if r.status_code in (200, 202) and r.json().get("channel_status") == "closed":
                chan.acked.append(change)
                chan.close_txids.add(r.json()["settlement_txid"])
                return
            if r.status_code == 410 and "closing" in r.text:
                self.stop.wait(0.2)  # an earlier attempt left it closing; the settler finishes it
                continue
            self.tally.bad(f"close {chan.family}: {r.status_code} {r.text}")
            return


# ----------------------------------------------------------------------------------------------- the faults
def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _listening_inodes(port: int) -> set[str]:
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(cols[9])
    return inodes


def _listens(pid: int, port: int) -> bool:
    inodes = _listening_inodes(port)
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False
    for fd in fds:
        try:
            link = fd.readlink().name
        except OSError:
            continue
        if link.startswith("socket:[") and link[8:-1] in inodes:
            return True
    return False


def _wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    delay = 0.01
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.1)


class Target:
    """A killable process kind: `kill()` SIGKILLs one running instance, `restore()` brings it back."""

    name = "target"

    def kill(self) -> None:
        """SIGKILL one instance."""
        raise NotImplementedError

    def restore(self) -> None:
        """Restart it and wait until it serves again."""
        raise NotImplementedError


class ServiceTarget(Target):
    """ChanStore or the SigningService: one process, restarted by the injector."""

    def __init__(self, name: str, svc: Service, health_url: str) -> None:
        self.name = name
        self.svc = svc
        self.health_url = health_url

    def kill(self) -> None:
        """SIGKILL the process and reap it."""
        self.svc.kill(signal.SIGKILL)

    def restore(self) -> None:
        """Start it again and wait for /health."""
        self.svc.start()

        def up() -> bool:
            if not self.svc.alive:
                raise RuntimeError(f"{self.name} exited during restart:\n{self.svc.tail()}")
            try:
                return httpx.get(self.health_url, timeout=1.0).status_code == 200
            except httpx.HTTPError:
                return False

        _wait(up, 60.0, f"{self.name} ready")


class WorkerTarget(Target):
    """One PayChanServer worker; the supervisor restarts it, the injector waits until it listens again."""

    name = "worker"

    def __init__(self, server: Service, port: int, workers: int, rng: random.Random) -> None:
        self.server = server
        self.port = port
        self.workers = workers
        self.rng = rng

    def worker_pids(self) -> list[int]:
        """The supervisor's worker processes (not multiprocessing's helpers)."""
        assert self.server.proc is not None
        return [p for p in _children(self.server.proc.pid)
                if "spawn_main" in _cmdline(p) and "resource_tracker" not in _cmdline(p)]

    def ready(self) -> bool:
        """True when every worker runs and listens on the port."""
        pids = self.worker_pids()
        return len(pids) == self.workers and all(_listens(p, self.port) for p in pids)

    def kill(self) -> None:
        """SIGKILL one worker chosen at random."""
        _wait(self.ready, 60.0, "workers ready")
        victim = self.rng.choice(self.worker_pids())
        os.kill(victim, signal.SIGKILL)
        self.victim = victim

    def restore(self) -> None:
        """Wait until the supervisor has restarted it and it listens."""
        _wait(lambda: self.victim not in self.worker_pids() and self.ready(), 60.0, "worker restarted")


@dataclass
class Injector:
    """Kills targets at random moments; several can be down at once; each stays up a while after a restart."""

    targets: list[Target]
    rng: random.Random
    kills_each: int
    deadline: float
    gap: tuple[float, float] = (0.05, 0.4)
    min_up: tuple[float, float] = (0.3, 1.2)
    kills: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)

    def run(self) -> None:
        """Kill until every target was killed `kills_each` times or the deadline passed."""
        eligible_at = {t.name: time.monotonic() + self.rng.uniform(*self.min_up) for t in self.targets}
        busy: dict[str, threading.Thread] = {}
        while time.monotonic() < self.deadline and not self.errors:
            wanted = [t for t in self.targets if self.kills[t.name] < self.kills_each]
            if not wanted:
                break
            now = time.monotonic()
            ready = [t for t in wanted if t.name not in busy and eligible_at[t.name] <= now]
            if ready:
                target = self.rng.choice(ready)
                thread = threading.Thread(target=self._cycle, args=(target, eligible_at), daemon=True,
                                          name=f"chaos-{target.name}")
                busy[target.name] = thread
                thread.start()
            time.sleep(self.rng.uniform(*self.gap))
            for name, thread in list(busy.items()):
                if not thread.is_alive():
                    del busy[name]
        for thread in busy.values():
            thread.join(timeout=120)

    def _cycle(self, target: Target, eligible_at: dict[str, float]) -> None:
        try:
            target.kill()
            self.kills[target.name] += 1
            target.restore()
        except Exception as exc:  # noqa: BLE001 - a target that cannot restart ends the run as a failure
            self.errors.append(f"{target.name}: {exc!r}")
        eligible_at[target.name] = time.monotonic() + self.rng.uniform(*self.min_up)


# ----------------------------------------------------------------------------------------------- the checks
@dataclass
class Report:
    """The run's figures and the invariant violations found (`ok` when none)."""

    seed: int
    seconds: float = 0.0
    kills: dict[str, int] = field(default_factory=dict)
    channels: int = 0
    opened: int = 0
    payments_acknowledged: int = 0
    payments_lost: int = 0
    closes_acknowledged: int = 0
    settlements_checked: int = 0
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
                   report: Report) -> None:
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
        if len(txids) > 1:
            bad(f"{chan.family} channel {op}: {len(txids)} different settlements signed: {sorted(txids)}")
        if state.settlement_txid and txids and txids != {state.settlement_txid}:
            bad(f"{chan.family} channel {op}: signed {sorted(txids)}, stored {state.settlement_txid}")


def _closing_left(svc: Services) -> int:
    r = httpx.get(f"http://127.0.0.1:{svc.store_port}/channels", params={"status": "closing", "limit": 1000},
                  headers={"Authorization": "Bearer " + svc.token}, timeout=10)
    r.raise_for_status()
    return len(r.json()["states"])


def run_chaos(root: Path, *, kills_each: int, seconds: float, seed: int, clients: int = 3,
              workers: int = 2) -> Report:
    """Start the stack in `root`, run the workload and the injector, check the invariants (module docstring)."""
    rng = random.Random(seed)
    report = Report(seed=seed)
    svc = Services(root, server={"listen": {"workers": workers}, "log_level": "WARNING"})
    channels: list[Chan] = []
    tally = Tally()
    stop = threading.Event()
    threads: list[threading.Thread] = []
    started = time.monotonic()
    try:
        svc.start()
        probe = TestChannel(exp_time=int(time.time()) + 7 * 24 * 3600)
        v1_price = int(httpx.get(f"{svc.url}/v1/fundingInfo", params={"client_pubkey": probe.pk,
                                 "exp_time": probe.exp_time}, timeout=10).json()["open_price"])
        targets: list[Target] = [
            ServiceTarget("chan_store", svc.store, f"http://127.0.0.1:{svc.store_port}/health"),
            ServiceTarget("signing_service", svc.signer, f"http://127.0.0.1:{svc.signer_port}/health"),
            WorkerTarget(svc.server, svc.port, workers, random.Random(rng.random())),
        ]
        _wait(targets[2].ready, 60.0, "PayChanServer workers")  # type: ignore[attr-defined]
        for i in range(clients):
            client = Client(svc.url, random.Random(rng.random()), tally, stop, channels, v1_price)
            threads.append(threading.Thread(target=client.run, name=f"chaos-client-{i}", daemon=True))
            threads[-1].start()
        injector = Injector(targets, random.Random(rng.random()), kills_each, time.monotonic() + seconds)
        injector.run()
        report.kills = dict(injector.kills)
        report.violations.extend(f"injector: {e}" for e in injector.errors)
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
            if thread.is_alive():
                report.violations.append(f"{thread.name} did not stop")
        _wait(lambda: _closing_left(svc) == 0, 60.0, "closings to finish")
        svc.stop()
        signed = _signed_txids(svc.signer.logfile)
        storage = LevelDBStorage(root / "chanstore")
        try:
            verified = verify_storage(storage)
        finally:
            asyncio.run(storage.close())
        report.violations.extend(f"store: {p}" for p in verified.problems)
        report.store_counts = verified.counts
        check_channels(channels, verified.states, signed, report)
        report.channels = len(channels)
        report.opened = sum(c.opened for c in channels)
        report.outcomes = dict(sorted(tally.outcomes.items()))
        report.violations.extend(f"client: {u}" for u in tally.unexpected)
        if any(k.endswith(":500") for k in tally.outcomes):
            report.violations.append("some requests got 500")
    except BaseException:
        log.error("service logs:\n%s", svc.logs())
        raise
    finally:
        stop.set()
        svc.stop()
        report.seconds = round(time.monotonic() - started, 1)
    return report


def main(argv: list[str] | None = None) -> int:
    """Command line: run the soak, print the report as JSON, exit 1 if an invariant failed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=300, help="kills of each target (default 300)")
    parser.add_argument("--seconds", type=float, default=3600.0, help="time bound of the fault phase")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--clients", type=int, default=3)
    parser.add_argument("--root", type=Path, default=None, help="working folder (default: a fresh temporary one)")
    parser.add_argument("--out", type=Path, default=None, help="write the report (JSON) here too")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    seed = args.seed if args.seed is not None else random.randrange(1 << 32)
    root = args.root if args.root is not None else Path(tempfile.mkdtemp(prefix="paychan-chaos-"))
    log.info("chaos soak in %s, seed %d, %d kills of each target within %.0f s", root, seed, args.kills,
             args.seconds)
    report = run_chaos(root, kills_each=args.kills, seconds=args.seconds, seed=seed, clients=args.clients)
    text = json.dumps(asdict(report) | {"total_kills": report.total_kills, "ok": report.ok}, indent=2)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
