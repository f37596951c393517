"""Issue 11 on real processes: private files after a real start, weak or readable token files refused,
malformed HTTP logged as one line without traceback, one PayChanServer per port."""

from __future__ import annotations

import logging
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tomli_w

from tests.support.ports import reserve_port
from tests.support.services import PROJECT_ROOT, Services, wait_until

log = logging.getLogger("paychan.tests")
pytestmark = pytest.mark.functional


@pytest.fixture(scope="module")
def services(shared_services: Services) -> Services:
    """The three services in debug mode, started once for this module (tests/support/plugin.py)."""
    return shared_services


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_files_are_private_after_a_real_start(services: Services) -> None:
    log.info("the LevelDB directory is 0700 and every file the services created is 0600")
    db = services.root / "chanstore"
    assert _mode(db) == 0o700
    files = [p for p in db.iterdir() if p.is_file()]
    assert files, "LevelDB wrote no files"
    assert {p.name: _mode(p) for p in files} == {p.name: 0o600 for p in files}
    assert _mode(services.root / "internal.token") == 0o600


def _raw(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


MALFORMED = {
    "long request line": b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    "long header": b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n",
    "negative Content-Length": b"POST /v1/channels/new HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
}


def test_malformed_requests_log_one_line_each_without_traceback(services: Services) -> None:
    log.info("three malformed requests: each gets 400, and at most one log line, no traceback")
    before = {s.name: s.logfile.read_text(errors="replace") for s in (services.server, services.store, services.signer)}
    for name, data in MALFORMED.items():
        answer = _raw(services.port, data)
        assert answer.split(b"\r\n", 1)[0].split(b" ")[1] == b"400", (name, answer[:200])
    def new_text() -> dict[str, str]:
        return {s.name: s.logfile.read_text(errors="replace")[len(before[s.name]):]
                for s in (services.server, services.store, services.signer)}

    # the line is written after the answer: wait for it (each of the three is within the rate limit's burst)
    wait_until(lambda: new_text()[services.server.name].count("malformed HTTP request") >= len(MALFORMED), 15)
    logs = new_text()
    new = "\n".join(text.strip() for text in logs.values() if text.strip())
    assert "Traceback" not in new and "ERROR" not in new
    lines = [line for line in new.splitlines() if "malformed HTTP request" in line]
    assert len(lines) == len(MALFORMED), new  # one line each
    assert all("level=WARNING" in line and "aaaa" not in line and "bbbb" not in line for line in lines)
    server_lines = [line for line in logs[services.server.name].splitlines() if line.strip()]
    assert server_lines == lines, new  # nothing else was written for them


def _start(config: Path, timeout: float = 10.0) -> tuple[subprocess.CompletedProcess[str], float]:
    begin = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "paychan_server", str(config)], capture_output=True, text=True,
                          cwd=PROJECT_ROOT, timeout=timeout, check=False)
    return done, time.monotonic() - begin


def test_a_second_server_on_a_served_port_refuses_within_3_s(services: Services) -> None:
    log.info("a second PayChanServer on the served port exits non-zero, naming the port")
    done, took = _start(services.root / "server.toml")
    assert done.returncode != 0
    assert f"port {services.port}" in done.stderr, done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert took < 3.0, took


def _config_with_token(services: Services, token_file: Path) -> Path:
    data = dict(services.configs["server"], auth={"token_file": str(token_file)},
                listen={"host": "127.0.0.1", "port": reserve_port()})
    path = token_file.parent / "server-other-token.toml"
    path.write_text(tomli_w.dumps(data))
    return path


@pytest.mark.parametrize(("text", "mode", "needle"), [
    ("a" * 64, 0o644, "accessible by group or others"),
    ("0123456789abcdef" * 2, 0o600, "weak token"),  # 32 characters
])
def test_token_file_readable_by_others_or_weak_is_refused(services: Services, tmp_path: Path, text: str, mode: int,
                                                          needle: str) -> None:
    log.info("a token file others can read, or a short token, stops the start with one line")
    token = tmp_path / "token"
    token.write_text(text + "\n")
    token.chmod(mode)
    done, _ = _start(_config_with_token(services, token))
    assert done.returncode == 2
    assert needle in done.stderr and str(token) in done.stderr, done.stderr
    assert done.stderr.count("\n") == 1, done.stderr


def test_a_port_held_by_another_program_is_refused_too(services: Services) -> None:
    log.info("a port some other program listens on: the server says so and exits non-zero")
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen(1)
        port = other.getsockname()[1]
        data = dict(services.configs["server"], listen={"host": "127.0.0.1", "port": port})
        config = services.root / "server-taken-port.toml"
        config.write_text(tomli_w.dumps(data))
        done, took = _start(config)
    assert done.returncode != 0 and f"port {port}" in done.stderr and done.stderr.count("\n") == 1, done.stderr
    assert took < 3.0, took
