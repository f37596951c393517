"""The management API (spec 10.5, extended): its own loopback port, a bearer token, JSON everywhere.

Routes (all need `Authorization: Bearer <management token>`; errors are `{"error": {class, code, message}}`):
  GET  /channels?status=&client_pubkey=&expiring_before=&after=&limit=   one page, cursor in "next"
  GET  /channels/{txid}/{vout}                                            one channel, with confirmations
  POST /channels/{txid}/{vout}/close                                      manual close via the Settler
  GET  /channels/{client_pubkey}/info                                     spec 10.5's exact shape
  GET  /totals                                                            money in flight (totals.py)
  GET  /metrics                                                           Prometheus exposition
  GET  /health
Registered beside them by features.py: the dashboard's feeds (insights.py: /alerts, /revenue, /settlements)
and the dashboard itself (dashboard.py: /, /login, /logout, /dashboard, /static/*; sign-in in session.py).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from aiohttp import web

from chan_store.contract import MAX_LIST_LIMIT, ListQuery
from paychan_common.address import Address
from paychan_common.errors import ChannelGone, ChannelNotFound, InvalidInput, PaychanError
from paychan_common.hashing import hash160
from paychan_common.network import Network
from paychan_common.state import ChannelState, Status
from paychan_common.tx import OutPoint
from paychan_runtime.http import http_error_json_middleware, internal_error_middleware, json_response
from paychan_runtime.logs import access_log_middleware, quiet_routes
from paychan_runtime.metrics import latency_middleware, metrics_handler

from ..api.params import parse_outpoint, parse_pubkey, parse_uint
from ..config import ServerConfig
from ..domain.ports import Blockchain
from ..domain.service import PayChanService
from .metrics import ServerMetrics
from .session import auth_middleware
from .totals import TotalsCache, TotalsSource

__all__ = ["DEPS", "ManagementDeps", "channel_id", "channel_json", "create_management_app", "with_confirmations"]

log = logging.getLogger("paychan.management")

DEFAULT_LIMIT = 100
STATUSES = {status.label: status for status in Status}
TXID = "{txid:[0-9a-fA-F]{64}}"
VOUT = "{vout:[0-9]{1,10}}"


@dataclass(frozen=True, slots=True)
class ManagementDeps:
    """What the management routes use."""

    cfg: ServerConfig
    service: PayChanService
    store: TotalsSource
    chain: Blockchain
    metrics: ServerMetrics
    totals: TotalsCache


DEPS: web.AppKey[ManagementDeps] = web.AppKey("management_deps", ManagementDeps)


def channel_id(outpoint: OutPoint) -> str:
    """`<display txid>:<vout>`, the management API's channel identifier and page cursor."""
    return f"{outpoint.display_txid}:{outpoint.vout}"


def funding_address(state: ChannelState, network: Network) -> str:
    """The channel's P2SH funding address (spec 3.3)."""
    return Address.p2sh(hash160(state.redeem_script), network).text


def channel_json(state: ChannelState, cfg: ServerConfig) -> dict[str, object]:
    """A channel for operators: spec 10.5's fields, and payments, times and settlement details."""
    op = state.outpoint
    return {
        "channel_id": channel_id(op),
        "funding_txid": op.display_txid,
        "funding_vout": op.vout,
        "sender": state.client_pubkey.hex(),
        "status": state.status.label,
        "family": state.family.label,
        "value_left": cfg.channel.value_left(state.change_value),
        "expires": state.exp_time,
        "funding_value": state.funding_value,
        "funding_address": funding_address(state, cfg.bitcoin.net),
        "funding_source": op.serialize().hex(),
        "change_address": state.change_address,
        "payment_count": state.payment_count,
        "value_received": state.value_received,
        "open_time": state.open_time,
        "last_payment_time": state.last_payment_time,
        "settlement_txid": state.settlement_txid or None,
        "settlement_fee": state.settlement_fee if state.settlement_txid else None,
        "refunded": _refunded(state),
    }


def _refunded(state: ChannelState) -> bool:
    """Closed without a settlement of ours: the funding was spent by another transaction (the refund)."""
    return state.status is Status.CLOSED and not state.settlement_txid


def spec_info_json(state: ChannelState, cfg: ServerConfig) -> dict[str, object]:
    """Spec 10.5's `GET /channels/{client_pubkey}/info` body, exactly ("closed" for settling or settled)."""
    return {
        "sender": state.client_pubkey.hex(),
        "status": "open" if state.status is Status.OPEN else "closed",
        "value_left": cfg.channel.value_left(state.change_value),
        "expires": state.exp_time,
        "funding_value": state.funding_value,
        "funding_address": funding_address(state, cfg.bitcoin.net),
        "funding_source": state.outpoint.serialize().hex(),
        "settlement_txid": state.settlement_txid or None,
    }


def parse_channel_id(text: str, name: str = "after") -> OutPoint:
    """`<txid>:<vout>` -> OutPoint."""
    txid, sep, vout = text.partition(":")
    if not sep:
        raise InvalidInput(f"{name} must be <funding_txid>:<funding_vout>")
    return parse_outpoint(txid, vout)


