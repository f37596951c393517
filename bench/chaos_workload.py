"""The chaos soak's clients (bench/chaos.py): channels opened, paid and closed on all three route families,
and what each client was told (acknowledged change values, settlement txids)."""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from tests.support.channels import CLIENT_REFUND, TestChannel

FAMILIES = ("v1", "v2", "v2.3")
OPEN_PRICE = 100_000
V23_CLOSE_FEE = 20_000
UNKNOWN_STATUSES = frozenset({502, 503, 504})  # the outcome of the request is not known: not acknowledged

NewChannel = Callable[[], TestChannel | None]
"""A fresh client channel with its funding (None: none available right now)."""

@dataclass
class Chan:
    """One client channel and what the client was told about it."""

    family: str
    ch: TestChannel
    url: str = ""  # the channel's URL (v1: from Location)
    secret: str = ""  # v2.3.0
    opened: bool = False  # the open was acknowledged (201, or 409 naming this very channel)
    acked: list[int] = field(default_factory=list)  # acknowledged change values (the open's included)
    lowest_sent: int = 0  # lowest change value the client ever signed and sent
    close_txids: set[str] = field(default_factory=set)  # settlement txids reported by acknowledged closes

    @property
    def lowest_acked(self) -> int | None:
        """The lowest acknowledged change value."""
        return min(self.acked) if self.acked else None


