"""Fixtures: a PaychanClient on a recording MockTransport."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from paychan_client import PaychanClient

from .vectors import ENDPOINT, NETWORK, Recorder


@pytest.fixture
def server() -> Recorder:
    """The fake server's recorder (queue responses on it)."""
    return Recorder()


@pytest.fixture
def client(server: Recorder) -> Iterator[PaychanClient]:
    """A client talking to the recorder."""
    http = httpx.Client(transport=httpx.MockTransport(server))
    with PaychanClient(ENDPOINT, NETWORK, http=http) as c:
        yield c
    http.close()
