"""Summarize py-spy collapsed stacks (`py-spy record --format raw`): where the samples go.

Usage: python bench/profile_summary.py FILE.txt [--top 25] [--match SUBSTRING ...] [--categories] [--busy]
Prints the share of samples by self (leaf) function and, inclusively, by each function on the stack;
`--match` adds the inclusive share of every frame containing one of the substrings; `--categories`
sorts every sample into one of the CATEGORIES below: that of the innermost frame matching a pattern.
Stacks recorded with C frames (`run_bench.sh --profile DIR --profile-native`) show the system calls and
the waits; `--busy` leaves the waits (IDLE: epoll, a thread blocked on its queue) out of the total.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

IDLE = ("waiting: epoll (idle event loop)", "waiting: a thread blocked on its queue or lock")
CATEGORIES: list[tuple[str, tuple[str, ...]]] = [
    # C frames (py-spy --native): the innermost frame of a sample is a system call or a wait
    (IDLE[0], ("epoll_pwait", "epoll_wait")),
    (IDLE[1], ("_queue_SimpleQueue_get", "PyThread_acquire_lock_timed", "pthread_cond_timedwait",
               "pthread_cond_wait", "sem_wait", "sem_timedwait")),
    ("system call: fdatasync/fsync", ("fdatasync", "fsync (libc")),
    ("system call: socket/file write", ("write (libc", "writev (libc", "sendmsg (libc", "send (libc")),
    ("system call: socket/file read", ("read (libc", "recv (libc", "recvmsg (libc")),
    ("system call: getpid (asyncio loop lookups)", ("getpid (libc",)),
    ("system call: thread wake-up (futex)", ("sem_post", "pthread_cond_signal", "futex")),
    ("fast fronts: framing, head parse, answer", ("front.py",)),
    ("ECDSA verify (libsecp256k1)", ("PublicKey.verify (coincurve", "coincurve/")),
    ("sighash (SHA256d of the template)", ("PaymentVerifier.digest", "sighash.py", "hashing.py")),
    ("LevelDB write + fsync (writer thread)", ("write_batches",)),
    ("socket send syscalls", ("_writelines",)),
    ("metrics, access log, hooks (Prometheus)", ("prometheus_client", "paychan_runtime/metrics.py",
                                                  "paychan_runtime/logs.py", "hooks.py", "server_metrics.py",
                                                  "chan_store/metrics.py")),
    ("route handlers and middleware glue", ("routes_v2.py", "routes_v1.py", "middleware.py", "service.py",
                                            "chan_store/app.py", "paychan_runtime/http.py")),
    ("ChanStore client: batching + HTTP", ("chan_store/client.py", "paychan_runtime/http1.py",
                                           "paychan_runtime/client.py", "httptools")),
    ("request JSON: read + parse", ("read_json", "wire_v2.py", "wire_v1.py", "der.py", "chan_store/contract.py",
                                    "orjson", "pydantic")),
    ("path parse + channel lookup", ("_seed_path", "_v23_path", "locate (paychan_server", "params.py", "tx.py",
                                     "keys.py")),
    ("payment rules + state update", ("rules.py", "state.py", "chan_store/store.py", "chan_store/contract.py",
                                      "dataclasses.py", "<string>")),
    ("group commit (event loop side)", ("leveldb_storage.py",)),
    ("aiohttp request/response machinery", ("aiohttp/", "multidict", "yarl")),
    ("event loop (uvloop C code, epoll) and idle", ("Runner.run", "run (asyncio/runners.py)")),
    ("asyncio futures/tasks", ("asyncio/",)),
    ("thread pool idle", ("concurrent/futures/thread.py",)),
]

_FRAME = re.compile(r"^(?P<func>[^ ]+) \((?P<file>[^:)]+)(?::\d+)?\)$")


def _category(frames: list[str]) -> str:
    for frame in reversed(frames):
        for name, patterns in CATEGORIES:
            if any(p in frame for p in patterns):
                return name
    return "other"


def _short(frame: str) -> str:
    m = _FRAME.match(frame.strip())
    if not m:
        return frame.strip()
    path = m.group("file")
    for marker in ("site-packages/", "/src/", "python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{m.group('func')} ({path})"


def main() -> None:
    """Print the summary."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("file")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--match", nargs="*", default=[])
    ap.add_argument("--categories", action="store_true", help="share of samples by category")
    ap.add_argument("--busy", action="store_true", help="leave the waiting samples (native stacks) out")
    args = ap.parse_args()
    leaf: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    matched: Counter[str] = Counter()
    category: Counter[str] = Counter()
    total = 0
    for line in Path(args.file).read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_short(f) for f in stack.split(";")]
        frames = [f for f in frames if not f.startswith(("process ", "thread "))]
        if not frames or (args.busy and _category(frames) in IDLE):
            continue
        total += count
        leaf[frames[-1]] += count
        for f in set(frames):
            incl[f] += count
        for m in args.match:
            if any(m in f for f in frames):
                matched[m] += count
        category[_category(frames)] += count
    print(f"{total} samples" + (" (busy only)" if args.busy else ""))
    if args.categories:
        print("\nby category:")
        for name, c in category.most_common():
            print(f"  {100 * c / total:5.1f}%  {name}")
    print("\nself (leaf) time:")
    for f, c in leaf.most_common(args.top):
        print(f"  {100 * c / total:5.1f}%  {f}")
    print("\ninclusive time:")
    for f, c in incl.most_common(args.top * 2):
        print(f"  {100 * c / total:5.1f}%  {f}")
    if matched:
        print("\nmatched (inclusive):")
        for m in args.match:
            print(f"  {100 * matched[m] / total:5.1f}%  {m}")


if __name__ == "__main__":
    main()
