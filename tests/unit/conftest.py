"""Fixtures of the unit tier: the spec's vector channels, addresses and the default policy."""

from __future__ import annotations

import pytest

from paychan_common.address import Address
from paychan_common.network import Network
from paychan_common.rules import ChannelPolicy

from .helpers import B_CLIENT_ADDRESS, B_DESTINATION, DEFAULT_POLICY, Chan, vector_b_chan


@pytest.fixture(scope="session")
def chan_b() -> Chan:
    """Vector B's channel: client key 11..11, the debug server key, exp 1500000000, testnet."""
    return vector_b_chan()


@pytest.fixture(scope="session")
def client_address_b() -> Address:
    """Vector B's client refund / closing change address (testnet P2PKH of the client key)."""
    return Address.parse(B_CLIENT_ADDRESS, Network.TEST)


@pytest.fixture(scope="session")
def destination_b() -> Address:
    """The debug SigningService's funds destination address."""
    return Address.parse(B_DESTINATION, Network.TEST)


@pytest.fixture(scope="session")
def policy() -> ChannelPolicy:
    """The original configs' channel terms (dust 700, open price 100000, ...)."""
    return DEFAULT_POLICY
