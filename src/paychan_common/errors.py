"""The error tree of the protocol core, with stable codes and their HTTP status (spec 7.5).

PaychanError
 ├── InvalidInput            400  malformed parameter, body, hex, address, key, amount
 │    └── InvalidPayment      400  a payment breaks a rule of spec 7.3 (signature, dust, order, ...)
 ├── FundingError            409  funding not found, too few confirmations, wrong script (v1: 400)
 ├── ChannelExists           409  the channel (or an open one for this key) exists
 ├── ChannelNotFound         404  no such channel (also a wrong v2.3.0 secret)
 ├── ChannelGone             410  channel closing or closed
 ├── Conflict                409  a compare-and-set lost against a concurrent update
 ├── ServiceUnavailable      503  a dependency (node, signer, store) is unreachable
 ├── SigningRefused          403  the SigningService refuses a request
 ├── Unauthorized            401  missing or wrong bearer token
 └── InternalError           500  anything else (answered generically)
"""

from __future__ import annotations


class PaychanError(Exception):
    """Base of every error the project raises on purpose."""

    status: int = 500
    code: str = "internal_error"
    kind: str = "application_error"
    headers: dict[str, str] | None = None  # extra response headers, e.g. the Location of an existing channel

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def to_json(self) -> dict[str, str]:
        """The v2 error body (spec 6.1) plus the stable code."""
        return {"type": self.kind, "code": self.code, "message": self.message}


class InvalidInput(PaychanError):
    status = 400
    code = "invalid_input"


class InvalidPayment(InvalidInput):
    code = "invalid_payment"
    kind = "payment_error"


class FundingError(PaychanError):
    status = 409
    code = "funding_error"


class ChannelExists(PaychanError):
    status = 409
    code = "channel_exists"


class ChannelNotFound(PaychanError):
    status = 404
    code = "channel_not_found"


class ChannelGone(PaychanError):
    status = 410
    code = "channel_closed"


class Conflict(PaychanError):
    status = 409
    code = "state_conflict"


class ServiceUnavailable(PaychanError):
    status = 503
    code = "service_unavailable"


class SigningRefused(PaychanError):
    status = 403
    code = "signing_refused"


class Unauthorized(PaychanError):
    status = 401
    code = "unauthorized"


class InternalError(PaychanError):
    status = 500
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
