"""Start the three services on a temporary copy of the debug config, run bench_payments, stop them.

Usage (through bench/run_bench.sh): run_bench.py [--workers N] [--no-sync] [--runs K] [--unix]
    [--engine postgres [--stores N]]
    [--set FILE.SECTION.KEY=VALUE ...] [--keep] [--json] [-- BENCH_PAYMENTS_ARGS...]

Every run gets fresh services: free loopback ports, a new LevelDB in a temporary directory, the debug
config otherwise unchanged (`--no-sync` sets storage.sync = false: UNSAFE, only to show what durability
costs). With `--runs K` the figures of the run with the median throughput are reported.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import tomli_w
from ephemeral_port_reserve import reserve

from bench_payments import floor_text  # the script's folder comes first on sys.path
from paychan_runtime.processes import terminate

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEBUG = ROOT / "config" / "debug"


def reserve_port() -> int:
    """A loopback port left in TIME_WAIT, so no other bind(0) takes it before our server binds it (see
    tests/support/ports.py)."""
    return int(reserve("127.0.0.1"))


def _parse_set(text: str) -> tuple[str, str, str, Any]:
    path, _, raw = text.partition("=")
    parts = path.split(".")
    if len(parts) != 3 or parts[0] not in ("store", "server", "signing") or not raw:
        raise SystemExit(f"--set wants FILE.SECTION.KEY=VALUE with FILE one of store, server, signing: {text!r}")
    try:
        value: Any = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return parts[0], parts[1], parts[2], value


def copy_store(source: Path, target: Path) -> None:
    """A working copy of a LevelDB directory: table files (*.ldb, *.sst) hard-linked (LevelDB never changes
    one once written, it only deletes obsolete ones), the rest (log, manifest, CURRENT) copied."""
    target.mkdir(mode=0o700)
    for item in source.iterdir():
        if item.suffix in (".ldb", ".sst"):
            os.link(item, target / item.name)
        elif item.is_file():
            shutil.copy2(item, target / item.name)


def rss_kib(pid: int) -> dict[str, int]:
    """VmRSS, RssAnon, RssFile (KiB) of a process."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
            found[name] = int(value.split()[0])
    return found


