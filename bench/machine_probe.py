"""What this machine charges for the things paychan's latency is made of, to compare machines by.

    .venv/bin/python bench/machine_probe.py [--dir DIR] [--rounds N] [--json]

- **wake-up**: a round trip between two processes over a socketpair, each blocking in recv (the way every
  paychan process waits: asleep until the kernel wakes it), against the same round trip with both spinning
  on non-blocking recv (no sleep, no wake-up). Half the difference is what one cross-process hand-over
  costs in wake-up alone; a payment makes four of them (client -> worker -> ChanStore -> worker -> client).
  On a VM whose idle vCPUs halt (HLT) rather than poll, a wake-up is an exit to the host.
- **fsync**: `fdatasync` after appending 512 bytes to a file (LevelDB's log, once per group commit), and
  after overwriting 512 bytes of a file written in full before (what a preallocated log would do).
- **secp256k1**: one core's ECDSA verifications per second (bench_payments.secp_verify_rate, the same
  reference the payment benchmark reports its ratio to).
- **idle**: the cpuidle driver and, with haltpoll, how long an idle vCPU polls before halting.

Figures are medians over `--rounds` rounds. The fsync file lives in `--dir` (default: the temporary
directory, where bench/run_bench.py puts its LevelDB).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench_payments import secp_verify_rate  # the script's folder comes first on sys.path

ROUND_TRIPS = 5000
FSYNCS = 500
RECORD = b"r" * 512


def _recv(sock: socket.socket, spin: bool) -> bytes:
    if not spin:
        return sock.recv(64)
    while True:
        try:
            return sock.recv(64)
        except BlockingIOError:
            continue


def round_trip_us(spin: bool, count: int = ROUND_TRIPS) -> float:
    """Median microseconds of one ping-pong between this process and a forked child.

    The median, not the mean: a few round trips preempted by another process (a service still winding down
    right after a timed phase) would otherwise swing the figure, and once made the spinning trip slower than
    the blocking one, a negative wake-up."""
    mine, theirs = socket.socketpair()
    for sock in (mine, theirs):
        sock.setblocking(not spin)
    child = os.fork()
    if child == 0:  # pragma: no cover - the child echoes and exits without returning
        mine.close()
        try:
            for _ in range(count + 1):
                theirs.sendall(_recv(theirs, spin))
        finally:
            os._exit(0)
    theirs.close()
    try:
        mine.sendall(b"w")  # warm-up
        _recv(mine, spin)
        clock = time.perf_counter
        times = []
        for _ in range(count):
            started = clock()
            mine.sendall(b"p")
            if _recv(mine, spin) != b"p":
                raise RuntimeError("the echo went wrong")
            times.append(clock() - started)
        return statistics.median(times) * 1e6
    finally:
        mine.close()
        os.waitpid(child, 0)


def wake_up(blocking_us: float, spinning_us: float) -> float:
    """What one cross-process wake-up costs: half the difference between the two round trips."""
    return round((blocking_us - spinning_us) / 2, 1)


def wake_up_us(count: int = ROUND_TRIPS) -> float:
    """One reading of the wake-up cost now (one blocking and one spinning run of `count` round trips)."""
    return wake_up(round_trip_us(spin=False, count=count), round_trip_us(spin=True, count=count))


def fdatasync_us(folder: Path, overwrite: bool, count: int = FSYNCS) -> float:
    """Median microseconds of write(512 bytes) + fdatasync, appending or overwriting written blocks."""
    path = folder / f"probe-{os.getpid()}-{'overwrite' if overwrite else 'append'}.log"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        if overwrite:
            os.write(fd, bytes(len(RECORD) * count + 4096))
            os.fsync(fd)
        times = []
        for i in range(count):
            started = time.perf_counter()
            if overwrite:
                os.pwrite(fd, RECORD, i * len(RECORD))
            else:
                os.write(fd, RECORD)
            os.fdatasync(fd)
            times.append(time.perf_counter() - started)
        return statistics.median(times) * 1e6
    finally:
        os.close(fd)
        path.unlink()


def idle_settings() -> dict[str, str]:
    """The cpuidle driver and haltpoll's guest polling time, where the kernel shows them."""
    found = {}
    for name, where in (("cpuidle_driver", "/sys/devices/system/cpu/cpuidle/current_driver"),
                        ("guest_halt_poll_ns", "/sys/module/haltpoll/parameters/guest_halt_poll_ns"),
                        ("clocksource", "/sys/devices/system/clocksource/clocksource0/current_clocksource")):
        try:
            found[name] = Path(where).read_text().strip()
        except OSError:
            continue
    return found


def probe(folder: Path, rounds: int) -> dict[str, object]:
    """Every figure, each the median of `rounds` rounds."""
    def median(measure: Callable[[], float]) -> float:
        return round(statistics.median(measure() for _ in range(rounds)), 1)

    blocking = median(lambda: round_trip_us(spin=False))
    spinning = median(lambda: round_trip_us(spin=True))
    return {
        "round_trip_blocking_us": blocking,
        "round_trip_spinning_us": spinning,
        "wake_up_us": wake_up(blocking, spinning),
        "fdatasync_append_us": median(lambda: fdatasync_us(folder, overwrite=False)),
        "fdatasync_overwrite_us": median(lambda: fdatasync_us(folder, overwrite=True)),
        "secp256k1_verify_per_s": round(statistics.median(secp_verify_rate(0.5) for _ in range(rounds))),
        **idle_settings(),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", default=tempfile.gettempdir(), help="folder for the fsync file")
    ap.add_argument("--rounds", type=int, default=3, help="rounds per figure (the median is reported)")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args(argv)
    if args.rounds < 1:
        ap.error("--rounds must be at least 1")
    figures = probe(Path(args.dir), args.rounds)
    if args.json:
        print(json.dumps(figures))
    else:
        for name, value in figures.items():
            print(f"{name:26} {value:,}" if isinstance(value, float | int) else f"{name:26} {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
