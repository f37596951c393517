"""deploy/systemd/: one unit per service, each its own user in group paychan, hardened, with the state
folders of config/live; checked by `systemd-analyze verify` (and its offline security score) where
systemd-analyze is installed."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "deploy" / "systemd"
SERVICES = {  # unit -> (entry point, config file, user, state directory)
    "paychan-chan-store.service": ("chan-store", "store.toml", "paychan-store", "paychan/chanstore"),
    "paychan-signing-service.service": ("signing-service", "signing.toml", "paychan-signer", "paychan/signing"),
    "paychan-server.service": ("paychan-server", "server.toml", "paychan-server", "paychan/server"),
}
HARDENING = {"ProtectSystem": "strict", "PrivateTmp": "yes", "NoNewPrivileges": "yes", "ProtectHome": "yes",
             "PrivateDevices": "yes", "UMask": "0077", "CapabilityBoundingSet": "", "StateDirectoryMode": "0700"}


def _unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read_string((UNITS / name).read_text())
    return parser


def test_one_hardened_unit_per_service_with_its_own_user() -> None:
    assert sorted(p.name for p in UNITS.glob("*.service")) == sorted(SERVICES)
    sysusers = (UNITS / "paychan.sysusers.conf").read_text()
    for name, (entry, config, user, state) in SERVICES.items():
        svc = _unit(name)["Service"]
        assert svc["ExecStart"] == f"/opt/paychan/.venv/bin/{entry} /etc/paychan/{config}"
        assert svc["User"] == user and svc["Group"] == "paychan"
        assert svc["StateDirectory"] == state
        assert re.search(rf"^u {user} +-:paychan ", sysusers, re.M), user
        for key, value in HARDENING.items():
            assert svc.get(key) == value, (name, key)


def test_units_match_the_live_config_paths() -> None:
    live = {f: tomllib.loads((ROOT / "config" / "live" / f).read_text())
            for f in ("store.toml", "signing.toml", "server.toml")}
    assert live["store.toml"]["storage"]["path"] == "/var/lib/paychan/chanstore"
    assert live["signing.toml"]["key"]["file"].startswith("/var/lib/paychan/signing/")
    for key in ("token_file", "metrics_token_file"):
        assert live["server.toml"]["management"][key].startswith("/var/lib/paychan/server/")
    assert {c["auth"]["token_file"] for c in live.values()} == {"/etc/paychan/internal.token"}


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_verify(tmp_path: Path) -> None:
    bindir = str(Path(sys.executable).parent) + "/"  # the entry points exist here (verify checks ExecStart)
    for name in SERVICES:
        (tmp_path / name).write_text((UNITS / name).read_text().replace("/opt/paychan/.venv/bin/", bindir))
    units = [str(tmp_path / name) for name in SERVICES]
    out = subprocess.run(["systemd-analyze", "verify", "--man=no", *units], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0 and not out.stderr.strip(), out.stderr  # unknown keys are only warnings
    for unit in units:
        sec = subprocess.run(["systemd-analyze", "security", "--offline=yes", unit], capture_output=True,
                             text=True, timeout=60)
        level = re.search(r"Overall exposure level for \S+: ([0-9.]+)", sec.stdout + sec.stderr)
        assert level is not None, sec.stdout + sec.stderr
        assert float(level.group(1)) < 3.0, f"{unit}: exposure {level.group(1)}"


@pytest.mark.skipif(shutil.which("systemd-sysusers") is None, reason="systemd-sysusers is not installed")
def test_sysusers_file_creates_the_three_users_in_group_paychan(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    out = subprocess.run(["systemd-sysusers", f"--root={tmp_path}", "--dry-run",
                          str(UNITS / "paychan.sysusers.conf")], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    text = out.stdout + out.stderr
    assert "Creating group 'paychan'" in text
    for _, _, user, _ in SERVICES.values():
        assert re.search(rf"Creating user '{user}' .* and GID", text), text
