"""The client's error tree.

ClientError
 ├── InvalidArgument        a caller-supplied value is unusable (address, key, amount, family)
 ├── ChannelStateError      the local channel cannot do this (closed, not enough value left)
 ├── TransportError         the HTTP request did not complete (connection, timeout)
 ├── ServerRejected         the server answered with an error status (v2 JSON body or v1 reason phrase)
 ├── BadResponse            the server answered success, but with something the protocol does not allow
 │    └── AddressMismatch   the server's funding address / redeem script differ from our derivation
 └── StateFileError         the channel state file is missing, unreadable or invalid

A bitcoind call raises the shared `paychan_runtime.bitcoin_rpc` errors instead: RpcError (the node's
JSON-RPC error) or ServiceUnavailable (node unreachable, credentials refused, still starting).
"""

from __future__ import annotations

from paychan_common.state import Family


class ClientError(Exception):
    """Base of every error the client raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(ClientError):
    """A caller-supplied value is unusable."""


class ChannelStateError(ClientError):
    """The operation does not fit the local channel state."""


class TransportError(ClientError):
    """The HTTP exchange failed before a response arrived."""


class ServerRejected(ClientError):
    """The server refused a request (spec 6.1): status code, message and stable code when sent."""

    def __init__(self, status: int, message: str, code: str | None = None, *, location: str | None = None) -> None:
        text = f"server rejected the request ({status}): {message}" if message else f"server answered {status}"
        super().__init__(text)
        self.status = status
        self.server_message = message
        self.code = code
        self.location = location


class BadResponse(ClientError):
    """The server's answer breaks the protocol."""


class AddressMismatch(BadResponse):
    """The server's funding address or redeem script is not the one we derive (spec 3.3)."""


class StateFileError(ClientError):
    """The state file cannot be read, written or understood."""


def server_closed(exc: ServerRejected, family: Family) -> bool:
    """The server's answer says the channel is closed or closing: 410, or 404 for v1 (spec 6.2, 7.3)."""
    return exc.status == 410 or (family is Family.V1 and exc.status == 404)
