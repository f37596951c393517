"""The chaos soak's fault injector (bench/chaos.py): killable targets and the loop that kills them."""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from tests.support.regtest import wait_for
from tests.support.services import Service


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


RESTART_TIMEOUT = 300.0  # a restart slower than this fails the run; generous: the machine may be shared and loaded


def wait_until(predicate: Callable[[], bool], description: str, timeout: float = RESTART_TIMEOUT) -> None:
    """Poll quickly (restarts are what the soak waits for most)."""
    wait_for(predicate, timeout, 0.01, max_interval=0.1, description=description)


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

        wait_until(up, f"{self.name} ready")


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
        wait_until(self.ready, "workers ready")
        victim = self.rng.choice(self.worker_pids())
        os.kill(victim, signal.SIGKILL)
        self.victim = victim

    def restore(self) -> None:
        """Wait until the supervisor has restarted it and it listens."""
        wait_until(lambda: self.victim not in self.worker_pids() and self.ready(), "worker restarted")


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
    restarts: dict[str, list[float]] = field(default_factory=dict)  # seconds from kill to serving again
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
            killed = time.monotonic()
            self.kills[target.name] += 1
            target.restore()
            self.restarts.setdefault(target.name, []).append(time.monotonic() - killed)
        except Exception as exc:  # noqa: BLE001 - a target that cannot restart ends the run as a failure
            self.errors.append(f"{target.name}: {exc!r}")
        eligible_at[target.name] = time.monotonic() + self.rng.uniform(*self.min_up)
