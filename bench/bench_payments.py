"""Payment benchmark with the original's shape (spec 11): N payments on each of T concurrent channels.

Usage:
  python bench/bench_payments.py --payments 2000 --clients 5 --endpoint localhost:8080
      [--rate R] [--json] [--plot FILE.png] [--family v2|v2.3|v1] [--connections N] [--procs P]
      [--no-reference] [--floor] [--watch-pids PID,...]

The server must run the debug config (fake funding, spec 9). The benchmark opens T channels, pre-signs
every payment, runs the timed phase (each channel's payments one after the other on a keep-alive
connection, channels concurrent; `--rate` caps the offered load with an open-loop scheduler), closes the
channels, and checks that every payment was answered 200 with value_received == 1 (its amount). It
measures two reference figures on this machine: the libsecp256k1 verification rate of one core
(coincurve), and the request rate of a bare aiohttp handler driven by the same load generator. The bare
reference is read twice, right before and right after the timed phase (a VM's speed can drift by more
than the figures' differences within a minute), and the ratio is taken against the higher reading: the
conservative choice; both readings are reported. `--floor` adds a third reference, read the same way:
`bench/ceiling.py`'s durable server (frame, verify, one synced LevelDB group write per group, nothing
else), driven by the same requests at the same offered load, with as many workers as the bare reference.
No server of this design can beat it on this machine, so `fraction_of_floor` says how much of the room a
run used, and its p50/p99 beside the run's say what the protocol's own work adds to the latency.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import itertools
import json
import math
import multiprocessing
import multiprocessing.connection
import os
import platform
import resource
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

import orjson
from ephemeral_port_reserve import reserve

from channels import FAMILIES, ChannelPlan, PlanSpec, build_channels, derived_secret
from httpload import LaneResult, connect, run_lanes

HERE = Path(__file__).resolve().parent
# A client key whose funding info names the server key (any valid key does).
INFO_KEY = "034f355bdcb7cc0af728ef3cceb9615d90684bb5b2ca5f859ab0f0b704075871aa"


def _run(coro: Coroutine[Any, Any, Any]) -> Any:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


# ------------------------------------------------------------------ phases


async def _one_each(host: str, port: int, requests: Sequence[bytes]) -> list[LaneResult]:
    conns = [await connect(host, port) for _ in requests]
    try:
        _, _, results = await run_lanes(conns, [[r] for r in requests])
        return results
    finally:
        for c in conns:
            c.close()


async def _timed(host: str, port: int, lanes: Sequence[Sequence[bytes]], connections: int, rate: float | None,
                 start: float | None, first_index: int, total_lanes: int) -> tuple[float, float, list[LaneResult]]:
    conns = [await connect(host, port) for _ in range(max(1, min(connections, len(lanes))))]
    try:
        return await run_lanes(conns, lanes, rate, start=start, first_index=first_index, total_lanes=total_lanes)
    finally:
        for c in conns:
            c.close()


def _child(pipe: multiprocessing.connection.Connection, host: str, port: int, lanes: list[list[bytes]],
           connections: int, rate: float | None, start: float, first: int, total: int) -> None:
    result = _run(_timed(host, port, lanes, connections, rate, start, first, total))
    pipe.send(result)
    pipe.close()


def run_timed(host: str, port: int, lanes: list[list[bytes]], connections: int, rate: float | None,
              procs: int) -> tuple[float, float, list[LaneResult]]:
    """The timed phase, in this process or split over `procs` forked generator processes."""
    if procs <= 1:
        return _run(_timed(host, port, lanes, connections, rate, None, 0, len(lanes)))  # type: ignore[no-any-return]
    ctx = multiprocessing.get_context("fork")
    start = time.perf_counter() + 0.5  # CLOCK_MONOTONIC: the same clock in every process
    bounds = [len(lanes) * i // procs for i in range(procs + 1)]
    children = []
    for lo, hi in itertools.pairwise(bounds):
        if lo == hi:
            continue
        parent_end, child_end = ctx.Pipe(duplex=False)
        share = max(1, connections * (hi - lo) // len(lanes))
        p = ctx.Process(target=_child, args=(child_end, host, port, lanes[lo:hi], share, rate, start, lo,
                                             len(lanes)))
        p.start()
        child_end.close()
        children.append((p, parent_end))
    results: list[LaneResult] = []
    end = start
    for p, pipe in children:
        _, child_end_time, res = pipe.recv()
        p.join()
        end = max(end, child_end_time)
        results.extend(res)
    return start, end, results


# ------------------------------------------------------------------ checks and figures


def check_payments(results: Sequence[LaneResult]) -> tuple[int, list[str]]:
    """Count payments not answered 200 with value_received == 1 and channel_status open."""
    errors = 0
    samples: list[str] = []
    for lane in results:
        samples.extend(lane.errors[:3])
        for answer in lane.answers:
            ok = False
            if answer is not None and answer[0] == 200:
                try:
                    body = orjson.loads(answer[1])
                    ok = body.get("value_received") == 1 and body.get("channel_status") == "open"
                except orjson.JSONDecodeError:
                    ok = False
            if not ok:
                errors += 1
                if len(samples) < 5:
                    samples.append(repr(answer)[:300])
    return errors, samples


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of sorted values."""
    if not sorted_values:
        return 0.0
    k = max(0, min(len(sorted_values) - 1, math.ceil(q / 100 * len(sorted_values)) - 1))
    return sorted_values[k]


