"""Secrets' files: token files others may read, or weak tokens, stop ChanStore and SigningService at start with
one line; the storage directory is tightened to 0700 (files 0600); the store refuses sync = false on live."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import tomli_w

from chan_store.__main__ import main as store_main
from chan_store.config import StoreConfig
from paychan_runtime.config import ConfigError, load_or_create_secret, read_password_file, secret_bits
from paychan_runtime.files import private_directory
from signing_service.__main__ import main as signing_main
from tests.integration.test_signing_service import config_dict


@pytest.fixture(autouse=True)
def keep_umask() -> Iterator[None]:
    """The mains set umask 077 for their process: give the test process its own back."""
    old = os.umask(0o022)
    os.umask(old)
    yield
    os.umask(old)


def _token(tmp_path: Path, text: str, mode: int) -> Path:
    path = tmp_path / "internal.token"
    path.write_text(text + "\n")
    path.chmod(mode)
    return path


CASES = [("ab" * 32, 0o644, "accessible by group or others"), ("ab" * 32, 0o640, "accessible by group or others"),
         ("0123456789abcdef" * 2, 0o600, "weak token"), ("x" * 40, 0o600, "weak token")]


@pytest.mark.parametrize(("text", "mode", "needle"), CASES)
def test_chan_store_refuses_the_token_file(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str,
                                           mode: int, needle: str) -> None:
    token = _token(tmp_path, text, mode)
    config = tmp_path / "store.toml"
    config.write_text(tomli_w.dumps({"network": "test", "listen": {"port": 1}, "auth": {"token_file": str(token)},
                               "storage": {"path": str(tmp_path / "db")}}))
    assert store_main([str(config)]) == 2
    err = capsys.readouterr().err
    assert needle in err and str(token) in err and err.count("\n") == 1


@pytest.mark.parametrize(("text", "mode", "needle"), CASES)
def test_signing_service_refuses_the_token_file(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str,
                                                mode: int, needle: str) -> None:
    token = _token(tmp_path, text, mode)
    config = tmp_path / "signing.toml"
    config.write_text(tomli_w.dumps(config_dict(tmp_path)))
    assert signing_main([str(config)]) == 2
    err = capsys.readouterr().err
    refusal = [line for line in err.splitlines() if line.startswith("signing-service:")]
    assert len(refusal) == 1 and needle in refusal[0] and str(token) in refusal[0]
    assert "Traceback" not in err  # (debug mode also logs its seed warning first)


def test_created_token_is_private_and_strong(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "new.token"
    token = load_or_create_secret(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert secret_bits(token) >= 128 and load_or_create_secret(path) == token


@pytest.mark.parametrize(("text", "bits"), [("ab" * 32, 128), ("ab" * 16, 64), ("A-_z" * 11, 132)])
def test_secret_bits_is_cautious(text: str, bits: float) -> None:
    assert secret_bits(text) == pytest.approx(bits)


def test_wide_storage_directory_is_tightened(tmp_path: Path) -> None:
    db = tmp_path / "db"
    db.mkdir(mode=0o755)
    db.chmod(0o755)
    (db / "000001.ldb").write_bytes(b"x")
    (db / "000001.ldb").chmod(0o644)
    private_directory(db)
    assert stat.S_IMODE(db.stat().st_mode) == 0o700
    assert stat.S_IMODE((db / "000001.ldb").stat().st_mode) == 0o600


def test_store_refuses_unsynced_writes_on_live(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"storage\.sync"):
        StoreConfig.model_validate({"network": "live", "listen": {"port": 1}, "auth": {"token_file": "t"},
                                    "storage": {"path": "db", "sync": False}})
    assert not StoreConfig.model_validate({"network": "test", "listen": {"port": 1}, "auth": {"token_file": "t"},
                                           "storage": {"path": "db", "sync": False}}).storage.sync


def test_signer_refuses_plain_http_rpc_elsewhere(tmp_path: Path) -> None:
    from paychan_runtime.config import load_config
    from signing_service.config import SigningConfig

    data = config_dict(tmp_path, key={"debug_seed": False},
                       funding_check={"mode": "node", "rpc_url": "http://192.0.2.1:18332"})
    path = tmp_path / "signing.toml"
    path.write_text(tomli_w.dumps(data))
    with pytest.raises(ConfigError, match=r"funding_check\.rpc_url"):
        load_config(path, SigningConfig)


@pytest.mark.parametrize("mode", [0o644, 0o640])
def test_chan_store_refuses_a_readable_postgres_password_file(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                             mode: int) -> None:
    token = _token(tmp_path, "ab" * 32, 0o600)
    password = tmp_path / "pg.password"
    password.write_text("s3cret\n")
    password.chmod(mode)
    config = tmp_path / "store.toml"
    config.write_text(tomli_w.dumps({
        "network": "test", "listen": {"port": 1}, "auth": {"token_file": str(token)},
        "storage": {"engine": "postgres", "dsn": "postgresql://paychan@127.0.0.1:1/paychan",
                    "password_file": str(password)}}))
    assert store_main([str(config)]) == 2  # refused before any connection is tried
    err = capsys.readouterr().err
    assert "storage.password_file" in err and "accessible by group or others" in err and err.count("\n") == 1
    assert "s3cret" not in err
    assert store_main(["digest", "postgresql://paychan@127.0.0.1:1/paychan", "--password-file", str(password)]) == 2
    assert "--password-file" in capsys.readouterr().err


def test_private_password_file_is_read(tmp_path: Path) -> None:
    password = tmp_path / "pg.password"
    password.write_text("s3cret\n")
    password.chmod(0o600)
    assert read_password_file(str(password)) == "s3cret" and read_password_file(None) is None
