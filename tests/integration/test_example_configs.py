"""The example configs (config/*/) agree with each other: the ports the server dials are those the services
listen on, one token file, one network, one node and cookie file for the server and the SigningService; and
PAYCHAN_PORT_BASE (scripts/run_everything.py) moves every port of each consistently."""

from __future__ import annotations

import copy
import importlib.util
import sys
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from chan_store.config import StoreConfig
from paychan_runtime.config import load_config
from paychan_server.config import ServerConfig
from signing_service.config import SigningConfig

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted(p.name for p in (ROOT / "config").iterdir() if (p / "server.toml").exists())


def _supervisor() -> ModuleType:
    spec = importlib.util.spec_from_file_location("run_everything", ROOT / "scripts" / "run_everything.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["run_everything"] = module
    spec.loader.exec_module(module)
    return module


SUPERVISOR = _supervisor()


def _load(name: str) -> dict[str, dict[str, Any]]:
    folder = ROOT / "config" / name
    return {f: tomllib.loads((folder / f"{f}.toml").read_text()) for f in ("store", "signing", "server")}


def test_all_four_configs_are_there() -> None:
    assert CONFIGS == ["debug", "live", "regtest", "test"]


@pytest.mark.parametrize("name", CONFIGS)
def test_config_files_agree(name: str) -> None:
    cfg = _load(name)
    SUPERVISOR.check_agreement(cfg, Path("config") / name)  # raises Refused on a disagreement
    server, signing = cfg["server"], cfg["signing"]
    assert server["management"]["enable"] is True, "the dashboard and /metrics need [management]"
    assert "callback" in server
    if signing["funding_check"]["mode"] == "node":
        assert signing["funding_check"]["rpc_url"] == server["bitcoin"]["rpc_url"]
        assert signing["funding_check"]["rpc_cookie_file"] == server["bitcoin"]["rpc_cookie_file"]
        assert not server["bitcoin"]["rpc_cookie_file"].startswith("~"), "a service user has no home of yours"


@pytest.mark.parametrize("name", ["debug", "regtest"])
def test_ready_to_run_configs_load(name: str) -> None:
    folder = ROOT / "config" / name
    load_config(folder / "store.toml", StoreConfig)
    load_config(folder / "signing.toml", SigningConfig)
    load_config(folder / "server.toml", ServerConfig)


@pytest.mark.parametrize("name", CONFIGS)
def test_port_base_moves_every_port(name: str) -> None:
    cfg = _load(name)
    moved = copy.deepcopy(cfg)
    SUPERVISOR.move_ports(moved, 26000)
    SUPERVISOR.check_agreement(moved, Path("config") / name)
    ports = sorted(port for _, _, port in SUPERVISOR.served_ports(moved))
    assert ports == [26000, 26001, 26002, 26003]
    assert moved["server"]["chan_store"]["url"] == "http://127.0.0.1:26002"
    assert moved["server"]["signing_service"]["url"] == "http://127.0.0.1:26003"
    assert moved["server"]["bitcoin"].get("rpc_url") == cfg["server"]["bitcoin"].get("rpc_url")  # the node's own


def test_a_disagreement_is_named() -> None:
    cfg = _load("debug")
    cfg["signing"]["listen"]["port"] += 1
    with pytest.raises(SUPERVISOR.Refused, match=r"signing_service.url .* does not reach SigningService"):
        SUPERVISOR.check_agreement(cfg, Path("config/debug"))
    with pytest.raises(SUPERVISOR.Refused, match="PAYCHAN_PORT_BASE must be between"):
        SUPERVISOR.move_ports(_load("debug"), 65534)
