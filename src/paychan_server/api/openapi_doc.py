"""The OpenAPI 3.0 document of PayChanServer's public API: the v1 (spec 6.2), v2-seed (6.3) and v2.3.0 (6.4)
route families, plus /health, /openapi.json and /docs. Built once, as plain data."""

from __future__ import annotations

from typing import Any

__all__ = ["build_document"]

Json = dict[str, Any]

HEX64 = "^[0-9a-fA-F]{64}$"
PUBKEY = "^0[23][0-9a-fA-F]{64}$"
U32 = {"type": "integer", "minimum": 0, "maximum": 4294967295}
EXP_TIME = {"type": "integer", "minimum": 500000000, "maximum": 4294967295,
            "description": "Channel expiry, UNIX time (block heights are refused, spec 7.1)"}
SAT = {"type": "integer", "minimum": 0, "description": "satoshis"}


def _ref(name: str) -> Json:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(props: Json, required: list[str] | None = None, description: str = "") -> Json:
    schema: Json = {"type": "object", "properties": props, "required": required or list(props)}
    if description:
        schema["description"] = description
    return schema


SCHEMAS: Json = {
    "Error": _obj({
        "type": {"type": "string", "enum": ["payment_error", "application_error"]},
        "code": {"type": "string", "description": "stable machine-readable code"},
        "message": {"type": "string", "description": "human-readable; clients must not parse it"},
    }, description="Every error; the message is also the HTTP reason phrase (spec 6.1)"),
    "FundingInfoV1": _obj({
        "server_pubkey": {"type": "string", "pattern": PUBKEY},
        "funding_address_copy": {"type": "string"},
        "open_price": SAT,
        "funding_tx_min_conf": {"type": "integer", "minimum": 0},
        "settlement_period_hours": {"type": "integer", "minimum": 0},
    }),
    "FundingInfo": _obj({
        "server_pubkey": {"type": "string", "pattern": PUBKEY},
        "dust_limit": SAT,
        "funding_address_copy": {"type": "string"},
        "redeem_script_copy": {"type": "string", "description": "v2-seed only (client_pubkey first)"},
        "open_price": SAT,
        "funding_tx_min_conf": {"type": "integer", "minimum": 0},
        "settlement_period_hours": {"type": "integer", "minimum": 0},
        "min_duration_hours": {"type": "integer", "minimum": 0},
    }, ["server_pubkey", "dust_limit", "funding_address_copy", "open_price", "funding_tx_min_conf",
        "settlement_period_hours", "min_duration_hours"]),
    "ChannelLocation": _obj({"channel_uri": {"type": "string", "description": "absolute URL of the channel"}}),
    "PaymentResultV1": _obj({
        "channel_status": {"type": "string", "enum": ["open", "closed"]},
        "channel_value_left": SAT,
        "value_received": SAT,
        "settlement_txid": {"type": "string", "nullable": True, "pattern": HEX64},
    }),
    "PaymentResult": _obj({
        "channel_status": {"type": "string", "enum": ["open", "closed"]},
        "channel_value_left": SAT,
        "value_received": SAT,
        "settlement_txid": {"type": "string", "nullable": True, "pattern": HEX64},
        "application_data": {"type": "string", "description": "from the value callback (spec 10.6); '' if none"},
    }),
    "PaymentData": _obj({
        "change_value": SAT,
        "signature_data": {"type": "string", "description": "hex: DER signature (seed) or DER + sighash byte"},
        "sighash_flag": {"type": "string", "description": "hex sighash byte, v2-seed: 83 or 82"},
        "funding_txid": {"type": "string", "pattern": HEX64},
        "funding_vout": U32,
        "redeem_script": {"type": "string", "description": "hex"},
        "change_address": {"type": "string"},
    }, ["change_value", "signature_data"], "Full payment (opening; v2-seed) or CompactPaymentData (v2.3.0)"),
    "Payment": _obj({
        "payment_data": _ref("PaymentData"),
        "application_data": {"type": "string", "description": "forwarded to the value callback"},
    }, ["payment_data"]),
}


def _param(name: str, where: str, schema: Json, description: str = "", required: bool = True) -> Json:
    p: Json = {"name": name, "in": where, "required": required, "schema": schema}
    if description:
        p["description"] = description
    return p


