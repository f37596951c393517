"""Bitcoin networks and their address parameters (spec 2.2); always passed explicitly."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .errors import InvalidInput


@dataclass(frozen=True, slots=True)
class NetParams:
    """Version bytes and bech32 human-readable part of one network."""

    name: str
    p2pkh_version: int
    p2sh_version: int
    hrp: str


class Network(enum.Enum):
    """The configured network: `live` (mainnet), `test` (testnet/signet), `regtest`."""

    LIVE = NetParams("live", 0x00, 0x05, "bc")
    TEST = NetParams("test", 0x6F, 0xC4, "tb")
    REGTEST = NetParams("regtest", 0x6F, 0xC4, "bcrt")

    @property
    def params(self) -> NetParams:
        """The address parameters."""
        return self.value

    @classmethod
    def parse(cls, name: str) -> Network:
        """Parse a config value (`live`, `test`, `regtest`)."""
        for net in cls:
            if net.value.name == name:
                return net
        raise InvalidInput(f"unknown network {name!r} (expected live, test or regtest)")
