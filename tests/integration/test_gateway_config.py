"""gateway.toml: the shipped debug config loads, and bad configs name the key that is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from paychan_gateway.config import load_gateway_config
from paychan_runtime.config import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_debug_config_loads_with_its_server_config() -> None:
    cfg, server = load_gateway_config(ROOT / "config" / "debug" / "gateway.toml")
    assert [r.name for r in cfg.routes] == ["api", "quote", "files", "stream"]
    assert [r.price.mode for r in cfg.routes] == ["per_request", "dynamic", "per_kib", "per_kib"]
    assert server.debug.enable and cfg.listen.port == 8090


BASE = """server_config = "{server}"
public_server_url = "http://127.0.0.1:8080"
[ledger]
path = "x"
[[routes]]
name = "api"
{route}
upstream = "http://127.0.0.1:9000"
[routes.price]
{price}
"""


@pytest.mark.parametrize(("route", "price", "words"), [
    ('prefix = "/a"', "per_request = 1\nper_kib = 1", "exactly one of per_request, per_kib, callback"),
    ('prefix = "/a"', 'callback = "ftp://x"', "price.callback"),
    ('prefix = "/a"\npattern = "/b"', "per_request = 1", "exactly one of prefix and pattern"),
    ('pattern = "("', "per_request = 1", "routes.api.pattern"),
    ('prefix = "a"', "per_request = 1", "must start with /"),
    ('prefix = "/a"', "per_request = -1", "per_request"),
    ('prefix = "/a"\nmethods = ["BREW"]', "per_request = 1", "methods"),
])
def test_bad_route_configs_name_the_key(tmp_path: Path, route: str, price: str, words: str) -> None:
    server = ROOT / "config" / "debug" / "server.toml"
    path = tmp_path / "gateway.toml"
    path.write_text(BASE.format(server=server, route=route, price=price))
    with pytest.raises(ConfigError, match="routes") as info:
        load_gateway_config(path)
    assert words in info.value.message
