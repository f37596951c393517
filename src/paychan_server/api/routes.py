"""The one route table of the public API (spec 6.2-6.4): it registers the aiohttp routes, and it is what the
OpenAPI document (`openapi_doc.py`), the quiet access-log list and the error edge's route family read.

A path is the aiohttp template and the OpenAPI one alike (its names are the metrics' `route` label).
Every path with a non-GET route also answers the CORS preflight (OPTIONS).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aiohttp import web
from pydantic import BaseModel

from paychan_common.messages import (
    ChannelLocation,
    FundingInfo,
    FundingInfoV1,
    Health,
    PaymentBody,
    PaymentResult,
)
from paychan_common.state import Family
from paychan_runtime.http import Handler

from . import meta, v1, v2

__all__ = ["HOT_ROUTES", "ROUTES", "Query", "Route", "add_routes", "family_of_path", "preflight_paths"]

# Error statuses each kind of route documents (the bodies are ErrorBody).
PAYMENT_ERRORS = (400, 404, 409, 410, 415, 503)


@dataclass(frozen=True, slots=True)
class Query:
    """A query parameter: name, JSON schema, description, required."""

    name: str
    schema: Mapping[str, object]
    description: str = ""
    required: bool = True


PUBKEY_Q = Query("client_pubkey", {"type": "string", "pattern": "^0[23][0-9a-fA-F]{64}$"},
                 "compressed client key, hex")
EXP_Q = Query("exp_time", {"type": "integer", "minimum": 500000000, "maximum": 4294967295},
              "channel expiry, UNIX time (block heights are refused, spec 7.1)")
V1_PAYMENT = Query("payment", {"type": "string", "pattern": "^[A-Za-z0-9_-]+=*$"},
                   "v1 payment payload, base64url (spec 5.1)")
SECRET = Query("secret", {"type": "string"},
               "hex SHA256 of the opening payment's signature push; bare or JSON-quoted (spec 6.4)")


@dataclass(frozen=True, slots=True)
class Route:
    """One operation: how it is served, documented and logged."""

    method: str
    path: str
    handler: Handler
    operation_id: str
    summary: str
    family: Family | None  # None: shared by the v2 layouts (tag "v2") or meta (tag "meta")
    status: int  # the success status
    answer: str  # what the success means
    response: type[BaseModel] | None = None  # None: see `raw_response`
    raw_response: tuple[str, Mapping[str, object]] | None = None  # (content type, schema) when not a model
    body: type[BaseModel] | None = None
    query: tuple[Query, ...] = ()
    errors: tuple[int, ...] = PAYMENT_ERRORS
    location: bool = False  # the success carries Location
    hot: bool = False  # the payment hot path or a polled endpoint: logged at DEBUG only
    meta: bool = False

    @property
    def tag(self) -> str:
        """The OpenAPI tag: the family's label, "v2" (both v2 layouts) or "meta"."""
        if self.family is not None:
            return self.family.label
        return "meta" if self.meta else "v2"


V1_CHANNEL = "/v1/channels/{txid}/{vout}"
SEED = "/v2/channels/{pk}/{exp}/{txid}/{vout}"
V23 = "/v2/channels/{txid}/{vout}"
V1, SEED_F, V23_F = Family.V1, Family.V2_SEED, Family.V2_3
CHANGE_IGNORED = Query("change_address", {"type": "string"}, "accepted and ignored", False)

