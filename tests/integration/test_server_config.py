"""PayChanServer's config: shipped files load; bad ones fail at start-up naming the key."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from paychan_runtime.config import ConfigError, load_config
from paychan_server.__main__ import main as server_main
from paychan_server.config import ServerConfig
from tests.support.ports import reserve_port
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
    # issue 11: every setting that can lose money or leak a secret is refused, naming its key
    ({"channel": {"dust_limit": 100}}, "channel.dust_limit"),  # P2PKH change of 200 sat would not relay
    ({"channel": {"dust_limit": 545}}, "channel.dust_limit"),  # one below P2PKH's 546 (spec 4.2)
    ({"v1": {"base_price": 0, "price_add_settlement_fee": False}}, "v1.base_price"),  # 0 < 13,920 + 700
    ({"v1": {"base_price": 600, "price_add_settlement_fee": True}}, "v1.base_price"),  # 14,520 < 14,620
    ({"channel": {"settlement_period_hours": 0}}, "channel.settlement_period_hours"),  # refund races settlement
    ({"channel": {"settlement_period_hours": 49}}, "channel.settlement_period_hours"),  # > min_duration 48
    ({"settlement": {"scheduler_interval_seconds": 21_601.0}}, "settlement.scheduler_interval_seconds"),
    ({"settlement": {"retry_max_interval_seconds": 21_601.0}}, "settlement.retry_max_interval_seconds"),
    ({"settlement": {"retry_interval_seconds": 400.0}}, "settlement.retry_interval_seconds"),  # > max 300
    ({"debug": {"enable": False}, "bitcoin": {"rpc_url": "http://127.0.0.1:18332"},
      "channel": {"funding_min_conf": 0}}, "channel.funding_min_conf"),  # unconfirmed funding
    ({"chan_store": {"url": "http://10.0.0.5:17079"}}, "chan_store.url"),  # bearer token over a network
    ({"chan_store": {"failover_urls": ["http://10.0.0.6:17079"]}}, "chan_store.failover_urls"),
    ({"signing_service": {"url": "http://example.com:17081"}}, "signing_service.url"),
    ({"debug": {"enable": False}, "bitcoin": {"rpc_url": "http://192.0.2.1:18332"}}, "bitcoin.rpc_url"),
    ({"management": {"port": 8080}}, "management.port"),  # same as listen.port
    ({"log_level": "LOUD"}, "log_level"),
])
def test_bad_configs_name_the_key(tmp_path: Path, changes: dict[str, Any], key: str,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, **changes), ServerConfig)
    assert key in err.value.message
    # ... and `paychan-server` stops at start with one line naming it (an ephemeral port: no port is claimed)
    if "listen" in changes:
        path = write(tmp_path, **changes)
    elif key == "management.port":  # both on one free port
        port = reserve_port()
        path = write(tmp_path, **deep_merge(changes, {"listen": {"port": port}, "management": {"port": port}}))
    else:
        path = write(tmp_path, **deep_merge({"listen": {"port": 0}}, changes))
    with pytest.raises(SystemExit) as exit_:
        server_main([str(path)])
    assert exit_.value.code == 2
    err_text = capsys.readouterr().err
    assert err_text.count("\n") == 1 and key in err_text and err_text.startswith("paychan-server: ")


def test_open_price_floor_accepts_the_exact_minimum(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, channel={"open_price": 348 * 40 + 700}), ServerConfig)
    assert cfg.channel.open_price == 14_620


@pytest.mark.parametrize("dust", [546, 700])
def test_dust_limit_at_or_above_every_change_threshold_loads(tmp_path: Path, dust: int) -> None:
    cfg = load_config(write(tmp_path, channel={"dust_limit": dust}), ServerConfig)
    assert cfg.channel.dust_limit == dust


def test_v1_open_price_exact_floor_loads(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, v1={"base_price": 700, "price_add_settlement_fee": True}), ServerConfig)
    assert cfg.v1.base_price == 700  # 700 + 13,920 = 13,920 + 700


def test_refusal_is_one_line_at_start_naming_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        server_main([str(write(tmp_path, channel={"dust_limit": 100}, listen={"port": 0}))])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "channel.dust_limit" in err and "P2PKH 546" in err
