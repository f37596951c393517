"""Two ChanStore and two PayChanServer processes on one real PostgreSQL server (issue: outgrow one machine).

The database decides every write: payments sent alternately through both servers add up exactly, two
racing payments with the same expected change leave exactly one winner, twenty opens of one channel across
both servers give one 201. Then the faults: kill -9 of either ChanStore, of either server, and an
immediate-mode stop of PostgreSQL itself; every acknowledged payment is in the database afterwards, the
services answer 503 while the database is down and recover without being restarted.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import tomli_w

from paychan_common.state import ChannelState
from tests.functional.test_concurrency import OPEN_PRICE, Req, open_req, pay_req
from tests.support.channels import TestChannel
from tests.support.ports import reserve_port
from tests.support.postgres import PostgresServer
from tests.support.regtest import wait_for
from tests.support.services import Service, Services, deep_merge

log = logging.getLogger("paychan.tests")
pytestmark = pytest.mark.functional


class PgCluster:
    """PostgreSQL + 2 ChanStore (postgres engine) + 1 SigningService + 2 PayChanServer, each server
    preferring its own ChanStore and failing over to the other."""

    def __init__(self, root: Path, pg: PostgresServer) -> None:
        self.pg = pg
        self.base = Services(root / "base")  # its configs are the template; its processes are not started
        token = self.base.configs["store"]["auth"]["token_file"]
        self.store_ports = [reserve_port(), reserve_port()]
        self.server_ports = [reserve_port(), reserve_port()]
        self.stores: list[Service] = []
        self.servers: list[Service] = []
        for i, port in enumerate(self.store_ports):
            cfg = dict(self.base.configs["store"])
            cfg["listen"] = {"host": "127.0.0.1", "port": port}
            cfg["storage"] = {"engine": "postgres", "dsn": pg.dsn, "pool_size": 4}
            path = root / f"store{i}.toml"
            path.write_text(tomli_w.dumps(cfg))
            self.stores.append(Service(f"chan_store{i}", "chan_store", path, root))
        for i, port in enumerate(self.server_ports):
            own, other = self.store_ports[i], self.store_ports[1 - i]
            cfg = deep_merge(self.base.configs["server"], {
                "listen": {"host": "127.0.0.1", "port": port},
                "management": {"enable": False},
                "chan_store": {"url": f"http://127.0.0.1:{own}"}})
            text = tomli_w.dumps(cfg).replace(f'url = "http://127.0.0.1:{own}"',
                                        f'url = "http://127.0.0.1:{own}"\nfailover_urls = ["http://127.0.0.1:{other}"]')
            path = root / f"server{i}.toml"
            path.write_text(text)
            self.servers.append(Service(f"paychan_server{i}", "paychan_server", path, root))
        self.signer = self.base.signer
        self.token_file = Path(token)

    @property
    def urls(self) -> list[str]:
        """The two public server URLs."""
        return [f"http://127.0.0.1:{p}" for p in self.server_ports]

    def start_store(self, i: int) -> None:
        self.stores[i].start()
        self.base._ready(self.stores[i], f"http://127.0.0.1:{self.store_ports[i]}/health")

    def start_server(self, i: int) -> None:
        self.servers[i].start()
        self.base._ready(self.servers[i], self.urls[i] + "/health")

    def start(self) -> PgCluster:
        for i in range(2):
            self.start_store(i)
        self.signer.start()
        self.base._ready(self.signer, f"http://127.0.0.1:{self.base.signer_port}/health")
        for i in range(2):
            self.start_server(i)
        return self

    def stop(self) -> None:
        for svc in (*self.servers, self.signer, *self.stores):
            svc.stop()

    def stored(self, ch: TestChannel) -> ChannelState | None:
        """The channel's state as the database holds it (read with psql, not through any service)."""
        out = self.pg.psql(f"SELECT encode(state, 'hex') FROM channels WHERE outpoint = "
                           f"decode('{ch.op.serialize().hex()}', 'hex')").strip()
        return ChannelState.parse(bytes.fromhex(out)) if out else None


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgCluster]:
    pg = PostgresServer()  # its own directory under /tmp: the unprivileged server user must reach it
    pg.start()
    c = PgCluster(tmp_path_factory.mktemp("pgcluster"), pg)
    try:
        yield c.start()
    finally:
        c.stop()
        pg.remove()


