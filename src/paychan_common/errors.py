"""The error tree of the protocol core, with stable codes (spec 7.5). No HTTP here: the status (and any
header) each code gets is a table at the HTTP edge, `paychan_runtime.http_errors`.

PaychanError                 internal_error
 ├── InvalidInput            invalid_input        malformed parameter, body, hex, address, key, amount
 │    └── InvalidPayment      invalid_payment      a payment breaks a rule of spec 7.3 (signature, dust, order)
 ├── FundingError            funding_error        funding not found, too few confirmations, wrong script
 ├── ChannelExists           channel_exists       the channel (or an open one for this key) exists
 ├── ChannelNotFound         channel_not_found    no such channel (also a wrong v2.3.0 secret)
 ├── ChannelGone             channel_closed       channel closing or closed
 ├── Conflict                state_conflict       a compare-and-set lost against a concurrent update
 ├── ServiceUnavailable      service_unavailable  a dependency (node, signer, store) is unreachable
 ├── SigningRefused          signing_refused      the SigningService refuses a request
 ├── Unauthorized            unauthorized         missing or wrong bearer token
 └── InternalError           internal_error       anything else (answered generically)

A raise site may name a finer code (`FundingError(..., code="funding_not_found")`); the class's own code
is the stable family the edge maps.
"""

from __future__ import annotations

from typing import Literal

ErrorKind = Literal["payment_error", "application_error"]


class PaychanError(Exception):
    """Base of every error the project raises on purpose."""

    code: str = "internal_error"
    kind: ErrorKind = "application_error"  # the v2 error body's `type` (spec 6.1)

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class InvalidInput(PaychanError):
    """A malformed parameter, body, hex, address, key or amount."""

    code = "invalid_input"


class InvalidPayment(InvalidInput):
    """A payment that breaks a rule of spec 7.3 (signature, dust, order, ...); a `payment_error`."""

    code = "invalid_payment"
    kind = "payment_error"


class FundingError(PaychanError):
    """The funding is not found, too little confirmed, or pays another script (spec 7.2)."""

    code = "funding_error"


class ChannelExists(PaychanError):
    """The channel, or an open one for this client key, exists (spec 6.5)."""

    code = "channel_exists"


class ChannelNotFound(PaychanError):
    """No such channel (also a wrong v2.3.0 secret, spec 6.4)."""

    code = "channel_not_found"


class ChannelGone(PaychanError):
    """The channel is closing or closed."""

    code = "channel_closed"


class Conflict(PaychanError):
    """A compare-and-set lost against a concurrent update."""

    code = "state_conflict"


class ServiceUnavailable(PaychanError):
    """A dependency (node, signer, store) is unreachable."""

    code = "service_unavailable"


class SigningRefused(PaychanError):
    """The SigningService refuses the request."""

    code = "signing_refused"


class Unauthorized(PaychanError):
    """A missing or wrong bearer token."""

    code = "unauthorized"


class InternalError(PaychanError):
    """Anything else; answered generically."""

    code = "internal_error"


ERROR_CLASSES: dict[str, type[PaychanError]] = {
    cls.__name__: cls
    for cls in (
        PaychanError, InvalidInput, InvalidPayment, FundingError, ChannelExists, ChannelNotFound,
        ChannelGone, Conflict, ServiceUnavailable, SigningRefused, Unauthorized, InternalError,
    )
}


def error_from_json(kind: str, code: str, message: str) -> PaychanError:
    """Rebuild a typed error sent over an internal API (class name in `kind`)."""
    cls = ERROR_CLASSES.get(kind, InternalError)
    return cls(message, code=code)