def secp_verify_rate(seconds: float = 1.0) -> float:
    """libsecp256k1 ECDSA verifications per second on one core (coincurve, parsed key, prehashed digest)."""
    import coincurve

    key = coincurve.PrivateKey(os.urandom(32))
    pub = coincurve.PublicKey(key.public_key.format())
    digests = [os.urandom(32) for _ in range(64)]
    sigs = [key.sign(d, hasher=None) for d in digests]
    pairs = list(zip(sigs, digests, strict=True))
    count = 0
    deadline = time.perf_counter() + seconds
    started = time.perf_counter()
    verify = pub.verify
    while time.perf_counter() < deadline:
        for sig, digest in pairs:
            if not verify(sig, digest, hasher=None):
                raise RuntimeError("reference signature does not verify")
        count += len(pairs)
    return count / (time.perf_counter() - started)


def _wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("bare aiohttp server exited")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("bare aiohttp server did not start")


def bare_aiohttp_rate(lanes: list[list[bytes]], connections: int, procs: int, workers: int) -> float:
    """Requests/s of a bare aiohttp handler (uvloop, `workers` processes), same generator, closed loop."""
    port = int(reserve("127.0.0.1"))
    proc = subprocess.Popen([sys.executable, str(HERE / "bare_server.py"), str(port), "--workers", str(workers)],
                            stdout=subprocess.DEVNULL)
    try:
        _wait_port(port, proc)
        time.sleep(0.3 if workers > 1 else 0.0)  # let every worker bind
        start, end, results = run_timed("127.0.0.1", port, lanes, connections, None, procs)
        done = sum(1 for lane in results for a in lane.answers if a is not None and a[0] == 200)
        return done / (end - start)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def floor_run(lanes: list[list[bytes]], workers: int, rate: float | None) -> dict[str, Any]:
    """One run of bench/ceiling.py's durable floor with these requests: its requests/s, p50 and p99."""
    from ceiling import run_kind  # it imports this module: not at the top

    return run_kind("durable", lanes, workers, rate)


def floor_text(floor: dict[str, Any]) -> str:
    """A run's floor reference in one line: the reading used, both readings' rates, the run's ratio to it."""
    before, after = floor["readings"]
    return (f"{floor['requests_per_second']:,.0f}/s p50 {floor['p50_ms']:.2f} p99 {floor['p99_ms']:.2f} ms "
            f"(the faster of {before:,.0f}/s before / {after:,.0f}/s after) -> ratio {floor['fraction_of_floor']:.3f}")