def _open(cluster: PgCluster, family: str = "v23") -> tuple[TestChannel, int, str]:
    ch = TestChannel(exp_time=int(time.time()) + 7 * 24 * 3600)
    opened = ch.funding_value - OPEN_PRICE
    req = open_req(family, ch, opened)
    r = httpx.request(req.method, cluster.urls[0] + req.path, params=req.params, json=req.json, timeout=30)
    assert r.status_code == 201, r.text
    return ch, opened, ch.secret(opened)


async def send_to(pairs: list[tuple[str, Req]]) -> list[httpx.Response]:
    """Send every (base URL, request) at once, released together."""
    go = asyncio.Event()
    limits = httpx.Limits(max_connections=len(pairs), max_keepalive_connections=len(pairs))
    async with httpx.AsyncClient(limits=limits, timeout=60.0) as client:
        async def one(base: str, req: Req) -> httpx.Response:
            await go.wait()
            return await client.request(req.method, base + req.path, params=req.params, json=req.json)

        tasks = [asyncio.create_task(one(b, r)) for b, r in pairs]
        await asyncio.sleep(0)
        go.set()
        return await asyncio.gather(*tasks)


@pytest.mark.parametrize("family", ["v1", "seed", "v23"])
async def test_payments_through_both_servers_add_up(cluster: PgCluster, family: str) -> None:
    ch, opened, secret = await asyncio.to_thread(_open, cluster, family)
    rng = random.Random()
    changes = sorted({opened - rng.randint(1, 10**6) for _ in range(100)}, reverse=True)[:50]
    order = changes[:]
    rng.shuffle(order)
    pairs = [(cluster.urls[i % 2], pay_req(family, ch, c, secret)) for i, c in enumerate(order)]
    log.info("%s: 50 payments at once, alternately through both servers", family)
    responses = await send_to(pairs)
    acked, received = [], 0
    for change, resp in zip(order, responses, strict=True):
        if resp.status_code == 200:
            received += resp.json()["value_received"]
            acked.append(change)
        else:
            assert resp.status_code == 400 and resp.json()["code"] == "out_of_order", resp.text
    assert min(changes) in acked
    state = cluster.stored(ch)
    assert state is not None
    assert state.change_value == min(acked)
    assert received == opened - state.change_value
    assert state.payment_count == 1 + len(acked)


async def test_two_racing_payments_with_the_same_change_one_wins(cluster: PgCluster) -> None:
    ch, opened, secret = await asyncio.to_thread(_open, cluster)
    for round_ in range(10):
        change = opened - 1000 * (round_ + 1)
        req = pay_req("v23", ch, change, secret)
        a, b = await send_to([(cluster.urls[0], req), (cluster.urls[1], req)])
        bodies = sorted([a.json()["value_received"], b.json()["value_received"]])
        assert (a.status_code, b.status_code) == (200, 200), (a.text, b.text)
        assert bodies == [0, 1000], "exactly one of the two racing payments is credited"
    state = cluster.stored(ch)
    assert state is not None and state.change_value == opened - 10_000


@pytest.mark.parametrize("family", ["v1", "seed", "v23"])
async def test_twenty_opens_across_both_servers_one_wins(cluster: PgCluster, family: str) -> None:
    ch = TestChannel(exp_time=int(time.time()) + 7 * 24 * 3600)
    opened = ch.funding_value - OPEN_PRICE
    req = open_req(family, ch, opened)
    responses = await send_to([(cluster.urls[i % 2], req) for i in range(20)])
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * 19, [(r.status_code, r.text) for r in responses]
    state = cluster.stored(ch)
    assert state is not None and state.payment_count == 1


