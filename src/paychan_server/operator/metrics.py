"""PayChanServer's Prometheus metrics: payments and value received (counters, cheap enough for the hot
path), value-callback outcomes, and scrape-time gauges of money in flight read from ChanStore (channels
and settlements by state, value unsettled, value at risk by hours to expiry)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from aiohttp import web
from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from paychan_common.state import Family, Status
from paychan_runtime.metrics import Metrics

from .totals import BUCKETS, Totals

__all__ = ["METRICS", "ServerMetrics"]

KINDS = ("open", "pay", "close")
_SETTLEMENT_STATE = {Status.CLOSING.label: "in_progress", Status.CLOSED.label: "settled"}


class _TotalsCollector(Collector):
    """Gauges from the latest Totals snapshot (refreshed by the /metrics handler before rendering)."""

    def __init__(self, owner: ServerMetrics) -> None:
        self._owner = owner

    def collect(self) -> Iterator[Metric]:
        """Yield nothing until a first snapshot exists."""
        totals = self._owner.totals
        if totals is None:
            return
        channels = GaugeMetricFamily("paychan_channels", "Channels by status (ChanStore)", labels=["status"])
        settlements = GaugeMetricFamily(
            "paychan_settlements", "Settlements by state: in_progress (signed, published, not yet deep enough), "
            "settled (confirmed), and any other end state", labels=["state"])
        for status, count in sorted(totals.counts.items()):
            channels.add_metric([status], count)
            if status != Status.OPEN.label:
                settlements.add_metric([_SETTLEMENT_STATE.get(status, status)], count)
        yield channels
        yield settlements
        yield GaugeMetricFamily("paychan_value_unsettled_satoshis",
                                "Value received in open and closing channels, not yet settled",
                                value=totals.unsettled_value)
        risk = GaugeMetricFamily("paychan_value_at_risk_satoshis",
                                 "Unsettled value by hours to channel expiry", labels=["hours_to_expiry"])
        at_risk = GaugeMetricFamily("paychan_channels_at_risk",
                                    "Open and closing channels by hours to expiry", labels=["hours_to_expiry"])
        for bucket, count, value in zip(BUCKETS, totals.bucket_channels, totals.bucket_value, strict=True):
            risk.add_metric([bucket.label], value)
            at_risk.add_metric([bucket.label], count)
        yield risk
        yield at_risk
        yield GaugeMetricFamily("paychan_totals_timestamp_seconds", "When the totals above were read",
                                value=totals.as_of)


class ServerMetrics(Metrics):
    """The registry of one PayChanServer process."""

    def __init__(self) -> None:
        super().__init__()
        r = self.registry
        self.payments = Counter("paychan_payments", "Payments stored, by kind (open, pay, close) and route family",
                                ["kind", "family"], registry=r)
        self.value = Counter("paychan_value_received_satoshis", "Value received in stored payments",
                             ["kind", "family"], registry=r)
        self.callback_calls = Counter("paychan_callback_calls", "Value callback calls by outcome", ["outcome"],
                                      registry=r)
        self.callback_latency = Histogram("paychan_callback_duration_seconds", "Value callback round trip",
                                          buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
                                          registry=r)
        self.bumps = Counter("paychan_settlement_replacements", "Replacement settlements signed and stored "
                             "(fee bumps, spec 8.6)", registry=r)
        self.settlements_confirmed = Counter("paychan_settlements_confirmed", "Settlements confirmed, by how many "
                                             "times they were replaced (0, 1, 2, 3, 4+)", ["bumps"], registry=r)
        self.near_deadline_channels = Gauge(
            "paychan_settlements_near_deadline", "Closing channels whose settlement is unconfirmed within "
            "settlement.alert_hours_before_deadline of its deadline", registry=r, multiprocess_mode="max")
        self.near_deadline_value = Gauge(
            "paychan_settlements_near_deadline_satoshis", "Value received in those channels (lost if the "
            "client's refund wins)", registry=r, multiprocess_mode="max")
        self.totals: Totals | None = None
        # Pre-bound children: the hot path does one dict lookup and two Counter.inc calls.
        self._children: dict[tuple[str, Family], tuple[Any, Any]] = {
            (kind, fam): (self.payments.labels(kind, fam.label), self.value.labels(kind, fam.label))
            for kind in KINDS for fam in Family}
        self.add_collector(_TotalsCollector(self))

    def payment(self, kind: str, family: Family, value: int) -> None:
        """Count one stored payment and its value."""
        count, total = self._children[(kind, family)]
        self.deferred.inc(count)
        if value:
            self.deferred.inc(total, value)


METRICS: web.AppKey[ServerMetrics] = web.AppKey("server_metrics", ServerMetrics)