def parse_list_query(query: Mapping[str, str]) -> ListQuery:
    """ChanStore's list query from the management query string; InvalidInput names the bad parameter."""
    unknown = set(query) - {"status", "client_pubkey", "expiring_before", "after", "limit"}
    if unknown:
        raise InvalidInput(f"unknown query parameter {sorted(unknown)[0]!r}")
    status = query.get("status") or None
    if status is not None and status not in STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(STATUSES)}")
    pk = query.get("client_pubkey") or None
    before = query.get("expiring_before") or None
    after = query.get("after") or None
    limit = parse_uint(query.get("limit") or str(DEFAULT_LIMIT), "limit", MAX_LIST_LIMIT)
    if limit == 0:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIST_LIMIT}")
    if before is not None and status is None and pk is None:
        raise InvalidInput("expiring_before needs status or client_pubkey")
    return ListQuery(None if status is None else STATUSES[status], None if pk is None else parse_pubkey(pk).data,
                     None if before is None else parse_uint(before, "expiring_before"),
                     None if after is None else parse_channel_id(after), limit)


async def list_channels(request: web.Request) -> web.Response:
    """GET /channels: one page of channels (by expiry within a status; by outpoint otherwise)."""
    deps = request.app[DEPS]
    q = parse_list_query(request.query)
    page = await deps.store.list_page(status=q.status, client_pubkey=q.client_pubkey,
                                      expiring_before=q.expiring_before, after=q.after, limit=q.limit)
    return json_response({"channels": [channel_json(s, deps.cfg) for s in page.states],
                          "count": len(page.states),
                          "next": None if page.next is None else channel_id(page.next)})


async def _state(deps: ManagementDeps, request: web.Request) -> ChannelState:
    outpoint = parse_outpoint(request.match_info["txid"], request.match_info["vout"])
    state = await deps.service.store.get(outpoint)
    if state is None:
        raise ChannelNotFound("no such channel")
    return state


async def with_confirmations(deps: ManagementDeps, state: ChannelState) -> dict[str, object]:
    """channel_json plus the settlement's confirmations as the node reports them."""
    body = channel_json(state, deps.cfg)
    body["settlement_confirmations"] = None
    if state.settlement_txid:
        try:
            status = await deps.chain.tx_status(state.settlement_txid, state.settlement_tx)
            body["settlement_confirmations"] = status.confirmations if status.known else None
            body["settlement_known"] = status.known
        except PaychanError as exc:
            body["settlement_status_error"] = exc.message
    return body


async def get_channel(request: web.Request) -> web.Response:
    """GET /channels/{txid}/{vout}: one channel, with its settlement's confirmations."""
    deps = request.app[DEPS]
    return json_response(await with_confirmations(deps, await _state(deps, request)))


async def close_channel(request: web.Request) -> web.Response:
    """POST /channels/{txid}/{vout}/close: settle now with the latest payment (idempotent)."""
    deps = request.app[DEPS]
    state = await _state(deps, request)
    settler = deps.service.settler
    if state.status is Status.OPEN:
        log.info("manual close of channel %s requested", channel_id(state.outpoint))
        state = await settler.settle(state, state)
    elif state.status is Status.CLOSING:
        state = await settler.finish(state)
    elif state.status is not Status.CLOSED or _refunded(state):
        label = "refunded" if _refunded(state) else state.status.label
        raise ChannelGone(f"channel is {label}; nothing to settle", code=f"channel_{label}")
    body = await with_confirmations(deps, state)
    return json_response({"settlement_txid": state.settlement_txid or None, "channel": body})


async def spec_info(request: web.Request) -> web.Response:
    """GET /channels/{client_pubkey}/info (spec 10.5): the key's open channel, else its latest one."""
    deps = request.app[DEPS]
    pk = parse_pubkey(request.match_info["client_pubkey"]).data
    best: ChannelState | None = None
    after: OutPoint | None = None
    while True:
        page = await deps.store.list_page(client_pubkey=pk, after=after, limit=MAX_LIST_LIMIT)
        for state in page.states:
            if best is None or _newer(state, best):
                best = state
        if page.next is None:
            break
        after = page.next
    if best is None:
        raise ChannelNotFound("no channel for this client key")
    return json_response(spec_info_json(best, deps.cfg))


def _newer(a: ChannelState, b: ChannelState) -> bool:
    """The open channel wins; else the latest opened."""
    return (a.status is Status.OPEN, a.open_time) > (b.status is Status.OPEN, b.open_time)


async def totals(request: web.Request) -> web.Response:
    """GET /totals: open channels, value unsettled, value at risk by hours to expiry (fresh)."""
    deps = request.app[DEPS]
    snapshot = await deps.totals.get(0)
    deps.metrics.totals = snapshot
    return json_response(snapshot.to_json())


async def health(request: web.Request) -> web.Response:
    """GET /health."""
    return json_response({"ok": True})


def create_management_app(deps: ManagementDeps, token: str, metrics_token: str | None = None) -> web.Application:
    """The management application (served by app.py on management.host:management.port)."""
    max_age = deps.cfg.management.totals_max_age_seconds

    async def refresh() -> None:
        try:
            deps.metrics.totals = await deps.totals.get(max_age)
        except PaychanError as exc:  # the scrape still answers, with the last snapshot
            log.warning("metrics: cannot read totals from ChanStore: %s", exc.message)

    app = web.Application(middlewares=[
        latency_middleware(deps.metrics),
        access_log_middleware(quiet_routes([("GET", "/metrics"), ("GET", "/health")])),
        http_error_json_middleware,
        auth_middleware(token, metrics_token),
        internal_error_middleware,
    ])
    app[DEPS] = deps
    r = app.router
    r.add_get("/channels", list_channels)
    r.add_get("/channels/{client_pubkey:[0-9a-fA-F]{66}}/info", spec_info)
    r.add_get(f"/channels/{TXID}/{VOUT}", get_channel)
    r.add_post(f"/channels/{TXID}/{VOUT}/close", close_channel)
    r.add_get("/totals", totals)
    r.add_get("/metrics", metrics_handler(deps.metrics, refresh))
    r.add_get("/health", health)
    return app