def _pay_loop(cluster: PgCluster, ch: TestChannel, start: int, secret: str, seconds: float,
              acked: list[int], statuses: list[int]) -> None:
    """Pay 1 sat at a time, alternating servers, for `seconds`; record every acknowledged change."""
    change = start
    deadline = time.monotonic() + seconds
    i = 0
    with httpx.Client(timeout=10.0) as client:
        while time.monotonic() < deadline:
            req = pay_req("v23", ch, change - 1, secret)
            try:
                r = client.request(req.method, cluster.urls[i % 2] + req.path, params=req.params, json=req.json)
            except httpx.HTTPError:
                statuses.append(-1)
                i += 1
                continue
            statuses.append(r.status_code)
            if r.status_code == 200:
                change -= 1
                acked.append(change)
            i += 1


async def test_kills_and_a_database_crash_lose_nothing_acknowledged(cluster: PgCluster) -> None:
    ch, opened, secret = await asyncio.to_thread(_open, cluster)
    acked: list[int] = []
    statuses: list[int] = []
    loop = asyncio.create_task(asyncio.to_thread(_pay_loop, cluster, ch, opened, secret, 14.0, acked, statuses))
    def kill_store(i: int) -> None:
        cluster.stores[i].kill()
        cluster.start_store(i)

    def kill_server(i: int) -> None:
        cluster.servers[i].kill()
        cluster.start_server(i)

    faults: list[tuple[str, Callable[[], None]]] = [
        ("kill -9 ChanStore 0", lambda: kill_store(0)),
        ("kill -9 PayChanServer 1", lambda: kill_server(1)),
        ("kill -9 ChanStore 1", lambda: kill_store(1)),
    ]
    for name, fault in faults:
        await asyncio.sleep(1.5)
        log.info("fault: %s", name)
        await asyncio.to_thread(fault)
    await asyncio.sleep(1.0)
    log.info("fault: PostgreSQL immediate-mode stop, 2 s down, restart")
    await asyncio.to_thread(cluster.pg.stop, "immediate")
    await asyncio.sleep(2.0)
    down_probe = await asyncio.to_thread(
        lambda: httpx.put(cluster.urls[0] + pay_req("v23", ch, 1, secret).path, params={"secret": secret},
                          json=ch.v23_compact(1), timeout=10))
    assert down_probe.status_code == 503, down_probe.text
    assert "error" in down_probe.text or "message" in down_probe.text
    await asyncio.to_thread(cluster.pg.start)
    await loop
    assert acked, "payments were acknowledged"
    # the services recovered by themselves: a payment through each server succeeds now
    change = acked[-1]
    for url in cluster.urls:
        change -= 1
        req = pay_req("v23", ch, change, secret)

        def paid(url: str = url, req: Req = req) -> bool:
            r = httpx.request(req.method, url + req.path, params=req.params, json=req.json, timeout=10)
            return r.status_code == 200

        wait_for(paid, timeout=30, interval=0.2, description=f"{url} pays again after the faults")
        acked.append(change)
    state = cluster.stored(ch)
    assert state is not None
    assert state.change_value <= min(acked), "every acknowledged payment is in the database"
    assert state.change_value == min(acked)
    log.info("%d payments acknowledged across the faults, %d refused or unanswered; none lost",
             len(acked), sum(1 for s in statuses if s != 200))
    assert all(s in (200, 503, -1) for s in statuses), sorted(set(statuses))


async def test_closing_through_both_servers_at_once_settles_once(cluster: PgCluster) -> None:
    """The settlement transition is a compare-and-set in the database: two servers closing the same channel
    at the same moment produce one settlement, and both tell the client its txid."""
    from tests.support.channels import CLIENT_REFUND

    txids = set()
    for _ in range(5):
        ch, opened, _secret = await asyncio.to_thread(_open, cluster, "seed")
        close = Req("PUT", ch.seed_url + "/close", json=ch.v2_body(opened, CLIENT_REFUND))
        a, b = await send_to([(cluster.urls[0], close), (cluster.urls[1], close)])
        answers = [r for r in (a, b) if r.status_code == 200]
        assert answers, (a.text, b.text)
        for r in (a, b):
            assert r.status_code in (200, 410), r.text
        assert len({r.json()["settlement_txid"] for r in answers}) == 1
        state = cluster.stored(ch)
        assert state is not None and state.settlement_txid == answers[0].json()["settlement_txid"]
        txids.add(state.settlement_txid)
    assert len(txids) == 5