class Stack:
    """ChanStore + SigningService + PayChanServer on a temporary copy of the debug config."""

    def __init__(self, root: Path, *, workers: int, sync: bool, unix: bool, sets: Sequence[str],
                 store_db: Path | None = None, config_dir: Path = DEBUG, engine: str = "leveldb",
                 stores: int = 1, pg_base: Path | None = None) -> None:
        self.root = root
        self.port = reserve_port()
        store_port, signer_port = reserve_port(), reserve_port()
        self.pg: Any = None
        if engine == "postgres":
            sys.path.insert(0, str(ROOT))
            from tests.support.postgres import PostgresServer

            self.pg = PostgresServer(pg_base)  # None: a throw-away cluster; else one kept (pre-filled)
        self.pg_kept = pg_base is not None
        token = str(root / "internal.token")
        cfg = {name: tomllib.loads((config_dir / f"{name}.toml").read_text())
               for name in ("store", "signing", "server")}
        cfg["store"]["listen"]["port"] = store_port
        cfg["store"]["auth"]["token_file"] = token
        cfg["store"]["storage"].update(path=str(root / "chanstore"), sync=sync)
        if store_db is not None:
            copy_store(store_db, root / "chanstore")
        cfg["signing"]["listen"]["port"] = signer_port
        cfg["signing"]["auth"]["token_file"] = token
        cfg["signing"]["key"]["file"] = str(root / "server.key")
        cfg["server"]["listen"].update(port=self.port, workers=workers)
        cfg["server"]["auth"]["token_file"] = token
        cfg["server"]["chan_store"]["url"] = f"http://127.0.0.1:{store_port}"
        cfg["server"]["signing_service"]["url"] = f"http://127.0.0.1:{signer_port}"
        if "management" in cfg["server"]:  # its own port too: config/debug's fixed one may be taken
            cfg["server"]["management"].update(port=reserve_port(), token_file=str(root / "management.token"))
        self.store_health = f"http://127.0.0.1:{store_port}/health"
        if unix:
            sock = str(root / "store.sock")
            del cfg["store"]["listen"]["port"]
            cfg["store"]["listen"]["unix_path"] = sock
            cfg["server"]["chan_store"]["unix_path"] = sock
            self.store_health = ""
        for item in sets:
            name, section, key, value = _parse_set(item)
            cfg[name].setdefault(section, {})[key] = value
        self.store_names = ["store"]
        if self.pg is not None:
            if unix or store_db is not None or not sync:
                raise SystemExit("--engine postgres: not with --unix, --store-db or --no-sync")
            cfg["store"]["storage"] = {"engine": "postgres", "dsn": self.pg.dsn, "pool_size": 8}
            ports = [store_port] + [reserve_port() for _ in range(stores - 1)]
            self.store_names = [f"store{i}" if i else "store" for i in range(stores)]
            for name, port in zip(self.store_names[1:], ports[1:], strict=True):
                extra = json.loads(json.dumps(cfg["store"]))
                extra["listen"]["port"] = port
                (root / f"{name}.toml").write_text(tomli_w.dumps(extra))
            cfg["server"]["chan_store"]["failover_urls"] = [f"http://127.0.0.1:{p}" for p in ports[1:]]
            self.extra_store_health = [f"http://127.0.0.1:{p}/health" for p in ports[1:]]
        for name, data in cfg.items():
            (root / f"{name}.toml").write_text(tomli_w.dumps(data))
        self.signer_health = f"http://127.0.0.1:{signer_port}/health"
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def _start(self, name: str, module: str, *extra: str) -> None:
        log = (self.root / f"{name}.log").open("ab")
        self.procs[name] = subprocess.Popen([sys.executable, "-m", module, str(self.root / f"{name}.toml"), *extra],
                                            stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        log.close()

    def _wait(self, name: str, url: str, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.procs[name].poll() is not None:
                raise RuntimeError(f"{name} exited during start-up; see {self.root / (name + '.log')}")
            if not url:  # unix socket: wait for the socket file
                if (self.root / "store.sock").exists():
                    return
            else:
                try:
                    with urllib.request.urlopen(url, timeout=1) as resp:
                        if resp.status == 200:
                            return
                except (urllib.error.URLError, OSError):
                    pass
            time.sleep(0.05)
        raise RuntimeError(f"{name} did not come up")

    def start(self, workers: int) -> float:
        """Start all three; return ChanStore's start time (until /health answers), seconds."""
        if self.pg is not None:
            self.pg.start()
        began = time.monotonic()
        self._start("store", "chan_store")
        self._wait("store", self.store_health)
        store_start = time.monotonic() - began
        for name, url in zip(self.store_names[1:], getattr(self, "extra_store_health", []), strict=True):
            self._start(name, "chan_store")
            self._wait(name, url)
        self._start("signing", "signing_service")
        self._wait("signing", self.signer_health)
        self._start("server", "paychan_server", "--workers", str(workers))
        self._wait("server", f"http://127.0.0.1:{self.port}/health")
        for _ in range(10 * workers):  # every worker answers (SO_REUSEPORT spreads new connections)
            self._wait("server", f"http://127.0.0.1:{self.port}/health")
        return store_start

    def wait_store_check(self, timeout: float = 1800.0) -> float:
        """Wait until ChanStore logs the end of its background start-up check; seconds waited."""
        began = time.monotonic()
        log = self.root / "store.log"
        while time.monotonic() - began < timeout:
            text = log.read_text(errors="replace")
            if "start-up check passed" in text:
                return time.monotonic() - began
            if "start-up check:" in text or self.procs["store"].poll() is not None:
                raise RuntimeError(f"ChanStore's start-up check failed; see {log}")
            time.sleep(0.2)
        raise RuntimeError("ChanStore's start-up check did not finish")

    def store_rss_mib(self) -> float:
        """ChanStore's resident set size (VmRSS), MiB."""
        for line in Path(f"/proc/{self.procs['store'].pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def store_stats(self) -> dict[str, Any]:
        """ChanStore's GET /stats (channel counts, memory, group-commit counters), {} over a unix socket."""
        if not self.store_health:
            return {}
        token = (self.root / "internal.token").read_text().strip()
        req = urllib.request.Request(self.store_health.replace("/health", "/stats"),
                                     headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            stats: dict[str, Any] = json.load(resp)
        return stats

    def pids(self) -> list[int]:
        """Process ids of the services (and of the PostgreSQL postmaster, whose backends are its children)."""
        pids = [p.pid for p in self.procs.values()]
        if self.pg is not None:
            pids.append(int((self.pg.data / "postmaster.pid").read_text().split()[0]))
        return pids

    def stop(self) -> None:
        """SIGTERM all, server first (then PostgreSQL, when the bench started one)."""
        for name in ("server", "signing", *self.store_names):
            p = self.procs.get(name)
            if p is not None:
                terminate(p, grace=30)
        if self.pg is not None:
            if self.pg_kept:
                self.pg.stop()
            else:
                self.pg.remove()


def _start_profilers(stack: Stack, where: Path, index: int, native: bool) -> list[subprocess.Popen[bytes]]:
    """py-spy (not a project dependency: `pip install py-spy`) sampling each service, collapsed stacks; with
    `native`, the C frames too (system calls, uvloop, LevelDB, libsecp256k1)."""
    where.mkdir(parents=True, exist_ok=True)
    spies = []
    for name, proc in stack.procs.items():
        out = where / f"run{index}-{name}.txt"
        spies.append(subprocess.Popen(["py-spy", "record", "--pid", str(proc.pid), "--format", "raw", "--rate", "100",
                                       "--subprocesses", *(["--native"] if native else []), "--output", str(out)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    time.sleep(1.0)  # attach before the load starts
    return spies


def _busy_cores(seconds: float = 2.0) -> float:
    """How many cores were busy (on average) over the next `seconds` (/proc/stat)."""
    def busy() -> tuple[float, float]:
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        return sum(fields[:8]) - fields[3] - fields[4], sum(fields[:8])
    b0, t0 = busy()
    time.sleep(seconds)
    b1, t1 = busy()
    return (os.cpu_count() or 1) * (b1 - b0) / max(1, t1 - t0)


def wait_quiet(limit: float, max_wait: float) -> float:
    """Wait (up to max_wait s) until other processes use less than `limit` cores; return the last reading."""
    deadline = time.monotonic() + max_wait
    while True:
        used = _busy_cores()
        if used < limit or time.monotonic() > deadline:
            return used
        print(f"waiting for a quiet machine: {used:.2f} cores busy", file=sys.stderr, flush=True)


def one_run(args: argparse.Namespace, bench_args: list[str], index: int) -> dict[str, Any]:
    """Fresh services, one bench_payments run, services stopped; its JSON result."""
    busy_before = wait_quiet(args.quiet_below, args.quiet_wait) if args.quiet_wait > 0 else None
    root = Path(tempfile.mkdtemp(prefix="paychan-bench-"))
    store_db = Path(args.store_db) if args.store_db else None
    stack = Stack(root, workers=args.workers, sync=not args.no_sync, unix=args.unix, sets=args.set,
                  store_db=store_db, config_dir=Path(args.config_dir), engine=args.engine, stores=args.stores,
                  pg_base=Path(args.pg_base) if args.pg_base else None)
    try:
        store_start = stack.start(args.workers)
        rss_start = stack.store_rss_mib()
        rss_detail_start = rss_kib(stack.procs["store"].pid)
        check_s = None
        if args.wait_store_check and args.engine == "leveldb":
            check_s = stack.wait_store_check()
        rss_detail_checked = rss_kib(stack.procs["store"].pid)
        if "--ref-workers" not in bench_args:  # the bare aiohttp reference runs as many processes as the server
            bench_args = [*bench_args, "--ref-workers", str(args.workers)]
        if store_db is not None and not args.fresh_channels and "--existing" not in bench_args:
            bench_args = [*bench_args, "--existing", str(store_db) + ".json"]
        spies = _start_profilers(stack, Path(args.profile), index, args.profile_native) if args.profile else []
        cmd = [sys.executable, str(HERE / "bench_payments.py"), "--endpoint", f"127.0.0.1:{stack.port}", "--json",
               "--watch-pids", ",".join(map(str, stack.pids())), *bench_args]
        label = f"workers={args.workers} sync={not args.no_sync}" + (" unix" if args.unix else "")
        label += f" engine={args.engine} stores={args.stores}" if args.engine != "leveldb" else ""
        cmd += ["--label", label]
        done = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=False)
        for spy in spies:
            spy.send_signal(signal.SIGINT)
            spy.wait(timeout=60)
        try:
            result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        except (IndexError, json.JSONDecodeError):
            raise SystemExit(f"run {index}: bench_payments failed (status {done.returncode}); logs in {root}") from None
        result["store_stats"] = stack.store_stats()
        result["busy_cores_before"] = None if busy_before is None else round(busy_before, 2)
        result["store"] = {"start_s": round(store_start, 3), "rss_mib_after_start": round(rss_start, 1),
                           "rss_mib_after_run": round(stack.store_rss_mib(), 1),
                           "rss_kib_after_start": rss_detail_start, "check_waited_s": check_s,
                           "rss_kib_after_check": rss_detail_checked,
                           "rss_kib_after_run": rss_kib(stack.procs["store"].pid),
                           "preloaded_db": None if store_db is None else str(store_db)}
        result["config"].update(workers=args.workers, sync=not args.no_sync, unix=args.unix, sets=args.set,
                                engine=args.engine, stores=args.stores)
        return result
    finally:
        stack.stop()
        if args.keep:
            print(f"run {index}: kept {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)


def _batching(stats: dict[str, Any], payments: int) -> str:
    st = stats.get("storage")
    if not st or not st.get("writes"):
        return ""
    return (f" | store: {st['writes']} batches (~{payments / st['writes']:.1f} payments each), "
            f"{st['commits']} synced writes, mean fsync {1000 * st['total_sync_seconds'] / st['commits']:.2f} ms")


def main() -> int:
    """Run K times, report each and the median."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--workers", type=int, default=1, help="PayChanServer worker processes")
    ap.add_argument("--no-sync", action="store_true", help="storage.sync = false (UNSAFE; shows the fsync cost)")
    ap.add_argument("--runs", type=int, default=1, help="runs; the median run (by throughput) is reported")
    ap.add_argument("--unix", action="store_true", help="PayChanServer -> ChanStore over a unix socket")
    ap.add_argument("--engine", choices=("leveldb", "postgres"), default="leveldb",
                    help="ChanStore engine; postgres starts a real PostgreSQL server (fsync, synchronous_commit on)")
    ap.add_argument("--stores", type=int, default=1, help="with --engine postgres: ChanStore instances")
    ap.add_argument("--set", action="append", default=[], metavar="FILE.SECTION.KEY=VALUE",
                    help="override a config value, e.g. store.storage.max_batch=1000")
    ap.add_argument("--profile", metavar="DIR", help="sample every service with py-spy into DIR (collapsed stacks)")
    ap.add_argument("--profile-native", action="store_true", help="with --profile: C frames too (py-spy --native)")
    ap.add_argument("--config-dir", default=str(DEBUG), help="debug config to copy (default config/debug)")
    ap.add_argument("--store-db", metavar="DIR", help="start ChanStore on a copy of this LevelDB (gen_channels.py)")
    ap.add_argument("--wait-store-check", action="store_true",
                    help="start the payments only once ChanStore's background start-up check has passed")
    ap.add_argument("--pg-base", metavar="DIR",
                    help="with --engine postgres: start (and afterwards stop, not delete) this pre-filled cluster "
                         "(tests/support/postgres.py layout: DIR/data, DIR/sock); pay with --existing DB.json")
    ap.add_argument("--fresh-channels", action="store_true",
                    help="with --store-db: open fresh channels instead of paying on the pre-generated ones")
    ap.add_argument("--quiet-wait", type=float, default=300.0,
                    help="before each run, wait up to this many seconds for other processes to go quiet")
    ap.add_argument("--quiet-below", type=float, default=0.2, help="'quiet': fewer busy cores than this")
    ap.add_argument("--max-foreign-cores", type=float, default=0.15,
                    help="discard (and repeat) a run during which other processes used more cores than this")
    ap.add_argument("--max-steal-cores", type=float, default=0.1,
                    help="discard (and repeat) a run during which the host stole more cores than this")
    ap.add_argument("--retries", type=int, default=6, help="most runs discarded before accepting a disturbed one")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directories (configs, logs)")
    ap.add_argument("--json", action="store_true", help="print the median run (with all runs) as JSON")
    args, bench_args = ap.parse_known_args()
    if bench_args and bench_args[0] == "--":
        bench_args = bench_args[1:]
    runs: list[dict[str, Any]] = []
    discarded = 0
    i = 0
    while len(runs) < args.runs:
        i += 1
        r = one_run(args, bench_args, i)
        foreign = r.get("foreign_cpu_s", 0.0) / max(r["elapsed_s"], 1e-9)
        stolen = r.get("steal_cpu_s", 0.0) / max(r["elapsed_s"], 1e-9)
        if (foreign > args.max_foreign_cores or stolen > args.max_steal_cores) and discarded < args.retries:
            discarded += 1
            print(f"run {i}: discarded, other processes used {foreign:.2f} cores and the host stole {stolen:.2f} "
                  f"meanwhile ({r['payments_per_second']:,.0f} payments/s, p99 {r['p99_ms']:.2f} ms)", file=sys.stderr)
            continue
        runs.append(r)
        ref = r.get("reference", {})
        print(f"run {i}: {r['payments_per_second']:,.0f} payments/s (steady {r['steady_payments_per_second']:,.0f})  "
              f"p50 {r['p50_ms']:.2f}  p99 {r['p99_ms']:.2f}  "
              f"max {r['max_ms']:.2f} ms  errors {r['errors']}"
              + (f"  | secp {ref['secp256k1_verify_per_second_one_core']:,.0f}/s"
                 f"  bare aiohttp {ref['bare_aiohttp_requests_per_second']:,.0f}/s"
                 + _readings(ref) if ref else "")
              + (f"  | floor {floor_text(r['floor'])}" if r.get("floor") else "")
              + ("  | CPU us/payment " + ", ".join(f"{k} {v:.0f}" for k, v in r.get("cpu_us_per_payment", {}).items()))
              + f", generator {1e6 * r['generator_cpu_s'] / r['payments']:.0f}; foreign CPU {r.get('foreign_cpu_s')} s"
              + f", stolen {r.get('steal_cpu_s')} s"
              + f"; wake-up {r.get('wake_up_us')} us"
              + _batching(r.get("store_stats", {}), r["payments"])
              + (f" | ChanStore start {r['store']['start_s']:.2f} s, RSS {r['store']['rss_mib_after_start']:.0f} -> "
                 f"{r['store']['rss_mib_after_run']:.0f} MiB")
              + (f", check {r['store']['check_waited_s']:.1f} s more" if r["store"]["check_waited_s"] else "")
              + " | RSS after run "
              + ", ".join(f"{k} {v / 1024:.0f}" for k, v in r["store"]["rss_kib_after_run"].items()) + " MiB",
              file=sys.stderr, flush=True)
    ordered = sorted(runs, key=lambda r: r["payments_per_second"])
    median = dict(ordered[(len(ordered) - 1) // 2]) if len(ordered) % 2 else dict(ordered[len(ordered) // 2 - 1])
    median["runs"] = [{k: r.get(k) for k in ("payments_per_second", "steady_payments_per_second", "p50_ms", "p90_ms",
                                             "p99_ms", "max_ms", "errors", "foreign_cpu_s", "steal_cpu_s",
                                             "wake_up_us")}
                      for r in runs]
    median["median_payments_per_second"] = statistics.median(r["payments_per_second"] for r in runs)
    median["discarded_runs"] = discarded
    median["total_errors"] = sum(r["errors"] + r["open_errors"] + r["close_errors"] for r in runs)
    if args.json:
        print(json.dumps(median))
    else:
        c = median["config"]
        print(f"median of {len(runs)} run(s): {median['median_payments_per_second']:,.0f} payments/s  "
              f"(median run: p50 {median['p50_ms']:.2f}  p90 {median['p90_ms']:.2f}  p99 {median['p99_ms']:.2f}  "
              f"max {median['max_ms']:.2f} ms)  errors in all runs: {median['total_errors']}  "
              f"[{c['family']} {c['clients']}x{c['payments']} rate={c['rate']} workers={c['workers']} "
              f"sync={c['sync']}]")
        ref = median.get("reference")
        if ref:
            print(f"  secp256k1 verify (one core) {ref['secp256k1_verify_per_second_one_core']:,.0f}/s -> "
                  f"ratio {ref['fraction_of_secp256k1']:.3f};  bare aiohttp "
                  f"{ref['bare_aiohttp_requests_per_second']:,.0f} req/s{_readings(ref)} -> "
                  f"ratio {ref['fraction_of_bare_aiohttp']:.3f}")
        if median.get("floor"):
            print(f"  floor (bench/ceiling.py durable) {floor_text(median['floor'])}")
    return 0 if median["total_errors"] == 0 else 1


def _readings(ref: dict[str, Any]) -> str:
    """' (higher of B before / A after)' for the bare reference's two readings, when the run has them."""
    readings = ref.get("bare_aiohttp_readings")
    return f" (higher of {readings[0]:,.0f} before / {readings[1]:,.0f} after)" if readings else ""


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
