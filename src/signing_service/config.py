"""The SigningService config: one TOML file loaded into a frozen, validated model (DESIGN: config)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from paychan_common.address import Address
from paychan_common.amount import MAX_MONEY
from paychan_common.errors import InvalidInput
from paychan_common.network import Network
from paychan_runtime.config import InternalServiceConfig, StrictSection, config_error, plain_http_elsewhere

Satoshis = Annotated[int, Field(ge=0, le=MAX_MONEY)]


class KeyConfig(StrictSection):
    """The server key: a 64-hex file, or the spec's debug seed (never on live)."""

    file: Annotated[str, Field(min_length=1)]
    debug_seed: bool = False


class SettlementConfig(StrictSection):
    """Where the server output goes, the highest fee the service will sign, and its own dust limit: a
    server output below it is dropped (its value goes to the fee; spec 8.3, 8.6)."""

    destination: Annotated[str, Field(min_length=1)]
    max_fee: Satoshis
    dust_limit: Annotated[int, Field(ge=546, le=MAX_MONEY)] = 700  # 546: the largest standard dust threshold


class MemoryConfig(StrictSection):
    """Where the record of signed settlements lives (spec 8.6); default: `signed_settlements.jsonl` next to
    the key file."""

    file: str = ""


class FundingCheckConfig(StrictSection):
    """How the service confirms the funding value it is told (legacy signatures do not commit to it)."""

    mode: Literal["none", "debug", "node"] = "none"
    rpc_url: str = ""
    rpc_user: str = ""
    rpc_password: str = ""
    rpc_cookie_file: str = ""
    rpc_timeout_seconds: Annotated[float, Field(gt=0, le=600)] = 10.0


class SigningConfig(InternalServiceConfig):
    """The whole SigningService config file."""

    key: KeyConfig
    settlement: SettlementConfig
    funding_check: FundingCheckConfig = FundingCheckConfig()
    memory: MemoryConfig = MemoryConfig()

    @model_validator(mode="after")
    def _check(self) -> SigningConfig:
        net = Network.parse(self.network)
        if self.key.debug_seed and net is Network.LIVE:
            raise config_error("key.debug_seed is not allowed on network 'live' (spec 9)")
        try:
            Address.parse(self.settlement.destination, net)
        except InvalidInput as exc:
            raise config_error(f"settlement.destination: {exc.message}") from None
        mode = self.funding_check.mode
        if net is Network.LIVE and mode != "node":
            raise config_error("funding_check.mode must be 'node' on network 'live': a signature does not commit "
                               "to the funding value, so the service must read it from its own node")
        if mode == "debug" and not self.key.debug_seed:
            raise config_error("funding_check.mode 'debug' goes with key.debug_seed = true (debug mode only)")
        if mode == "node" and not self.funding_check.rpc_url:
            raise config_error("funding_check.rpc_url is required when funding_check.mode = 'node'")
        if plain_http_elsewhere(self.funding_check.rpc_url):
            raise config_error("funding_check.rpc_url: plain http to a non-loopback host sends the RPC credentials "
                               "in clear; use https")
        return self

    @property
    def net(self) -> Network:
        """The configured network."""
        return Network.parse(self.network)

    @property
    def memory_file(self) -> Path:
        """The memory file: memory.file, or signed_settlements.jsonl in the key file's directory."""
        return Path(self.memory.file) if self.memory.file else Path(self.key.file).parent / "signed_settlements.jsonl"

    @property
    def destination(self) -> Address:
        """The configured settlement destination, parsed for the network."""
        return Address.parse(self.settlement.destination, self.net)