def _proc_cpu(pid: int, *, system_only: bool = False) -> float:
    """utime + stime (or stime only) of a process, seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return ((0 if system_only else int(fields[11])) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _descendants(pids: Sequence[int]) -> dict[int, str]:
    """The given pids and all their descendants, each with a label (service name, or service/worker)."""
    parent: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found = {p: _cmdline(p) for p in pids}
    frontier = list(pids)
    while frontier:
        kids = [p for p, pp in parent.items() if pp in frontier]
        for k in kids:
            found[k] = f"{found[parent[k]].split('[')[0]}/worker[{k}]"
        frontier = kids
    return found


def cpu_snapshot(pids: Sequence[int]) -> dict[str, float]:
    """CPU seconds used so far by each watched process (and its descendants), by label."""
    found = _descendants(pids)
    return {label: _proc_cpu(p) for p, label in found.items()} | {
        f"{label} (kernel)": _proc_cpu(p, system_only=True) for p, label in found.items()}


def machine_cpu() -> tuple[float, float]:
    """CPU seconds all cores have spent busy since boot, and those the hypervisor stole from them.

    /proc/stat: busy is user, nice, system, irq and softirq; steal is the time a vCPU wanted to run and the
    host ran something else. Steal is the VM's neighbours, not a process here: it slows every figure of a run
    without showing in anyone's CPU time, so a run reports it on its own."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(fields[:7]) - fields[3] - fields[4]) / tick, fields[7] / tick


def _cmdline(pid: int) -> str:
    try:
        parts = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return str(pid)
    text = " ".join(p.decode(errors="replace") for p in parts if p)
    for name in ("paychan_server", "chan_store", "signing_service", "paychan-server", "chan-store"):
        if name in text:
            return f"{name}[{pid}]"
    return f"{text[:40]}[{pid}]"


# ------------------------------------------------------------------ plot


def plot(path: str, start: float, results: Sequence[LaneResult], title: str) -> None:
    """Throughput over time (100 ms bins) and the latency distribution; needs matplotlib (`plot` extra)."""
    try:
        import matplotlib  # type: ignore[import-not-found, unused-ignore]

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        print("--plot needs matplotlib: pip install -e '.[plot]'", file=sys.stderr)
        return
    done = sorted(t - start for lane in results for t in lane.done_at)
    lat = sorted(1000 * x for lane in results for x in lane.latencies)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    if done:
        bins = max(1, int(done[-1] / 0.1) + 1)
        counts = [0] * bins
        for t in done:
            counts[min(bins - 1, max(0, int(t / 0.1)))] += 1
        ax1.plot([0.1 * (i + 0.5) for i in range(bins)], [10 * c for c in counts])
    ax1.set_xlabel("time since start (s)")
    ax1.set_ylabel("payments/s (100 ms bins)")
    ax1.set_title("throughput")
    ax1.grid(True, alpha=0.3)
    if lat:
        ax2.hist(lat, bins=100, log=True)
        for q, style in ((50, "--"), (99, ":")):
            v = percentile(lat, q)
            ax2.axvline(v, linestyle=style, color="k", label=f"p{q} {v:.2f} ms")
        ax2.legend()
    ax2.set_xlabel("latency (ms)")
    ax2.set_ylabel("payments")
    ax2.set_title("latency distribution")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print(f"plot written to {path}", file=sys.stderr)


# ------------------------------------------------------------------ main


def _funding_info(base: str, family: str, exp_time: int) -> tuple[str, int]:
    if family == "v1":
        url = f"{base}/v1/fundingInfo?client_pubkey={INFO_KEY}&exp_time={exp_time}"
    else:
        url = f"{base}/v2/funding/{INFO_KEY}/{exp_time}/info"
    with urllib.request.urlopen(url, timeout=10) as resp:
        info = json.load(resp)
    return str(info["server_pubkey"]), int(info["open_price"])


