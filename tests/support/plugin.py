"""paychan's pytest plugin (as pyln-testing's fixtures; registered by `pytest_plugins` in tests/conftest.py).

Fixtures: `regtest_node` (module) and `regtest_node_fresh` (per test), a real bitcoind in regtest with wallet "w"
and 200 blocks; `services_factory` (per test) and `module_services_factory` (per module), which start the three
services as subprocesses on reserved ports and stop them afterwards, and `services`, the default debug stack;
`shared_services`, one per module, and `node_services`, the three on the module's regtest node;
`stack`, the in-process stack of the integration tier; `pg_server` (session), a real PostgreSQL server run as
an unprivileged user, and `pg_engine`, ChanStore's PostgreSQL engine on an empty table. A test that fails
gets its services' log tails in the report. The pieces themselves live beside this file: ports, services,
regtest, regtest_stack, stack, channels, fakes, postgres, synthetic."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from chan_store.postgres import PostgresChannelStore
from tests.support.postgres import PostgresServer, fresh_pg_engine
from tests.support.regtest import RegtestNode, funded_node
from tests.support.regtest_stack import regtest_services
from tests.support.services import Services
from tests.support.stack import AiohttpClient, AiohttpServer, Stack, start_stack

log = logging.getLogger("paychan.tests")
FAILED = pytest.StashKey[bool]()

ServicesFactory = Callable[..., Services]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    """Remember on the test item whether any phase failed (the services fixtures report logs then)."""
    report = yield
    if report.failed:
        item.stash[FAILED] = True
    return report


class _Started:
    """Services started for one fixture scope, stopped in reverse order at its end."""

    def __init__(self, root: Callable[[str], Path]) -> None:
        self._root = root
        self.started: list[Services] = []

    def make(self, name: str = "svc", *, start: bool = True, **kw: Any) -> Services:
        svc = Services(self._root(name), **kw)
        self.started.append(svc)
        return svc.start() if start else svc

    def stop(self, failed: bool) -> None:
        for svc in reversed(self.started):
            if failed:
                log.error("services in %s:\n%s", svc.root, svc.logs())
            svc.stop()


@pytest.fixture
def services_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServicesFactory]:
    """make(name="svc", start=True, **Services options): the three services in tmp_path/name, stopped after."""
    started = _Started(lambda name: tmp_path / name)
    yield started.make
    started.stop(request.node.stash.get(FAILED, False))


@pytest.fixture(scope="module")
def module_services_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServicesFactory]:
    """Like services_factory, for a module's shared stacks (each in its own temporary folder)."""
    started = _Started(lambda name: tmp_path_factory.mktemp(name))
    yield started.make
    started.stop(False)


@pytest.fixture
def services(services_factory: ServicesFactory) -> Services:
    """The default debug stack, on the real clock."""
    return services_factory()


@pytest.fixture(scope="module")
def shared_services(module_services_factory: ServicesFactory) -> Services:
    """One default debug stack shared by a test module."""
    return module_services_factory("svc")


@pytest.fixture(scope="module")
def node_services(regtest_node: RegtestNode, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    """The three services on the module's regtest node (FAST_SERVER timings), shared by the module."""
    svc = regtest_services(tmp_path_factory.mktemp("svc"), regtest_node).start()
    try:
        yield svc
    finally:
        svc.stop()


@pytest.fixture(scope="module")
def regtest_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegtestNode]:
    """A started regtest node shared by a test module: wallet "w", 200 blocks mined."""
    with funded_node(tmp_path_factory.mktemp("regtest")) as node:
        yield node


@pytest.fixture
def regtest_node_fresh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegtestNode]:
    """Like regtest_node but a new node for each test."""
    with funded_node(tmp_path_factory.mktemp("regtest_fresh")) as node:
        yield node


@pytest.fixture
async def stack(tmp_path: Path, aiohttp_server: AiohttpServer, aiohttp_client: AiohttpClient) -> AsyncIterator[Stack]:
    """The in-process stack (ChanStore, SigningService, PayChanServer with management), no callback."""
    async for s in start_stack(tmp_path, aiohttp_server, aiohttp_client):
        yield s


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL server for the whole test session (fsync and synchronous_commit on)."""
    server = PostgresServer()
    server.start()
    yield server
    server.remove()


@pytest.fixture
async def pg_engine(pg_server: PostgresServer) -> AsyncIterator[PostgresChannelStore]:
    """ChanStore's PostgreSQL engine on an empty channels table."""
    engine = await fresh_pg_engine(pg_server)
    yield engine
    await engine.close()