TXID = _param("funding_txid", "path", {"type": "string", "pattern": HEX64}, "funding txid, display order")
VOUT = _param("funding_vout", "path", U32)
PK = _param("client_pubkey", "path", {"type": "string", "pattern": PUBKEY}, "compressed client key, hex")
EXP = _param("exp_time", "path", EXP_TIME)
SECRET = _param("secret", "query", {"type": "string"},
                "hex SHA256 of the opening payment's signature push; bare or JSON-quoted (spec 6.4)")
V1_PAYMENT = _param("payment", "query", {"type": "string", "pattern": "^[A-Za-z0-9_-]+=*$"},
                    "v1 payment payload, base64url (spec 5.1)")
V1_PK = _param("client_pubkey", "query", {"type": "string", "pattern": PUBKEY})
V1_EXP = _param("exp_time", "query", EXP_TIME)
ERRORS = ("400", "404", "409", "410", "415", "503")
ERROR_TEXT = {"400": "malformed input or invalid payment", "403": "refused", "404": "no such channel",
              "405": "method not allowed", "409": "channel exists / funding not confirmed / conflict",
              "410": "channel closing or closed", "415": "Content-Type must be application/json",
              "500": "internal error (answered generically)", "503": "a dependency is unavailable"}


def _json(schema: Json) -> Json:
    return {"application/json": {"schema": schema}}


def _op(op_id: str, tag: str, summary: str, ok: tuple[str, str, Json | None], params: list[Json] | None = None,
        body: bool = False, errors: tuple[str, ...] = ERRORS, headers: Json | None = None) -> Json:
    status, text, schema = ok
    success: Json = {"description": text}
    if schema is not None:
        success["content"] = _json(schema)
    if headers:
        success["headers"] = headers
    responses: Json = {status: success}
    for code in errors:
        responses[code] = {"description": ERROR_TEXT[code], "content": _json(_ref("Error"))}
    op: Json = {"operationId": op_id, "tags": [tag], "summary": summary, "parameters": params or [],
                "responses": responses}
    if body:
        op["requestBody"] = {"required": True, "content": _json(_ref("Payment"))}
    return op


def _options(op_id: str, tag: str, params: list[Json]) -> Json:
    return {"operationId": op_id, "tags": [tag], "summary": "CORS preflight (spec 6.1)", "parameters": params,
            "responses": {"200": {"description": "CORS headers, empty body"}}}


LOCATION = {"Location": {"description": "absolute URL of the channel", "schema": {"type": "string"}}}


def _v1_paths() -> Json:
    chan = [TXID, VOUT]
    pay = _op("v1Pay", "v1", "Pay: a newer payment with less change (spec 7.3)",
              ("200", "payment stored", _ref("PaymentResultV1")), [*chan, V1_PAYMENT,
                                                                 _param("change_address", "query", {"type": "string"},
                                                                        "accepted and ignored", False)])
    return {
        "/v1/fundingInfo": {"get": _op(
            "v1FundingInfo", "v1", "Funding information for a client key and expiry",
            ("200", "funding info; Location = the open URL", _ref("FundingInfoV1")), [V1_PK, V1_EXP],
            errors=("400",), headers=LOCATION)},
        "/v1/channels/new": {
            "post": _op("v1Open", "v1", "Open a channel with its first payment (spec 7.2)",
                        ("201", "channel open; Location = channel URL", _ref("PaymentResultV1")),
                        [V1_PK, V1_EXP, _param("change_address", "query", {"type": "string"}), V1_PAYMENT,
                         _param("test", "query", {"type": "string"}, "ignored (spec 9)", False)],
                        headers=LOCATION),
            "options": _options("v1OpenOptions", "v1", []),
        },
        "/v1/channels/{funding_txid}/{funding_vout}": {
            "put": pay,
            "delete": _op("v1Close", "v1", "Close with the latest payment; 202 (spec 6.2)",
                          ("202", "settled", _ref("PaymentResultV1")), [*chan, V1_PAYMENT]),
            "options": _options("v1ChannelOptions", "v1", chan),
        },
        "/v1/channels/{funding_txid}/{funding_vout}/pay": {
            "put": {**pay, "operationId": "v1PayAlias", "summary": "Alias of PUT /v1/channels/{txid}/{vout}"},
            "options": _options("v1PayOptions", "v1", chan),
        },
    }


