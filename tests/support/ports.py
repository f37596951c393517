"""Loopback ports for test servers, reserved so that nothing else is handed them before our server binds.

The technique of pyln-testing (`ephemeral-port-reserve`): bind port 0, listen, connect, accept and close, so the
port sits in TIME_WAIT for a minute. The kernel then hands it to no other bind(0), in this process or any other,
while servers that set SO_REUSEADDR (aiohttp, bitcoind, http.server) can bind it. Binding then releasing, as the
old `free_port` helpers did, left a window in which another test could take the port."""

from __future__ import annotations

from ephemeral_port_reserve import reserve

__all__ = ["reserve_port"]


def reserve_port() -> int:
    """A 127.0.0.1 port reserved for a server of ours (see the module docstring)."""
    return int(reserve("127.0.0.1"))
