"""Supervisor behind scripts/run_everything.sh: start ChanStore, SigningService and PayChanServer on one
config folder, fail fast, stop cleanly.

* Refuses (exit 2) when the three files disagree on what must agree: the ports the server dials
  (`chan_store.url`, `signing_service.url`) and those the services listen on, the shared token file, the
  network. Refuses (exit 1) when a port of the config is already served (another copy running).
* `PAYCHAN_PORT_BASE=N` moves every port of the config at once: PayChanServer N, management N+1,
  ChanStore N+2, SigningService N+3 (the files are copied with the new ports to a temporary folder).
  `PORT` still moves PayChanServer's public port alone.
* Each service's output is shown with its name; a service that exits (at start-up or later) is reported
  with its exit status and its last lines, the others are stopped, and the exit status is 1.
* SIGINT / SIGTERM stop the three (PayChanServer first) and exit 0.
"""

from __future__ import annotations

import collections
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import tomli_w

from paychan_runtime.processes import terminate

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
CLIENT_PK = "034f355bdcb7cc0af728ef3cceb9615d90684bb5b2ca5f859ab0f0b704075871aa"
START_TIMEOUT = 120.0
TAIL = 25
# PAYCHAN_PORT_BASE offsets
OFFSETS = {"server": 0, "management": 1, "store": 2, "signing": 3}


class Refused(Exception):
    """The configuration cannot be started as it is (message for the operator, exit status)."""

    def __init__(self, message: str, status: int = 2) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Child:
    """One service process and the last lines it printed."""

    name: str
    module: str
    config: Path
    source: Path  # the operator's file (config may be a moved copy)
    health: str  # URL polled until it answers
    uds: str | None = None
    proc: subprocess.Popen[str] | None = None
    lines: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=TAIL))
    started: float = 0.0
    client: httpx.Client | None = None

    def start(self) -> None:
        """Start it, its output copied to ours with its name in front."""
        self.started = time.monotonic()
        self.proc = subprocess.Popen([PY, "-m", self.module, str(self.config)], cwd=ROOT, text=True, bufsize=1,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     env=dict(os.environ, PYTHONUNBUFFERED="1"))
        assert self.proc.stdout is not None
        threading.Thread(target=self._copy, args=(self.proc.stdout,), daemon=True).start()

    def _copy(self, stream: IO[str]) -> None:
        for line in stream:
            line = line.rstrip("\n")
            self.lines.append(line)
            print(f"[{self.name}] {line}", flush=True)

    def report(self) -> str:
        """Why it ended, with its last lines."""
        assert self.proc is not None
        code = self.proc.returncode
        after = time.monotonic() - self.started
        what = f"signal {-code}" if code < 0 else f"status {code}"
        time.sleep(0.1)  # let the reader thread take the last lines
        tail = "\n".join(f"  | {line}" for line in self.lines) or "  | (no output)"
        return f"{self.name} ({self.source}) exited with {what} after {after:.1f} s; its last lines:\n{tail}"

    def ready(self) -> bool:
        """True once its health URL answers (any HTTP status: management answers 401)."""
        if self.client is None:
            self.client = httpx.Client(transport=httpx.HTTPTransport(uds=self.uds) if self.uds else None,
                                       timeout=0.5)
        try:
            self.client.get(self.health)
        except httpx.HTTPError:
            return False
        self.client.close()
        return True


