"""A real ``bitcoind`` in regtest mode for tests.

Modelled loosely on Bitcoin Core's functional test framework
(``test_framework/test_node.py``) and pyln-testing's ``BitcoinD``:

* :func:`find_bitcoind` locates the binary (``$BITCOIND`` or the project's own
  install made by ``scripts/install_bitcoind.sh``, which is run on demand);
* :class:`RegtestNode` writes a ``bitcoin.conf`` with free ports and random RPC
  credentials, starts the daemon, waits for RPC readiness and offers the shared
  synchronous JSON-RPC client (:meth:`RegtestNode.rpc`) plus helpers;
* :func:`funded_node` starts one with a wallet ``"w"`` and 200 mined blocks
  (so 50 BTC are spendable); the plugin's fixtures ``regtest_node`` (module
  scope) and ``regtest_node_fresh`` (function scope) yield such a node.

Amounts in RPC results are :class:`decimal.Decimal`; ``Decimal`` parameters
are sent as strings, which bitcoind accepts for amounts.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self, TypeVar

from paychan_common.errors import ServiceUnavailable
from paychan_runtime.bitcoin_rpc import RpcError, SyncBitcoinRpc
from tests.support.ports import reserve_port

__all__ = [
    "DEFAULT_BITCOIND",
    "FUNDED_HEIGHT",
    "INSTALL_SCRIPT",
    "PROJECT_ROOT",
    "BitcoindError",
    "RegtestNode",
    "RpcError",
    "find_bitcoind",
    "funded_node",
    "wait_for",
]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
INSTALL_SCRIPT = PROJECT_ROOT / "scripts" / "install_bitcoind.sh"
DEFAULT_BITCOIND = PROJECT_ROOT / ".cache" / "bitcoind" / "bin" / "bitcoind"

T = TypeVar("T")


class BitcoindError(RuntimeError):
    """bitcoind could not be found, started or stopped."""


def wait_for(
    predicate: Callable[[], T],
    timeout: float = 60.0,
    interval: float = 0.05,
    *,
    max_interval: float = 1.0,
    backoff: float = 1.5,
    description: str = "condition",
) -> T:
    """Poll ``predicate`` until it returns a truthy value, which is returned.

    The sleep between polls starts at ``interval`` and grows by ``backoff`` up
    to ``max_interval`` (never sleeping past the deadline). Raises
    :class:`TimeoutError` after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    delay = interval
    while True:
        result = predicate()
        if result:
            return result
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"timed out after {timeout:.1f}s waiting for {description}")
        time.sleep(min(delay, remaining))
        delay = min(delay * backoff, max_interval)


