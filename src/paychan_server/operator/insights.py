"""The management API's dashboard feeds (spec 10.5, extended), read from ChanStore through the same ports:

  GET /alerts                 what needs the operator now: the settler's ALERTs, value at risk near expiry,
                              ChanStore unreachable
  GET /revenue?hours=24       value received per hour (a channel's value counts at its latest payment)
  GET /settlements?limit=100  settlements in flight (closing channels, soonest expiry first) with confirmations
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from aiohttp import web

from paychan_common.errors import InvalidInput, PaychanError
from paychan_common.state import Status
from paychan_common.tx import OutPoint
from paychan_runtime.http import json_response

from ..api.params import parse_uint
from .management import DEPS, ManagementDeps, channel_id, with_confirmations
from .totals import BUCKETS, PAGE, ScanCache

__all__ = ["INSIGHTS", "Revenue", "add_insight_routes", "compute_revenue"]

log = logging.getLogger("paychan.management")

MAX_HOURS = 24 * 31
DEFAULT_HOURS = 24
SETTLEMENTS_MAX = 100
# Value at risk buckets that make an alert: the client's refund is valid (expired), or soon will be.
RISK_ALERTS = {"expired": ("critical", "value_at_risk_expired"), "<12h": ("warning", "value_at_risk_soon")}
REVENUE_MAX_AGE = 2.0  # seconds a revenue scan is reused (the dashboard polls)


@dataclass(frozen=True, slots=True)
class Revenue:
    """Value received per hour over the last MAX_HOURS hours, by the hour of each channel's latest payment."""

    as_of: int
    hour_value: tuple[int, ...]  # index 0 = the hour ending at as_of
    hour_channels: tuple[int, ...]

    def to_json(self, hours: int) -> dict[str, object]:
        """The `GET /revenue` body: the last `hours` hours, oldest first."""
        series = [{"start": self.as_of - (i + 1) * 3600, "end": self.as_of - i * 3600,
                   "value": self.hour_value[i], "channels": self.hour_channels[i]} for i in reversed(range(hours))]
        return {"as_of": self.as_of, "bucket_seconds": 3600, "hours": hours, "series": series,
                "total": sum(self.hour_value[:hours])}


async def compute_revenue(deps: ManagementDeps, now: int) -> Revenue:
    """Scan every channel (pages of 1000) and bucket its value received by the hour of its latest payment."""
    values = [0] * MAX_HOURS
    channels = [0] * MAX_HOURS
    after: OutPoint | None = None
    while True:
        page = await deps.store.list_page(after=after, limit=PAGE)
        for state in page.states:
            i = (now - state.last_payment_time) // 3600
            if 0 <= i < MAX_HOURS and not state.refunded:
                values[i] += state.value_received
                channels[i] += 1
        if page.next is None:
            break
        after = page.next
    return Revenue(now, tuple(values), tuple(channels))


@dataclass(slots=True)
class Insights:
    """Per-app state of the feeds: the revenue scan cache."""

    revenue: ScanCache[Revenue]


INSIGHTS: web.AppKey[Insights] = web.AppKey("management_insights", Insights)


def _alert(severity: str, code: str, message: str, *, channel: str | None = None,
           since: int | None = None) -> dict[str, object]:
    return {"severity": severity, "code": code, "message": message, "channel_id": channel, "since": since}


async def alerts(request: web.Request) -> web.Response:
    """GET /alerts: the settler's ALERTs still holding, value at risk near expiry, ChanStore unreachable."""
    deps = request.app[DEPS]
    out = [_alert("critical", f"settlement_{a.kind}", a.message, channel=channel_id(a.outpoint), since=a.since)
           for a in deps.service.settler.active_alerts()]
    try:
        snapshot = await deps.totals.get(REVENUE_MAX_AGE)
        for bucket, count, value in zip(BUCKETS, snapshot.bucket_channels, snapshot.bucket_value, strict=True):
            if bucket.label in RISK_ALERTS and count:
                severity, code = RISK_ALERTS[bucket.label]
                out.append(_alert(severity, code, f"{count} open or closing channel(s) with {value} sat unsettled "
                                  f"at {bucket.label} to expiry: settle them before the client's refund is valid"))
    except PaychanError as exc:
        out.append(_alert("critical", "chanstore_unreachable", f"ChanStore cannot be read: {exc.message}"))
    return json_response({"as_of": deps.service.clock.now(), "alerts": out, "count": len(out)})


def _int_param(query: Mapping[str, str], name: str, default: int, top: int) -> int:
    value = parse_uint(query.get(name) or str(default), name, top)
    if value == 0:
        raise InvalidInput(f"{name} must be between 1 and {top}")
    return value


async def revenue(request: web.Request) -> web.Response:
    """GET /revenue?hours=N: value received per hour over the last N hours (1 to 744, default 24)."""
    hours = _int_param(request.query, "hours", DEFAULT_HOURS, MAX_HOURS)
    snapshot = await request.app[INSIGHTS].revenue.get(REVENUE_MAX_AGE)
    return json_response(snapshot.to_json(hours))


async def settlements(request: web.Request) -> web.Response:
    """GET /settlements?limit=N: closing channels (soonest expiry first) with their confirmations."""
    deps = request.app[DEPS]
    limit = _int_param(request.query, "limit", SETTLEMENTS_MAX, SETTLEMENTS_MAX)
    page = await deps.store.list_page(status=Status.CLOSING, limit=limit)
    rows = [await with_confirmations(deps, state) for state in page.states]
    return json_response({"settlements": rows, "count": len(rows), "more": page.next is not None,
                          "confirmations_required": deps.cfg.settlement.confirmations})


def add_insight_routes(app: web.Application) -> None:
    """Register the feeds on the management app (its DEPS set)."""
    deps = app[DEPS]

    async def scan(now: int) -> Revenue:
        return await compute_revenue(deps, now)

    app[INSIGHTS] = Insights(ScanCache(scan, deps.service.clock))
    app.router.add_get("/alerts", alerts)
    app.router.add_get("/revenue", revenue)
    app.router.add_get("/settlements", settlements)
