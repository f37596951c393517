"""PayChanServer's config: shipped files load; bad ones fail at start-up naming the key."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from paychan_runtime.config import ConfigError, load_config
from paychan_server.config import ServerConfig
from tests.support.services import PROJECT_ROOT, deep_merge


@pytest.mark.parametrize("name", ["debug", "regtest", "test", "live"])
def test_shipped_server_configs_load(name: str) -> None:
    cfg = load_config(PROJECT_ROOT / "config" / name / "server.toml", ServerConfig)
    assert cfg.debug.enable == (name == "debug")
    assert cfg.bitcoin.network == {"debug": "test"}.get(name, name)


def write(tmp_path: Path, **changes: Any) -> Path:
    """The debug server.toml with changes merged in."""
    base = tomllib.loads((PROJECT_ROOT / "config" / "debug" / "server.toml").read_text())
    path = tmp_path / "server.toml"
    path.write_text(tomli_w.dumps(deep_merge(base, changes)))
    return path


@pytest.mark.parametrize(("changes", "key"), [
    ({"channel": {"open_price": 10_000}}, "channel.open_price"),  # below 348 x 40 + 700 (spec 8.3)
    ({"bitcoin": {"network": "live"}}, "debug.enable"),
    ({"debug": {"enable": False}}, "bitcoin.rpc_url"),
    ({"channel": {"dust_limit": -1}}, "channel.dust_limit"),
    ({"listen": {"port": "8080"}}, "listen.port"),
    ({"surprise": {"key": 1}}, "surprise"),
])
def test_bad_configs_name_the_key(tmp_path: Path, changes: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, **changes), ServerConfig)
    assert key in err.value.message


def test_open_price_floor_accepts_the_exact_minimum(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, channel={"open_price": 348 * 40 + 700}), ServerConfig)
    assert cfg.channel.open_price == 14_620