def _load(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise Refused(f"missing config file {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise Refused(f"{path} is not valid TOML: {exc}") from None


def _port_of(url: str) -> int | None:
    try:
        return urlsplit(url).port or (443 if url.startswith("https:") else 80)
    except ValueError:
        return None


def _with_port(url: str, port: int) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{parts.hostname or '127.0.0.1'}:{port}"))


def move_ports(cfg: dict[str, dict[str, Any]], base: int) -> None:
    """Every port of the config from PAYCHAN_PORT_BASE (the offsets in OFFSETS), in place."""
    if not 1024 <= base <= 65535 - max(OFFSETS.values()):
        raise Refused(f"PAYCHAN_PORT_BASE must be between 1024 and {65535 - max(OFFSETS.values())}")
    server = cfg["server"]
    server.setdefault("listen", {})["port"] = base + OFFSETS["server"]
    if "management" in server:
        server["management"]["port"] = base + OFFSETS["management"]
    for name, ref in (("store", "chan_store"), ("signing", "signing_service")):
        listen = cfg[name].setdefault("listen", {})
        if "unix_path" not in listen:
            listen["port"] = base + OFFSETS[name]
            ref_cfg = server.setdefault(ref, {})
            ref_cfg["url"] = _with_port(ref_cfg.get("url", "http://127.0.0.1"), base + OFFSETS[name])


def check_agreement(cfg: dict[str, dict[str, Any]], conf: Path) -> None:
    """The values the three files must share (docs/OPERATIONS.md, "Ports and paths that must agree")."""
    server = cfg["server"]
    for name, ref, what in (("store", "chan_store", "ChanStore"), ("signing", "signing_service", "SigningService")):
        listen = cfg[name].get("listen", {})
        dial = server.get(ref, {})
        if "unix_path" in listen or "unix_path" in dial:
            if listen.get("unix_path") != dial.get("unix_path"):
                raise Refused(f"{conf}/server.toml {ref}.unix_path must equal {conf}/{name}.toml listen.unix_path")
        elif _port_of(dial.get("url", "")) != listen.get("port"):
            raise Refused(f"{conf}/server.toml {ref}.url ({dial.get('url')}) does not reach {what}: "
                          f"{conf}/{name}.toml listen.port is {listen.get('port')}")
    tokens = {name: c.get("auth", {}).get("token_file") for name, c in cfg.items()}
    if len(set(tokens.values())) != 1:
        raise Refused(f"auth.token_file differs between the three files of {conf}: {tokens}")
    networks = {"store": cfg["store"].get("network"), "signing": cfg["signing"].get("network"),
                "server": server.get("bitcoin", {}).get("network")}
    if len(set(networks.values())) != 1:
        raise Refused(f"the network differs between the three files of {conf}: {networks}")


def served_ports(cfg: dict[str, dict[str, Any]]) -> list[tuple[str, str, int]]:
    """(what, host, port) of every TCP port the config listens on."""
    out = []
    for name, what in (("store", "ChanStore listen.port"), ("signing", "SigningService listen.port"),
                       ("server", "PayChanServer listen.port")):
        listen = cfg[name].get("listen", {})
        if "unix_path" not in listen:
            out.append((what, listen.get("host", "127.0.0.1"), int(listen.get("port", 0))))
    m = cfg["server"].get("management", {})
    if m.get("enable"):
        out.append(("PayChanServer management.port", m.get("host", "127.0.0.1"), int(m.get("port", 0))))
    return out


def refuse_if_served(ports: list[tuple[str, str, int]]) -> None:
    """Refuse when anything already accepts connections on one of the ports."""
    busy = []
    for what, host, port in ports:
        try:
            with socket.create_connection((host, port), timeout=0.3):
                busy.append(f"{host}:{port} ({what})")
        except OSError:
            continue
    if busy:
        raise Refused("refusing to start: already served: " + ", ".join(busy)
                      + " (another copy running? stop it, or move all ports with PAYCHAN_PORT_BASE=N)", 1)


def prepare(conf: Path) -> tuple[dict[str, dict[str, Any]], dict[str, Path], Path | None]:
    """Load, move (PAYCHAN_PORT_BASE, PORT), check; the config files to start the services with."""
    files = {name: conf / f"{name}.toml" for name in ("store", "signing", "server")}
    cfg = {name: _load(path) for name, path in files.items()}
    moved: Path | None = None
    base = os.environ.get("PAYCHAN_PORT_BASE")
    if base:
        if not base.isdigit():
            raise Refused(f"PAYCHAN_PORT_BASE is not a number: {base!r}")
        move_ports(cfg, int(base))
        moved = Path(tempfile.mkdtemp(prefix="paychan-ports-"))
        files = {}
        for name, data in cfg.items():
            files[name] = moved / f"{name}.toml"
            files[name].write_text(tomli_w.dumps(data))
    check_agreement(cfg, conf)
    port = os.environ.get("PORT")
    if port:
        cfg["server"].setdefault("listen", {})["port"] = int(port) if port.isdigit() else port
    return cfg, files, moved


def main(argv: list[str]) -> int:
    """Run until a signal (exit 0) or until a service exits (exit 1)."""
    conf = Path(argv[0] if argv else "config/debug")
    if not conf.is_dir():
        print(f"usage: run_everything.sh CONFIG_DIR ({conf} is not a folder)", file=sys.stderr)
        return 2
    stopping = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        cfg, files, moved = prepare(conf)
        refuse_if_served(served_ports(cfg))
    except Refused as exc:
        print(f"run_everything: {exc}", file=sys.stderr)
        return exc.status
    children = []
    for name, module, what in (("store", "chan_store", "ChanStore"), ("signing", "signing_service", "SigningService"),
                               ("server", "paychan_server", "PayChanServer")):
        listen = cfg[name].get("listen", {})
        uds = listen.get("unix_path")
        host = listen.get("host", "127.0.0.1")
        url = "http://local/health" if uds else f"http://{host}:{listen.get('port')}/health"
        children.append(Child(what, module, files[name], conf / f"{name}.toml", url, uds))
    m = cfg["server"].get("management", {})
    waits = list(children)
    if m.get("enable"):
        waits.append(Child("management API", "", files["server"], conf / "server.toml",
                           f"http://{m.get('host', '127.0.0.1')}:{m.get('port')}/health"))
    for child in children:
        child.start()
    status = supervise(children, waits, cfg, conf, m, stopping)
    stop(children)
    if moved is not None:
        shutil.rmtree(moved, ignore_errors=True)
    print("stopped", flush=True)
    return status


def supervise(children: list[Child], waits: list[Child], cfg: dict[str, dict[str, Any]], conf: Path,
              m: dict[str, Any], stopping: threading.Event) -> int:
    """Wait until every service answers, print the banner, then watch; the exit status."""
    pending = list(waits)
    deadline = time.monotonic() + START_TIMEOUT
    up = False
    while not stopping.is_set():
        for child in children:
            assert child.proc is not None
            if child.proc.poll() is not None and not stopping.is_set():
                print(f"run_everything: {child.report()}", file=sys.stderr, flush=True)
                print("run_everything: stopping the other services", file=sys.stderr, flush=True)
                return 1
        pending = [w for w in pending if not w.ready()]
        if not pending and not up:
            up = True
            banner(cfg, conf, m)
        if pending and time.monotonic() > deadline:
            print(f"run_everything: {pending[0].name} did not answer at {pending[0].health} within "
                  f"{START_TIMEOUT:.0f} s", file=sys.stderr, flush=True)
            return 1
        stopping.wait(0.05 if pending else 0.5)
    return 0


def banner(cfg: dict[str, dict[str, Any]], conf: Path, m: dict[str, Any]) -> None:
    """The server key and the URLs."""
    listen = cfg["server"].get("listen", {})
    base = f"http://{listen.get('host', '127.0.0.1')}:{listen.get('port')}"
    try:
        key = httpx.get(f"{base}/v2/funding/{CLIENT_PK}/4000000000/info", timeout=5).json()["server_pubkey"]
    except (httpx.HTTPError, ValueError, KeyError):
        key = "(not available)"
    print(f"paychan is up ({conf})", flush=True)
    print(f"  server public key : {key}")
    print(f"  v1                : {base}/v1/fundingInfo?client_pubkey=<hex>&exp_time=<unix time>")
    print(f"  v2                : {base}/v2/funding/<client_pubkey>/<exp_time>/info")
    if m.get("enable"):
        print(f"  dashboard         : http://{m.get('host', '127.0.0.1')}:{m.get('port')}/ "
              f"(token: {m.get('token_file')})")
    print("Ctrl-C stops all three.", flush=True)


def stop(children: list[Child]) -> None:
    """SIGTERM to each (PayChanServer first), SIGKILL after 15 s."""
    for child in reversed(children):
        if child.proc is not None:
            terminate(child.proc)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