@dataclass
class Tally:
    """Counts of request outcomes, shared by the client threads."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    outcomes: Counter[str] = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)

    def count(self, what: str) -> None:
        """Count one outcome."""
        with self.lock:
            self.outcomes[what] += 1

    def bad(self, text: str) -> None:
        """Record an unexpected answer (a failed run)."""
        with self.lock:
            self.unexpected.append(text[:300])


@dataclass(eq=False)
class Client:
    """One client thread: open a channel on a random family, pay a few times, close it (usually); repeat."""

    base: str
    rng: random.Random
    tally: Tally
    stop: threading.Event
    channels: list[Chan]
    v1_price: int
    new_channel: NewChannel
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=15.0))

    def run(self) -> None:
        """Channel after channel until stopped."""
        try:
            while not self.stop.is_set():
                self.one_channel()
        finally:
            self.http.close()

    def request(self, what: str, method: str, url: str, **kw: Any) -> httpx.Response | None:
        """One request; None when its outcome is unknown (unreachable, 502/503/504)."""
        try:
            r = self.http.request(method, url, **kw)
        except httpx.HTTPError:
            self.tally.count(f"{what}:unreachable")
            return None
        if r.status_code in UNKNOWN_STATUSES:
            self.tally.count(f"{what}:{r.status_code}")
            return None
        self.tally.count(f"{what}:{r.status_code}")
        return r

    def v2_request(self, what: str, method: str, chan: Chan, body: dict[str, Any],
                   suffix: str = "") -> httpx.Response | None:
        """A request to a v2-seed or v2.3.0 channel's URL (+ suffix), v2.3.0's with its secret."""
        if chan.family == "v2":
            return self.request(what, method, self.base + chan.ch.seed_url + suffix, json=body)
        return self.request(what, method, self.base + chan.ch.v23_url + suffix, params={"secret": chan.secret},
                            json=body)

    def backoff(self) -> None:
        """A short pause after an unknown outcome (a process is restarting)."""
        self.stop.wait(self.rng.uniform(0.01, 0.05))

    def one_channel(self) -> None:
        """Open, pay, maybe close one channel."""
        ch = self.new_channel()
        if ch is None:  # no funded channel available yet (regtest)
            self.stop.wait(0.5)
            return
        chan = Chan(self.rng.choice(FAMILIES), ch)
        with self.tally.lock:
            self.channels.append(chan)
        if not self.open(chan):
            return
        for _ in range(self.rng.randint(3, 40)):
            if self.stop.is_set():
                return
            self.pay(chan, self.rng.choice((1, 1, 1, 7, 1000)))
        if self.rng.random() < 0.8:
            self.close(chan)

    def open(self, chan: Chan) -> bool:
        """Send the opening payment until its outcome is known; True once open."""
        ch = chan.ch
        price = self.v1_price if chan.family == "v1" else OPEN_PRICE
        change = ch.funding_value - price
        chan.lowest_sent = change
        if chan.family == "v2.3":
            chan.secret = ch.secret(change)
        refusals = 0
        while not self.stop.is_set():
            if chan.family == "v1":
                r = self.request("open", "POST", f"{self.base}/v1/channels/new", params={
                    "client_pubkey": ch.pk, "exp_time": ch.exp_time, "change_address": CLIENT_REFUND,
                    "payment": ch.v1_payload(change, CLIENT_REFUND)})
            else:
                body = ch.v2_body(change) if chan.family == "v2" else ch.v23_full(change)
                r = self.v2_request("open", "POST", chan, body)
            if r is None:
                self.backoff()
                continue
            if r.status_code == 409 and "Location" not in r.headers:  # refused, e.g. funding not yet deep enough
                refusals += 1  # (regtest: a SIGKILLed node may come back without its last blocks)
                if refusals > 60:
                    return False
                self.stop.wait(0.5)
                continue
            if r.status_code in (201, 409):  # 409 with Location: our own open, stored by an earlier attempt
                chan.url = r.headers.get("Location", "").split("?")[0] if chan.family == "v1" else ""
                if r.status_code == 201 and r.json().get("value_received") != price:
                    self.tally.bad(f"open of {chan.family} reports {r.text}")
                if chan.family == "v1" and not chan.url:
                    self.tally.bad(f"v1 open {r.status_code} without Location: {r.text}")
                    return False
                chan.opened = True
                chan.acked.append(change)
                return True
            self.tally.bad(f"open {chan.family}: {r.status_code} {r.text}")
            return False
        return False

    def pay(self, chan: Chan, amount: int) -> bool:
        """One payment of `amount` below the lowest change sent; True if acknowledged."""
        change = chan.lowest_sent - amount
        chan.lowest_sent = change
        ch = chan.ch
        if chan.family == "v1":
            r = self.request("pay", "PUT", chan.url, params={"payment": ch.v1_payload(change, CLIENT_REFUND)})
        else:
            body = ch.v2_body(change) if chan.family == "v2" else ch.v23_compact(change)
            r = self.v2_request("pay", "PUT", chan, body)
        if r is None:
            self.backoff()
            return False
        if r.status_code == 200:
            body = r.json()
            if body.get("channel_value_left") != change or body.get("channel_status") != "open":
                self.tally.bad(f"payment of {change} on {chan.family} reports {r.text}")
            chan.acked.append(change)
            return True
        self.tally.bad(f"pay {chan.family}: {r.status_code} {r.text}")
        return False

    def close(self, chan: Chan) -> None:
        """Make sure the latest payment is acknowledged, then close with it until a close is acknowledged."""
        for _ in range(50):
            if chan.lowest_acked == chan.lowest_sent or self.stop.is_set():
                break
            self.pay(chan, 1)  # the latest payment's outcome is unknown: one more, acknowledged, makes it known
        if chan.lowest_acked != chan.lowest_sent:
            return
        ch = chan.ch
        change = chan.lowest_sent
        if chan.family == "v2.3":
            change -= V23_CLOSE_FEE  # the closing payment's value is the settlement fee
        chan.lowest_sent = change
        for _ in range(200):
            if chan.family == "v1":
                r = self.request("close", "DELETE", chan.url, params={"payment": ch.v1_payload(change, CLIENT_REFUND)})
            elif chan.family == "v2":
                r = self.v2_request("close", "PUT", chan, ch.v2_body(change, CLIENT_REFUND), "/close")
            else:
                body = {"payment_data": ch.v23_full(change, CLIENT_REFUND)["payment_data"], "application_data": ""}
                r = self.v2_request("close", "PUT", chan, body, "/close")
            if r is None:
                if self.stop.is_set():
                    return
                self.backoff()
                continue
            if r.status_code in (200, 202) and r.json().get("channel_status") == "closed":
                chan.acked.append(change)
                chan.close_txids.add(r.json()["settlement_txid"])
                return
            if r.status_code == 410 and "closing" in r.text:
                self.stop.wait(0.2)  # an earlier attempt left it closing; the settler finishes it
                continue
            self.tally.bad(f"close {chan.family}: {r.status_code} {r.text}")
            return
