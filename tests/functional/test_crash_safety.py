"""Crash safety: ChanStore is SIGKILLed at random moments while a client streams payments through
PayChanServer; after every restart ChanStore must still hold every acknowledged payment (spec project
decision "Durability": a payment is acknowledged only after the new state is durably stored)."""

from __future__ import annotations

import logging
import random
import signal
import threading
import time
from dataclasses import dataclass, field

import httpx
import pytest

from paychan_common.state import ChannelState
from tests.support.channels import TestChannel
from tests.support.services import Services, wait_until

log = logging.getLogger("paychan.tests")
pytestmark = pytest.mark.functional

KILLS = 20
OPEN_PRICE = 100000


@dataclass
class PayingClient:
    """Sends 1-satoshi payments one after another; a failed one is not retried, the next one is sent."""

    base: str
    ch: TestChannel
    change: int  # the change value of the latest payment sent
    last_ack: int = 0
    acks: int = 0
    failures: int = 0
    unexpected: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.last_ack = self.change

    def run(self) -> None:
        """The client loop (a thread)."""
        with httpx.Client(timeout=30.0) as client:
            while not self.stop.is_set():
                self.pay_once(client)

    def pay_once(self, client: httpx.Client) -> bool:
        """One payment of 1 satoshi; True if acknowledged."""
        self.change -= 1
        change = self.change
        try:
            r = client.put(self.base + self.ch.seed_url, json=self.ch.v2_body(change))
        except httpx.HTTPError as exc:
            self.unexpected.append(f"PayChanServer unreachable: {exc!r}")
            return False
        if r.status_code == 200:
            if r.json()["channel_value_left"] != change:
                self.unexpected.append(f"ack of {change} reports {r.text}")
            with self.lock:
                self.last_ack, self.acks = change, self.acks + 1
            return True
        if r.status_code != 503:
            self.unexpected.append(f"{r.status_code} {r.text}")
        self.failures += 1
        self.stop.wait(0.005)  # ChanStore is down: back off a little before the next payment
        return False


def stored(svc: Services, ch: TestChannel) -> ChannelState:
    """The channel's state read directly from ChanStore."""
    r = httpx.get(f"http://127.0.0.1:{svc.store_port}/channels/{ch.op.serialize().hex()}",
                  headers={"Authorization": f"Bearer {svc.token}"}, timeout=10.0)
    assert r.status_code == 200, r.text
    return ChannelState.parse(bytes.fromhex(r.json()["state"]))


def test_acknowledged_payments_survive_chanstore_sigkill(services: Services) -> None:
    svc = services  # the plugin logs the services' tails if this fails
    client: PayingClient | None = None
    thread: threading.Thread | None = None
    seed = random.randrange(1 << 32)
    rng = random.Random(seed)
    log.info("random seed %d", seed)
    httpx_log = logging.getLogger("httpx")
    httpx_level = httpx_log.level
    httpx_log.setLevel(logging.WARNING)  # thousands of requests: keep the captured log readable
    try:
        ch = TestChannel(exp_time=int(time.time()) + 7 * 24 * 3600)
        opened = ch.funding_value - OPEN_PRICE
        r = httpx.post(svc.url + ch.seed_url, json=ch.v2_body(opened))
        assert r.status_code == 201, r.text
        client = PayingClient(svc.url, ch, opened)
        thread = threading.Thread(target=client.run, name="paying-client", daemon=True)
        thread.start()
        started = time.monotonic()
        exit_codes: list[int | None] = []
        for kill in range(1, KILLS + 1):
            acks_before = client.acks
            wait_until(lambda a=acks_before: client.acks >= a + 3, timeout=30)
            time.sleep(rng.uniform(0.0, 0.15))  # let payments flow: the kill lands at a random moment
            svc.store.kill(signal.SIGKILL)
            assert svc.store.proc is not None
            exit_codes.append(svc.store.proc.returncode)
            with client.lock:
                ack_at_kill = client.last_ack
            svc.start_store()
            state = stored(svc, ch)
            lowest_sent = client.change
            log.info("kill %d: last acknowledged change %d, stored %d (%d acks, %d failed payments so far)",
                     kill, ack_at_kill, state.change_value, client.acks, client.failures)
            assert state.change_value <= ack_at_kill, "an acknowledged payment was lost"
            assert state.change_value >= lowest_sent, "ChanStore holds a payment the client never sent"
            assert state.status.label == "open"
        client.stop.set()
        thread.join(timeout=30)
        assert not thread.is_alive()
        log.info("%d kills in %.1f s; %d payments acknowledged, %d failed during outages", KILLS,
                 time.monotonic() - started, client.acks, client.failures)
        assert exit_codes == [-signal.SIGKILL] * KILLS, exit_codes
        assert client.unexpected == []
        assert client.acks > 3 * KILLS and client.failures > 0
        log.info("with ChanStore up, the final state is exactly the last acknowledged payment")
        with httpx.Client(timeout=30.0) as c:
            assert client.pay_once(c)
        assert stored(svc, ch).change_value == client.last_ack == client.change
    finally:
        if client is not None:
            client.stop.set()
        if thread is not None:
            thread.join(timeout=30)
        httpx_log.setLevel(httpx_level)