ROUTES: tuple[Route, ...] = (
    Route("GET", "/v1/fundingInfo", v1.funding_info, "v1FundingInfo",
          "Funding information for a client key and expiry", V1, 200, "funding info; Location = the open URL",
          FundingInfoV1, query=(PUBKEY_Q, EXP_Q), errors=(400,), location=True),
    Route("POST", "/v1/channels/new", v1.open_channel, "v1Open", "Open a channel with its first payment (spec 7.2)",
          V1, 201, "channel open; Location = channel URL", PaymentResult,
          query=(PUBKEY_Q, EXP_Q, Query("change_address", {"type": "string"}), V1_PAYMENT,
                 Query("test", {"type": "string"}, "ignored (spec 9)", False)), location=True),
    Route("PUT", V1_CHANNEL, v1.pay, "v1Pay", "Pay: a newer payment with less change (spec 7.3)", V1, 200,
          "payment stored", PaymentResult, query=(V1_PAYMENT, CHANGE_IGNORED), hot=True),
    Route("DELETE", V1_CHANNEL, v1.close, "v1Close", "Close with the latest payment; 202 (spec 6.2)", V1, 202,
          "settled", PaymentResult, query=(V1_PAYMENT,)),
    Route("PUT", V1_CHANNEL + "/pay", v1.pay, "v1PayAlias", "Alias of PUT /v1/channels/{txid}/{vout}", V1, 200,
          "payment stored", PaymentResult, query=(V1_PAYMENT, CHANGE_IGNORED), hot=True),
    Route("GET", "/v2/funding/{a}/{b}/info", v2.funding_info, "v2FundingInfo",
          "Funding information; either parameter order (spec 6.3 #1, 6.4 #1)", None, 200, "funding info",
          FundingInfo, errors=(400,)),
    Route("GET", "/v2/funding/{a}/{b}/begin_open", v2.begin_open, "v2SeedBeginOpen",
          "The confirmed funding output's channel URL (spec 6.3 #2)", SEED_F, 200, "channel location",
          ChannelLocation, errors=(400, 409, 503)),
    Route("POST", SEED, v2.seed_open, "v2SeedOpen", "Open with the opening payment (spec 6.3 #3)", SEED_F, 201,
          "channel open", PaymentResult, body=PaymentBody, location=True),
    Route("PUT", SEED, v2.seed_pay, "v2SeedPay", "Pay (spec 6.3 #4)", SEED_F, 200, "payment stored", PaymentResult,
          body=PaymentBody, hot=True),
    Route("PUT", SEED + "/close", v2.seed_close, "v2SeedClose", "Close with a zero-value closing payment (spec 6.3 #5)",
          SEED_F, 200, "settled", PaymentResult, body=PaymentBody),
    Route("POST", V23, v2.v23_open, "v23Open", "Open with a full PaymentData (spec 6.4 #2)", V23_F, 201,
          "channel open", PaymentResult, body=PaymentBody, query=(SECRET,), location=True),
    Route("PUT", V23, v2.v23_pay, "v23Pay", "Pay with a CompactPaymentData (spec 6.4 #3)", V23_F, 200,
          "payment stored", PaymentResult, body=PaymentBody, query=(SECRET,), hot=True),
    Route("PUT", V23 + "/close", v2.v23_close, "v23Close",
          "Close; the closing payment's value is the fee (spec 6.4 #4)", V23_F, 200, "settled", PaymentResult,
          body=PaymentBody, query=(SECRET,)),
    Route("GET", "/health", meta.health, "health", "Liveness", None, 200, "alive", Health, errors=(), hot=True,
          meta=True),
    Route("GET", "/openapi.json", meta.openapi_json, "openapi", "This document", None, 200, "OpenAPI 3 document",
          raw_response=("application/json", {"type": "object"}), errors=(), hot=True, meta=True),
    Route("GET", "/docs", meta.docs, "docs", "This document as an HTML page", None, 200, "HTML",
          raw_response=("text/html", {"type": "string"}), errors=(), hot=True, meta=True),
)

# The quiet access-log list: (method, route template); /health in any method (HEAD too).
HOT_ROUTES: tuple[tuple[str, str], ...] = tuple(
    ("*" if r.path == "/health" else r.method, r.path) for r in ROUTES if r.hot)

_FAMILY_BY_PATH: dict[str, Family] = {r.path: r.family for r in ROUTES if r.family is not None}


def family_of_path(template: str) -> Family | None:
    """The route family served at a path template (None for shared and meta paths)."""
    return _FAMILY_BY_PATH.get(template)


def preflight_paths() -> list[str]:
    """Paths that answer OPTIONS (CORS preflight): those with a non-GET route, in table order."""
    return list(dict.fromkeys(r.path for r in ROUTES if r.method != "GET"))


def add_routes(app: web.Application, options: Handler) -> None:
    """Register every route of the table, and OPTIONS on the preflight paths."""
    for r in ROUTES:
        if r.method == "GET":
            app.router.add_get(r.path, r.handler)  # with HEAD
        else:
            app.router.add_route(r.method, r.path, r.handler)
    for path in preflight_paths():
        app.router.add_route("OPTIONS", path, options)
