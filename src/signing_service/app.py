"""The SigningService HTTP application (spec 10.3, redesigned as bearer-authenticated JSON).

Routes: GET /health (open), GET /pubkey (the key, the destination and the signing policy: max_fee and
dust_limit, spec 8.6), POST /sign_settlement. Every signature is remembered durably (memory.py) before it is
returned. Errors are JSON
`{"error": {"class", "code", "message"}}`; the key is never logged or returned.
"""

from __future__ import annotations

import logging
from pathlib import Path

from aiohttp import web

from paychan_common.errors import InvalidInput, SigningRefused
from paychan_common.keys import PrivateKey
from paychan_common.settlement import sign_settlement
from paychan_runtime.config import load_or_create_secret
from paychan_runtime.http import (
    bearer_auth_middleware,
    http_error_json_middleware,
    internal_error_middleware,
    json_response,
    read_json,
)
from paychan_runtime.metrics import metrics_handler

from .config import SigningConfig
from .contract import MAX_BODY_BYTES, SettlementRequest, SignedSettlementAnswer, SignerInfo, SignerPolicy
from .funding import FundingCheck, make_funding_check
from .memory import Signed, SigningMemory
from .metrics import SIGNING_METRICS, SigningMetrics, signing_middlewares
from .policy import SigningPolicy, approve

log = logging.getLogger("paychan.signing")
audit = logging.getLogger("paychan.signing.audit")

CONFIG_KEY = web.AppKey("config", SigningConfig)
KEY_KEY = web.AppKey("key", PrivateKey)
POLICY_KEY = web.AppKey("policy", SigningPolicy)
FUNDING_KEY: web.AppKey[FundingCheck] = web.AppKey("funding", FundingCheck)
MEMORY_KEY = web.AppKey("memory", SigningMemory)

OPEN_PATHS = frozenset({"/health", "/metrics"})  # /metrics: counters and latencies only, loopback


async def health(_request: web.Request) -> web.Response:
    """GET /health: liveness, no auth."""
    return json_response({"ok": True})


async def pubkey(request: web.Request) -> web.Response:
    """GET /pubkey: the server public key, the network, the settlement destination and the policy (spec 8.6)."""
    config = request.app[CONFIG_KEY]
    policy = request.app[POLICY_KEY]
    info = SignerInfo(pubkey=policy.server_pubkey.hex, network=config.network, destination=policy.destination.text,
                      policy=SignerPolicy(max_fee=policy.max_fee, dust_limit=policy.dust_limit))
    return json_response(info.model_dump())


async def sign_settlement_route(request: web.Request) -> web.Response:
    """POST /sign_settlement: check the request (policy.approve), sign it, audit-log it."""
    try:
        req = SettlementRequest.from_json(await read_json(request, MAX_BODY_BYTES))
        approved = approve(req, request.app[POLICY_KEY])
        await request.app[FUNDING_KEY].verify(approved.settlement)
        await request.app[MEMORY_KEY].admit(approved.settlement.outpoint,
                                            Signed(approved.settlement.change_value, approved.fee, approved.size))
    except SigningRefused as err:
        log.warning("refused to sign: code=%s: %s", err.code, err.message)
        raise
    except InvalidInput as err:
        log.warning("rejected malformed signing request: code=%s: %s", err.code, err.message)
        raise
    signed = sign_settlement(approved.settlement, approved.tx, request.app[KEY_KEY])
    txid = signed.txid
    audit.info("signed settlement txid=%s outpoint=%s change_value=%d server_value=%d fee=%d",
               txid, approved.settlement.outpoint, approved.settlement.change_value,
               approved.server_value, approved.fee)
    answer = SignedSettlementAnswer(tx=signed.serialize().hex(), txid=txid, fee=approved.fee,
                                    server_value=approved.server_value)
    return json_response(answer.model_dump())


def create_app(config: SigningConfig, key: PrivateKey) -> web.Application:
    """The SigningService app; reads (or creates) the bearer token file named in the config."""
    token = load_or_create_secret(Path(config.auth.token_file))
    metrics = SigningMetrics()
    outer, inner = signing_middlewares(metrics)
    app = web.Application(
        client_max_size=MAX_BODY_BYTES,
        middlewares=[*outer, http_error_json_middleware, internal_error_middleware,
                     bearer_auth_middleware(token, OPEN_PATHS), *inner],
    )
    app[CONFIG_KEY] = config
    app[SIGNING_METRICS] = metrics
    app[KEY_KEY] = key
    funding = make_funding_check(config.funding_check)
    app[FUNDING_KEY] = funding

    async def close_funding(_app: web.Application) -> None:
        await funding.close()

    app.on_cleanup.append(close_funding)
    app[POLICY_KEY] = SigningPolicy(key.public_key, config.destination, config.settlement.max_fee,
                                    config.settlement.dust_limit)
    app[MEMORY_KEY] = SigningMemory(config.memory_file)
    app.router.add_get("/health", health)
    app.router.add_get("/pubkey", pubkey)
    app.router.add_post("/sign_settlement", sign_settlement_route)
    app.router.add_get("/metrics", metrics_handler(metrics))
    return app