def _v2_paths() -> Json:
    first = _param("first", "path", {"type": "string"}, "client_pubkey (v2-seed, rbpcp-api) or exp_time (v2.3.0)")
    second = _param("second", "path", {"type": "string"}, "exp_time, or client_pubkey when exp_time is first")
    seed = [PK, EXP, TXID, VOUT]
    v23 = [TXID, VOUT, SECRET]
    result = _ref("PaymentResult")
    return {
        "/v2/funding/{first}/{second}/info": {"get": _op(
            "v2FundingInfo", "v2", "Funding information; either parameter order (spec 6.3 #1, 6.4 #1)",
            ("200", "funding info", _ref("FundingInfo")), [first, second], errors=("400",))},
        "/v2/funding/{client_pubkey}/{exp_time}/begin_open": {"get": _op(
            "v2SeedBeginOpen", "v2-seed", "The confirmed funding output's channel URL (spec 6.3 #2)",
            ("200", "channel location", _ref("ChannelLocation")), [PK, EXP], errors=("400", "409", "503"))},
        "/v2/channels/{client_pubkey}/{exp_time}/{funding_txid}/{funding_vout}": {
            "post": _op("v2SeedOpen", "v2-seed", "Open with the opening payment (spec 6.3 #3)",
                        ("201", "channel open", result), seed, body=True, headers=LOCATION),
            "put": _op("v2SeedPay", "v2-seed", "Pay (spec 6.3 #4)", ("200", "payment stored", result), seed,
                       body=True),
            "options": _options("v2SeedChannelOptions", "v2-seed", seed),
        },
        "/v2/channels/{client_pubkey}/{exp_time}/{funding_txid}/{funding_vout}/close": {
            "put": _op("v2SeedClose", "v2-seed", "Close with a zero-value closing payment (spec 6.3 #5)",
                       ("200", "settled", result), seed, body=True),
            "options": _options("v2SeedCloseOptions", "v2-seed", seed),
        },
        "/v2/channels/{funding_txid}/{funding_vout}": {
            "post": _op("v23Open", "v2.3.0", "Open with a full PaymentData (spec 6.4 #2)",
                        ("201", "channel open", result), v23, body=True, headers=LOCATION),
            "put": _op("v23Pay", "v2.3.0", "Pay with a CompactPaymentData (spec 6.4 #3)",
                       ("200", "payment stored", result), v23, body=True),
            "options": _options("v23ChannelOptions", "v2.3.0", [TXID, VOUT]),
        },
        "/v2/channels/{funding_txid}/{funding_vout}/close": {
            "put": _op("v23Close", "v2.3.0", "Close; the closing payment's value is the fee (spec 6.4 #4)",
                       ("200", "settled", result), v23, body=True),
            "options": _options("v23CloseOptions", "v2.3.0", [TXID, VOUT]),
        },
    }


def _meta_paths() -> Json:
    return {
        "/health": {"get": _op("health", "meta", "Liveness", ("200", "alive", _obj({"ok": {"type": "boolean"}})),
                               errors=())},
        "/openapi.json": {"get": _op("openapi", "meta", "This document",
                                     ("200", "OpenAPI 3 document", {"type": "object"}), errors=())},
        "/docs": {"get": {"operationId": "docs", "tags": ["meta"], "summary": "This document as an HTML page",
                          "responses": {"200": {"description": "HTML",
                                                "content": {"text/html": {"schema": {"type": "string"}}}}}}},
    }


def build_document(version: str = "0.1.0") -> Json:
    """The whole document."""
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "paychan: RESTful Bitcoin Payment Channel Protocol server",
            "version": version,
            "description": "Bitcoin CLTV payment channels: v1, v2-seed and v2.3.0 route families over one core. "
                           "Amounts are integer satoshis. Errors carry a JSON body and the message as reason "
                           "phrase. The management API (own loopback port) is documented in docs/OPERATOR.md.",
        },
        "servers": [{"url": "/"}],
        "tags": [{"name": "v1", "description": "spec 6.2: query-string API, byte-compatible with the JS client"},
                 {"name": "v2-seed", "description": "spec 6.3: JSON bodies, channel = (key, expiry, outpoint)"},
                 {"name": "v2.3.0", "description": "spec 6.4: channel = outpoint + secret"},
                 {"name": "v2", "description": "shared by both v2 layouts"},
                 {"name": "meta", "description": "health and documentation"}],
        "paths": {**_v1_paths(), **_v2_paths(), **_meta_paths()},
        "components": {"schemas": SCHEMAS},
    }
