"""The HTTP edge of the error tree (spec 6.1, 7.5): which status each stable error code gets, as data.

The core (`paychan_common.errors`) knows codes only. An error's status is found by its class's own code,
walking up the class tree (a `ConfigError`, code `config_error`, is an `InvalidInput`: 400); a raise
site's finer code (`funding_not_found`) does not change the status unless an edge's `overrides` names it
(the public v1 routes do: `channel_closed` is 404 there).
"""

from __future__ import annotations

from collections.abc import Mapping

from paychan_common.errors import PaychanError

__all__ = ["STATUS_BY_CODE", "http_status"]

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