def find_bitcoind() -> Path:
    """Path of the ``bitcoind`` to use.

    ``$BITCOIND`` (a path, or a name looked up on ``PATH``) wins; otherwise the
    project's wrapper ``.cache/bitcoind/bin/bitcoind``, installed by running
    ``scripts/install_bitcoind.sh`` if it is missing.
    """
    env = os.environ.get("BITCOIND")
    if env:
        candidate = Path(env)
        if candidate.is_file():
            return candidate.resolve()
        found = shutil.which(env)
        if found is None:
            raise BitcoindError(f"BITCOIND={env!r} is neither a file nor found on PATH")
        return Path(found)
    if not DEFAULT_BITCOIND.is_file():
        proc = subprocess.run(
            ["bash", str(INSTALL_SCRIPT)],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise BitcoindError(f"{INSTALL_SCRIPT} failed with exit code {proc.returncode}:\n{proc.stderr[-4000:]}")
        lines = proc.stdout.strip().splitlines()
        bin_dir = Path(lines[-1]) if lines else DEFAULT_BITCOIND.parent
        candidate = bin_dir / "bitcoind"
        if not candidate.is_file():
            raise BitcoindError(f"{INSTALL_SCRIPT} did not produce {candidate}")
        return candidate
    return DEFAULT_BITCOIND


def _reserve_ports(count: int) -> list[int]:
    """``count`` distinct reserved TCP ports on 127.0.0.1 (see tests.support.ports)."""
    return [reserve_port() for _ in range(count)]


def _tail(path: Path, max_chars: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-max_chars:]
    except OSError:
        return ""


class RegtestNode:
    """One bitcoind process in regtest mode with its own data directory."""

    def __init__(
        self,
        datadir: Path,
        bitcoind: Path,
        *,
        extra_args: Sequence[str] = (),
        extra_conf: Sequence[str] = (),
        rpc_timeout: float = 30.0,
    ) -> None:
        self.datadir = Path(datadir)
        self.bitcoind = Path(bitcoind)
        self.extra_args = list(extra_args)
        self.extra_conf = list(extra_conf)
        self.rpc_timeout = rpc_timeout
        self.wallet: str | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self.rpc_user = "rpc_" + secrets.token_hex(8)
        self.rpc_password = secrets.token_urlsafe(24)
        self.rpc_port = 0  # reserved at each start
        self.p2p_port = 0
        self._client: SyncBitcoinRpc | None = None
        self._logs: list[IO[bytes]] = []
        self._mining_address: str | None = None

    # ------------------------------------------------------------ properties
    @property
    def rpc_url(self) -> str:
        """``http://127.0.0.1:PORT`` (no credentials; see rpc_user/rpc_password)."""
        return f"http://127.0.0.1:{self.rpc_port}"

    @property
    def conf_file(self) -> Path:
        return self.datadir / "bitcoin.conf"

    @property
    def debug_log(self) -> Path:
        return self.datadir / "regtest" / "debug.log"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    # --------------------------------------------------------- lifecycle
    def write_config(self) -> None:
        lines = [
            "regtest=1",
            "server=1",
            f"rpcuser={self.rpc_user}",
            f"rpcpassword={self.rpc_password}",
            "listen=0",
            "dnsseed=0",
            "fixedseeds=0",
            "printtoconsole=0",
            "txindex=1",
            "fallbackfee=0.0002",
            "acceptnonstdtxn=0",
            "shrinkdebugfile=0",
            *self.extra_conf,
            # network-specific options are only honoured inside the section
            "[regtest]",
            f"rpcport={self.rpc_port}",
            f"port={self.p2p_port}",
            "rpcbind=127.0.0.1",
            "rpcallowip=127.0.0.1",
            "",
        ]
        self.conf_file.write_text("\n".join(lines))

    def start(self, timeout: float = 60.0) -> None:
        """Start bitcoind and wait until its RPC interface answers."""
        if self.running:
            raise BitcoindError("node is already running")
        self.datadir.mkdir(parents=True, exist_ok=True)
        self.rpc_port, self.p2p_port = _reserve_ports(2)
        self.write_config()
        stdout = (self.datadir / "bitcoind.stdout").open("ab")
        stderr = (self.datadir / "bitcoind.stderr").open("ab")
        self._logs = [stdout, stderr]
        self._client = SyncBitcoinRpc(self.rpc_url, user=self.rpc_user, password=self.rpc_password,
                                      timeout=self.rpc_timeout)
        self.process = subprocess.Popen(
            [str(self.bitcoind), f"-datadir={self.datadir}", *self.extra_args],
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
        )
        try:
            wait_for(self._rpc_ready, timeout=timeout, description="bitcoind RPC")
        except BaseException:
            self._kill()
            raise

    def _rpc_ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise BitcoindError(
                f"bitcoind exited with code {self.process.returncode} during startup\n"
                f"stderr:\n{_tail(self.datadir / 'bitcoind.stderr')}\n"
                f"debug.log:\n{_tail(self.debug_log)}"
            )
        try:
            self.rpc("getblockchaininfo")
        except ServiceUnavailable as exc:
            if exc.code == "node_auth":
                raise
            return False  # not listening yet, RPC server not up, or still warming up
        return True

    def stop(self, timeout: float = 30.0) -> None:
        """Ask bitcoind to stop via RPC, wait, kill it if it does not exit in time."""
        proc = self.process
        if proc is not None and proc.poll() is None:
            try:
                self.rpc("stop")
            except (ServiceUnavailable, RpcError):
                proc.terminate()
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        self._cleanup()

    def _kill(self) -> None:
        proc = self.process
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        self._cleanup()

    def _cleanup(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        for f in self._logs:
            f.close()
        self._logs = []

    def __enter__(self) -> Self:
        if not self.running:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --------------------------------------------------------------- RPC
    def rpc(self, method: str, *params: Any, wallet: str | None = None) -> Any:
        """Call a JSON-RPC method and return its ``result``.

        ``wallet`` routes the call to ``/wallet/<name>`` (needed when several
        wallets are loaded). Raises :class:`RpcError` (the shared one) on an RPC error.
        """
        if self._client is None:
            raise BitcoindError("node is not started")
        return self._client.call(method, *params, wallet=wallet)

    # ----------------------------------------------------------- helpers
    def create_wallet(self, name: str = "w") -> str:
        """Create (and load) a wallet; it becomes the default for :meth:`mine`."""
        self.rpc("createwallet", name)
        self.wallet = name
        self._mining_address = None
        return name

    def new_address(self, wallet: str | None = None) -> str:
        address: str = self.rpc("getnewaddress", wallet=wallet or self.wallet)
        return address

    def mine(self, n: int, address: str | None = None) -> list[str]:
        """Mine ``n`` blocks to ``address`` (default: an address of the node's wallet)."""
        if address is None:
            if self._mining_address is None:
                if self.wallet is None:
                    raise BitcoindError("mine() without an address needs create_wallet() first")
                self._mining_address = self.new_address()
            address = self._mining_address
        hashes: list[str] = self.rpc("generatetoaddress", n, address)
        return hashes

    def setmocktime(self, t: int) -> None:
        """Set the node's clock (UNIX seconds); 0 returns to the system clock."""
        self.rpc("setmocktime", int(t))

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<RegtestNode {self.datadir} rpcport={self.rpc_port} {state}>"


FUNDED_HEIGHT = 200
"""Blocks mined by `funded_node`: 100 mature coinbases. Not 101: the wallet's anti-fee-sniping gives one
transaction in ten an nLockTime up to 99 blocks back, and below height 121 that can be 21, which Bitcoin
Knots refuses as a CAT-21 "parasite" (`-rejectparasites`, on by default): "Transaction cannot be broadcast
immediately, parasite-cat21", the funding never reaches the mempool and the test fails at random."""


@contextmanager
def funded_node(datadir: Path) -> Iterator[RegtestNode]:
    """A started node in datadir with wallet "w" and FUNDED_HEIGHT blocks mined; stopped on exit."""
    with RegtestNode(datadir, find_bitcoind()) as node:
        node.create_wallet("w")
        node.mine(FUNDED_HEIGHT)
        yield node