def _phase_errors(results: Sequence[LaneResult], ok_status: tuple[int, ...]) -> list[str]:
    bad = []
    for lane in results:
        for answer in lane.answers:
            if answer is None or answer[0] not in ok_status:
                bad.append(repr(answer)[:300])
        bad.extend(lane.errors)
    return bad


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; exit status 1 if any payment failed."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--payments", type=int, default=2000, help="payments per channel (N)")
    ap.add_argument("--clients", type=int, default=5, help="concurrent channels (T)")
    ap.add_argument("--endpoint", default="localhost:8080", help="host:port of PayChanServer (debug config)")
    ap.add_argument("--rate", type=float, default=None, help="cap the offered load (payments/s, open loop)")
    ap.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    ap.add_argument("--plot", metavar="FILE.png", help="draw throughput over time and latencies (matplotlib)")
    ap.add_argument("--family", choices=FAMILIES, default="v2", help="route family (default v2 = v2-seed)")
    ap.add_argument("--connections", type=int, default=None, help="keep-alive connections (default: --clients)")
    ap.add_argument("--procs", type=int, default=1, help="load generator processes for the timed phase")
    ap.add_argument("--no-reference", action="store_true", help="skip the two reference figures")
    ap.add_argument("--ref-workers", type=int, default=1, help="processes of the bare aiohttp reference")
    ap.add_argument("--floor", action="store_true",
                    help="also read bench/ceiling.py's durable floor before and after the timed phase")
    ap.add_argument("--watch-pids", default="", help="comma-separated pids whose CPU use to report")
    ap.add_argument("--existing", metavar="DB.json", help="pay on channels of bench/gen_channels.py (no opening)")
    ap.add_argument("--existing-offset", type=int, default=None, help="first pre-generated channel (default random)")
    ap.add_argument("--label", default="", help="free text recorded in the JSON configuration")
    args = ap.parse_args(argv)
    if args.payments < 1 or args.clients < 1 or args.procs < 1:
        ap.error("--payments, --clients and --procs must be >= 1")
    host, _, port_text = args.endpoint.rpartition(":")
    host = "127.0.0.1" if host in ("", "localhost") else host
    port = int(port_text)
    connections = args.connections or args.clients
    base = f"http://{host}:{port}"
    say: Callable[[str], None] = (lambda m: print(m, file=sys.stderr)) if args.json else print

    exp_time = int(time.time()) + 7 * 24 * 3600
    server_pk, open_price = _funding_info(base, args.family, exp_time)
    t0 = time.perf_counter()
    keys: list[bytes] | None = None
    existing: dict[str, Any] | None = None
    if args.existing:
        existing = json.loads(Path(args.existing).read_text())
        if existing["server_pubkey"] != server_pk or args.family != existing["family"]:
            ap.error(f"{args.existing} was generated for server key {existing['server_pubkey']} and family "
                     f"{existing['family']}; this server has {server_pk} (family {args.family})")
        count = int(existing["count"])
        offset = args.existing_offset if args.existing_offset is not None else secrets.randbelow(count)
        indices = [(offset + k * max(1, count // args.clients)) % count for k in range(args.clients)]
        keys = [derived_secret(bytes.fromhex(existing["seed"]), i) for i in indices]
        exp_time, open_price = int(existing["exp_time"]), int(existing["open_price"])
        say(f"paying on {args.clients} of the {count:,} pre-generated channels (indices from {offset})")
    spec = PlanSpec(args.family, server_pk, open_price, args.payments, exp_time, f"{host}:{port}")
    plans: list[ChannelPlan] = build_channels(spec, args.clients, secrets_=keys)
    say(f"pre-signed {args.clients} x {args.payments} payments in {time.perf_counter() - t0:.2f} s")

    open_bad: list[str] = []
    if existing is None:
        opened = _run(_one_each(host, port, [p.open for p in plans]))
        open_bad = _phase_errors(opened, (201,))
        if open_bad:
            print(f"opening failed: {open_bad[:3]}", file=sys.stderr)
            return 1

    lanes = [p.payments for p in plans]
    bare_before = None if args.no_reference else bare_aiohttp_rate(lanes, connections, args.procs, args.ref_workers)
    floor_before = floor_run(lanes, args.ref_workers, args.rate) if args.floor else None
    watch = [int(p) for p in args.watch_pids.split(",") if p.strip()]
    cpu_before = cpu_snapshot(watch)
    busy_before, steal_before = machine_cpu()
    ru_before = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    start, end, results = run_timed(host, port, lanes, connections, args.rate, args.procs)
    ru_after = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_after = cpu_snapshot(watch)
    busy_after, steal_after = machine_cpu()
    busy, steal = busy_after - busy_before, steal_after - steal_before
    gen_cpu = sum(a.ru_utime + a.ru_stime - b.ru_utime - b.ru_stime
                  for a, b in zip(ru_after, ru_before, strict=True))

    closed = _run(_one_each(host, port, [p.close for p in plans]))
    close_bad = _phase_errors(closed, (200, 202))
    errors, samples = check_payments(results)
    total = args.clients * args.payments
    elapsed = end - start
    lat = sorted(x for lane in results for x in lane.latencies)
    # Lanes do not finish together (e.g. SO_REUSEPORT gave one worker more connections): the rate while
    # every lane was still busy shows the steady state, without the tail of the last lanes.
    first_done = min((lane.done_at[-1] for lane in results if lane.done_at), default=end)
    steady = sum(1 for lane in results for t in lane.done_at if t <= first_done) / max(first_done - start, 1e-9)
    out: dict[str, Any] = {
        "payments_per_second": round(total / elapsed, 1),
        "p50_ms": round(1000 * percentile(lat, 50), 3),
        "p90_ms": round(1000 * percentile(lat, 90), 3),
        "p99_ms": round(1000 * percentile(lat, 99), 3),
        "max_ms": round(1000 * (lat[-1] if lat else 0.0), 3),
        "steady_payments_per_second": round(steady, 1),
        "errors": errors,
        "payments": total,
        "elapsed_s": round(elapsed, 3),
        "open_errors": len(open_bad),
        "close_errors": len(close_bad),
        "generator_cpu_s": round(gen_cpu, 3),
        "config": {
            "endpoint": args.endpoint, "family": args.family, "clients": args.clients, "payments": args.payments,
            "rate": args.rate, "connections": connections, "procs": args.procs, "label": args.label,
            "existing_channels": None if existing is None else existing["count"],
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        },
    }
    if watch:
        out["server_cpu_s"] = {k: round(v - cpu_before.get(k, 0.0), 3) for k, v in cpu_after.items()
                               if v - cpu_before.get(k, 0.0) > 0.005 or "worker" not in k}
        out["cpu_us_per_payment"] = {k: round(1e6 * v / total, 1) for k, v in out["server_cpu_s"].items() if v}
        # CPU used meanwhile by processes outside this benchmark (other users of the machine): noise.
        out["foreign_cpu_s"] = round(busy - gen_cpu - sum(v for k, v in out["server_cpu_s"].items()
                                                          if not k.endswith("(kernel)")), 2)
    out["machine_busy_cpu_s"] = round(busy, 2)
    out["steal_cpu_s"] = round(steal, 2)
    from machine_probe import wake_up_us  # it imports this module: not at the top

    out["wake_up_us"] = wake_up_us(2000)  # the machine's phase, right after the timed phase
    if samples:
        out["error_samples"] = samples
    if close_bad:
        out["close_error_samples"] = close_bad[:3]
    if args.plot:
        plot(args.plot, start, results, f"{args.family}: {args.clients} x {args.payments}"
             + (f" at {args.rate:g}/s" if args.rate else " (closed loop)"))

    if bare_before is not None:
        bare_after = bare_aiohttp_rate(lanes, connections, args.procs, args.ref_workers)
        secp = secp_verify_rate()
        bare = max(bare_before, bare_after)  # the conservative reading
        pps = out["payments_per_second"]
        out["reference"] = {
            "secp256k1_verify_per_second_one_core": round(secp, 1),
            "bare_aiohttp_requests_per_second": round(bare, 1),
            "bare_aiohttp_readings": [round(bare_before, 1), round(bare_after, 1)],
            "bare_aiohttp_workers": args.ref_workers,
            "fraction_of_secp256k1": round(pps / secp, 3),
            "fraction_of_bare_aiohttp": round(pps / bare, 3),
        }

    if floor_before is not None:
        floor_after = floor_run(lanes, args.ref_workers, args.rate)
        # the faster reading, the conservative one: the higher rate, or under a capped rate the lower p99
        best = (min(floor_before, floor_after, key=lambda r: float(r["p99_ms"])) if args.rate
                else max(floor_before, floor_after, key=lambda r: float(r["requests_per_second"])))
        out["floor"] = {
            "requests_per_second": best["requests_per_second"], "p50_ms": best["p50_ms"], "p99_ms": best["p99_ms"],
            "readings": [floor_before["requests_per_second"], floor_after["requests_per_second"]],
            "workers": args.ref_workers,
            "fraction_of_floor": round(out["payments_per_second"] / float(best["requests_per_second"]), 3),
        }

    if args.json:
        print(json.dumps(out))
    else:
        _summary(out)
    return 0 if errors == 0 and not close_bad else 1


def _summary(out: dict[str, Any]) -> None:
    c = out["config"]
    rate = f", offered {c['rate']:g}/s" if c["rate"] else " (closed loop)"
    print(f"{c['family']}: {c['clients']} channels x {c['payments']} payments{rate}, "
          f"{c['connections']} connections, {c['procs']} generator process(es)")
    print(f"  {out['payments']} payments in {out['elapsed_s']:.3f} s = {out['payments_per_second']:,.0f} payments/s "
          f"({out['steady_payments_per_second']:,.0f}/s while every channel was busy)")
    print(f"  latency ms: p50 {out['p50_ms']:.2f}  p90 {out['p90_ms']:.2f}  p99 {out['p99_ms']:.2f}  "
          f"max {out['max_ms']:.2f}")
    print(f"  errors {out['errors']} (open {out['open_errors']}, close {out['close_errors']}); "
          f"generator CPU {out['generator_cpu_s']:.2f} s; the machine's wake-up {out['wake_up_us']} us, "
          f"CPU stolen by the host {out['steal_cpu_s']:.2f} s")
    for sample in out.get("error_samples", []):
        print(f"    e.g. {sample}")
    if "server_cpu_s" in out:
        print("  service CPU s: " + ", ".join(f"{k} {v:.2f}" for k, v in out["server_cpu_s"].items()))
        print("  service CPU us/payment: " + ", ".join(f"{k} {v:.0f}" for k, v in out["cpu_us_per_payment"].items())
              + f"; CPU of other processes meanwhile {out['foreign_cpu_s']:.2f} s")
    ref = out.get("reference")
    if ref:
        print(f"  reference: secp256k1 verify {ref['secp256k1_verify_per_second_one_core']:,.0f}/s (one core) "
              f"-> payments are {ref['fraction_of_secp256k1']:.3f} of it")
        before, after = ref["bare_aiohttp_readings"]
        print(f"  reference: bare aiohttp handler {ref['bare_aiohttp_requests_per_second']:,.0f} req/s, the higher of "
              f"{before:,.0f} before and {after:,.0f} after ({ref['bare_aiohttp_workers']} process) -> payments are "
              f"{ref['fraction_of_bare_aiohttp']:.3f} of it")
    if out.get("floor"):
        print(f"  floor (bench/ceiling.py durable): {floor_text(out['floor'])}")


if __name__ == "__main__":
    sys.exit(main())
