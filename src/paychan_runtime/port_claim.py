"""One PayChanServer per port: its workers share the port through SO_REUSEPORT, a second instance does not.

SO_REUSEPORT lets any process of the same user bind a served port and take part of its traffic. Before it
starts its workers, the server claims the port: it binds an abstract unix socket named after the port (the
kernel frees it when the process dies, so a crash leaves no stale lock), then checks that nothing answers
on the port and that the port can be bound at all. Standard library only: the claim is made before the
server imports its heavy dependencies, so a second instance fails fast."""

from __future__ import annotations

import contextlib
import errno
import socket


class PortInUse(Exception):
    """The port is served by another process (or cannot be bound)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def reuseport_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket with SO_REUSEPORT, shareable by several worker processes."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(1024)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def _probe_host(host: str) -> str:
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "::1"
    return host


def _answers(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((_probe_host(host), port), timeout=timeout):
            return True
    except OSError:
        return False


def claim_port(host: str, port: int, name: str = "paychan-server") -> socket.socket | None:
    """Claim host:port for this process and its workers; PortInUse naming the port if another holds it."""
    if port == 0:  # an ephemeral port is nobody else's
        return None
    lock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        lock.bind(f"\0{name}:port:{port}")
    except OSError as exc:
        lock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(f"port {port} is already served by another {name}; stop it first") from None
        raise PortInUse(f"cannot claim port {port}: {exc.strerror}") from None
    try:
        if _answers(host, port):
            raise PortInUse(f"port {port} on {host} is already served by another process")
        try:
            reuseport_socket(host, port).close()
        except OSError as exc:
            raise PortInUse(f"cannot listen on {host} port {port}: {exc.strerror}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            lock.close()
        raise
    return lock
