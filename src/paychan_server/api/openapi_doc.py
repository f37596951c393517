"""The OpenAPI 3.1 document of PayChanServer's public API (v1 spec 6.2, v2-seed 6.3, v2.3.0 6.4, plus /health,
/openapi.json and /docs), generated from the route table (`routes.py`) and the wire models the handlers
serialize (`paychan_common.messages`)."""

from __future__ import annotations

import copy
import re
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from paychan_common.messages import V1_RESULT_FIELDS, ErrorBody, PaymentResult
from paychan_common.state import Family

from .routes import ROUTES, Query, Route, preflight_paths

__all__ = ["build_document"]

Json = dict[str, Any]

HEX64 = {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"}
PATH_PARAMS: dict[str, Json] = {
    "txid": {"schema": HEX64, "description": "funding_txid, display order"},
    "vout": {"schema": {"type": "integer", "minimum": 0, "maximum": 4294967295}, "description": "funding_vout"},
    "pk": {"schema": {"type": "string", "pattern": "^0[23][0-9a-fA-F]{64}$"},
           "description": "client_pubkey: compressed key, hex"},
    "exp": {"schema": {"type": "integer", "minimum": 500000000, "maximum": 4294967295},
            "description": "exp_time, UNIX time (block heights are refused, spec 7.1)"},
    "a": {"schema": {"type": "string"}, "description": "client_pubkey (v2-seed, rbpcp-api) or exp_time (v2.3.0)"},
    "b": {"schema": {"type": "string"}, "description": "exp_time, or client_pubkey when exp_time is first"},
}
ERROR_TEXT = {400: "malformed input or invalid payment", 404: "no such channel",
              409: "channel exists / funding not confirmed / conflict", 410: "channel closing or closed",
              415: "Content-Type must be application/json", 503: "a dependency is unavailable"}
LOCATION = {"Location": {"description": "absolute URL of the channel", "schema": {"type": "string"}}}
TAGS = [{"name": "v1", "description": "spec 6.2: query-string API, byte-compatible with the JS client"},
        {"name": "v2-seed", "description": "spec 6.3: JSON bodies, channel = (key, expiry, outpoint)"},
        {"name": "v2.3.0", "description": "spec 6.4: channel = outpoint + secret"},
        {"name": "v2", "description": "shared by both v2 layouts"},
        {"name": "meta", "description": "health and documentation"}]
V1_RESULT = "PaymentResultV1"


def _ref(name: str) -> Json:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: Json) -> Json:
    return {"application/json": {"schema": schema}}


def _schemas() -> Json:
    """Every model a route answers or reads, plus the v1 projection of PaymentResult (spec 6.2)."""
    models: list[type[BaseModel]] = [ErrorBody]
    for r in ROUTES:
        models += [m for m in (r.response, r.body) if m is not None and m not in models]
    keys: list[tuple[type[BaseModel], JsonSchemaMode]] = [
        (m, "validation" if any(r.body is m for r in ROUTES) else "serialization") for m in models]
    _, top = models_json_schema(keys, ref_template="#/components/schemas/{model}")
    schemas: Json = top["$defs"]
    v1 = copy.deepcopy(schemas[PaymentResult.__name__])
    v1["properties"] = {k: v for k, v in v1["properties"].items() if k in V1_RESULT_FIELDS}
    v1["required"] = [k for k in V1_RESULT_FIELDS if k in v1.get("required", V1_RESULT_FIELDS)]
    v1["title"] = V1_RESULT
    v1["description"] = "v1 PaymentResult (spec 6.2): without application_data"
    schemas[V1_RESULT] = v1
    return schemas


def _path_params(path: str) -> list[Json]:
    return [{"name": name, "in": "path", "required": True, **PATH_PARAMS[name]}
            for name in re.findall(r"\{([^}]+)\}", path)]


def _query(q: Query) -> Json:
    p: Json = {"name": q.name, "in": "query", "required": q.required, "schema": dict(q.schema)}
    if q.description:
        p["description"] = q.description
    return p


def _response_schema(r: Route) -> Json:
    if r.response is None:
        return {}
    name = V1_RESULT if r.family is Family.V1 and r.response is PaymentResult else r.response.__name__
    return _json(_ref(name))


def _operation(r: Route) -> Json:
    success: Json = {"description": r.answer}
    if r.raw_response is not None:
        ctype, schema = r.raw_response
        success["content"] = {ctype: {"schema": dict(schema)}}
    else:
        success["content"] = _response_schema(r)
    if r.location:
        success["headers"] = LOCATION
    responses: Json = {str(r.status): success}
    for status in r.errors:
        responses[str(status)] = {"description": ERROR_TEXT[status], "content": _json(_ref(ErrorBody.__name__))}
    op: Json = {"operationId": r.operation_id, "tags": [r.tag], "summary": r.summary,
                "parameters": [*_path_params(r.path), *map(_query, r.query)], "responses": responses}
    if r.body is not None:
        op["requestBody"] = {"required": True, "content": _json(_ref(r.body.__name__))}
    return op


def _paths() -> Json:
    paths: Json = {}
    for r in ROUTES:
        paths.setdefault(r.path, {})[r.method.lower()] = _operation(r)
    for path in preflight_paths():
        first = next(r for r in ROUTES if r.path == path)
        paths[path]["options"] = {
            "operationId": first.operation_id + "Options", "tags": [first.tag], "summary": "CORS preflight (spec 6.1)",
            "parameters": _path_params(path), "responses": {"200": {"description": "CORS headers, empty body"}}}
    return paths


def build_document(version: str = "0.1.0") -> Json:
    """The whole document."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "paychan: RESTful Bitcoin Payment Channel Protocol server",
            "version": version,
            "description": "Bitcoin CLTV payment channels: v1, v2-seed and v2.3.0 route families over one core. "
                           "Amounts are integer satoshis. Errors carry a JSON body and the message as reason "
                           "phrase. The management API (own loopback port) is documented in docs/OPERATOR.md.",
        },
        "servers": [{"url": "/"}],
        "tags": TAGS,
        "paths": _paths(),
        "components": {"schemas": _schemas()},
    }
