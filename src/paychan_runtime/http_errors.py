"""The HTTP edge of the error tree (spec 6.1, 7.5): which status each stable error code gets, as data.

The core (`paychan_common.errors`) knows codes only. An error's status is found by its class's own code,
walking up the class tree (a `ConfigError`, code `config_error`, is an `InvalidInput`: 400); a raise
site's finer code (`funding_not_found`) does not change the status unless an edge's `overrides` names it
(the public v1 routes do: `channel_closed` is 404 there).
"""

from __future__ import annotations

from collections.abc import Mapping

from paychan_common.errors import InternalError, PaychanError, ServiceUnavailable, SigningRefused, Unauthorized

__all__ = ["GENERIC_500", "GENERIC_503", "STATUS_BY_CODE", "http_status", "public_error"]

STATUS_BY_CODE: Mapping[str, int] = {
    "invalid_input": 400,
    "unauthorized": 401,
    "signing_refused": 403,
    "channel_not_found": 404,
    "funding_error": 409,
    "channel_exists": 409,
    "state_conflict": 409,
    "channel_closed": 410,
    "internal_error": 500,
    "bitcoind_error": 502,
    "service_unavailable": 503,
}


def _class_status(cls: type[PaychanError]) -> int:
    for klass in cls.__mro__:
        code = vars(klass).get("code")
        if isinstance(code, str) and code in STATUS_BY_CODE:
            return STATUS_BY_CODE[code]
    return 500


def http_status(err: PaychanError, overrides: Mapping[str, int] | None = None) -> int:
    """The status of `err`: an edge's override for its code, else the table entry of its class's code."""
    if overrides:
        status = overrides.get(err.code)
        if status is not None:
            return status
    return _class_status(type(err))


GENERIC_503 = "service temporarily unavailable; retry later"
GENERIC_500 = "internal server error"


def public_error(err: PaychanError, status: int) -> tuple[PaychanError, int]:
    """What a public client may read of `err` answered with `status` (spec 7.5): a 503 stays 503 and any other
    internal failure (5xx: the store, the node's 502, ...) or internal refusal (the signer's 403, an internal
    401) becomes 500, each with a generic text, since theirs names internal services, exception classes or
    caps. Any other error is returned as it is."""
    if status == 503:
        return ServiceUnavailable(GENERIC_503), 503
    if status >= 500 or isinstance(err, SigningRefused | Unauthorized):
        return InternalError(GENERIC_500), 500
    return err, status
