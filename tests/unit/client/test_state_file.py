"""State file: atomic save, 0600, round trips, and refusal of damaged files."""

from __future__ import annotations

import json
import os
import stat
from dataclasses import replace
from pathlib import Path

import pytest

from paychan_client import ChannelDraft, ClientChannel, Family, StateFileError, load_any
from paychan_common.keys import PrivateKey

from .vectors import (
    CLIENT_KEY,
    EXP,
    FUNDING_ADDRESS,
    NETWORK,
    OUTPOINT,
    REDEEM,
    REFUND_ADDRESS,
    SERVER_PUBKEY,
    VALUE,
    opened_v23_channel,
)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_round_trip_and_mode(tmp_path: Path) -> None:
    path = tmp_path / "chan.json"
    ch = opened_v23_channel()
    ch.save(path)
    assert ClientChannel.load(path) == ch
    assert mode(path) == 0o600
    assert os.listdir(tmp_path) == ["chan.json"]  # no temp file left behind
    data = json.loads(path.read_text())
    assert data["client_privkey"] == "11" * 32 and data["funding_address"] == FUNDING_ADDRESS
    assert data["sighash"] == "83" and data["funding_txid"] == OUTPOINT.display_txid


def test_closed_channel_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "chan.json"
    ch = replace(opened_v23_channel(), status="closed", settlement_txid="ab" * 32)
    ch.save(path)
    assert ClientChannel.load(path) == ch


def test_save_replaces_an_existing_file_and_keeps_0600(tmp_path: Path) -> None:
    path = tmp_path / "chan.json"
    path.write_text("old")
    path.chmod(0o644)
    ch = replace(opened_v23_channel(), change_value=1000)
    ch.save(path)
    assert mode(path) == 0o600
    assert ClientChannel.load(path).change_value == 1000


def test_failed_replace_leaves_the_old_file_and_no_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "chan.json"
    opened_v23_channel().save(path)
    before = path.read_bytes()

    def broken(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(StateFileError, match="No space left"):
        replace(opened_v23_channel(), change_value=5).save(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["chan.json"]


def test_save_into_a_missing_directory_is_a_state_file_error(tmp_path: Path) -> None:
    with pytest.raises(StateFileError):
        opened_v23_channel().save(tmp_path / "nope" / "chan.json")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(StateFileError, match="does not exist"):
        ClientChannel.load(tmp_path / "absent.json")


@pytest.mark.parametrize("text", ["{not json", "[]", '{"format": "other"}',
                                  '{"format": "paychan-client-state", "version": 99}'])
def test_foreign_or_broken_files_are_refused(tmp_path: Path, text: str) -> None:
    path = tmp_path / "chan.json"
    path.write_text(text)
    with pytest.raises(StateFileError):
        ClientChannel.load(path)


@pytest.mark.parametrize(("key", "value", "match"), [
    ("redeem_script", REDEEM[:-2] + "ad", "redeem_script"),
    ("sighash", "01", "sighash"),
    ("change_value", VALUE + 1, "change_value"),
    ("client_privkey", "00" * 32, "client_privkey"),
    ("funding_vout", -1, "funding_vout"),
    ("status", "opening", "status"),
    ("network", "mainnet", "network"),
    ("refund_address", "1M8iwBs5XD7ZJQJCDC7BdLEpSivRQZJ2Hg", "network"),
])
def test_invalid_fields_are_named(tmp_path: Path, key: str, value: object, match: str) -> None:
    path = tmp_path / "chan.json"
    data = opened_v23_channel().to_json()
    data[key] = value
    path.write_text(json.dumps(data))
    with pytest.raises(StateFileError, match=match):
        ClientChannel.load(path)


def test_draft_round_trip_and_stage_checks(tmp_path: Path) -> None:
    path = tmp_path / "draft.json"
    draft = ChannelDraft(NETWORK, Family.V1, PrivateKey(bytes.fromhex("22" * 32)), endpoint="http://x",
                         refund_address=REFUND_ADDRESS)
    draft.save(path)
    assert mode(path) == 0o600
    assert load_any(path) == draft
    with pytest.raises(StateFileError, match="no opened channel"):
        ClientChannel.load(path)
    full = replace(draft, client_key=CLIENT_KEY, exp_time=EXP, server_pubkey=SERVER_PUBKEY, dust_limit=700,
                   open_price=83_920, funding_outpoint=OUTPOINT, funding_value=VALUE)
    full.save(path)
    assert load_any(path) == full
    assert json.loads(path.read_text())["funding_address"] == FUNDING_ADDRESS
    opened_v23_channel().save(path)
    assert isinstance(load_any(path), ClientChannel)


@pytest.mark.parametrize(("family", "written"),
                         [(Family.V1, "v1"), (Family.V2_SEED, "v2-seed"), (Family.V2_3, "v2.3.0")])
def test_new_files_name_the_family_by_its_label(tmp_path: Path, family: Family, written: str) -> None:
    channel_path, draft_path = tmp_path / "chan.json", tmp_path / "draft.json"
    replace(opened_v23_channel(), family=family).save(channel_path)
    ChannelDraft(NETWORK, family, CLIENT_KEY).save(draft_path)
    for path in (channel_path, draft_path):
        assert json.loads(path.read_text())["family"] == written
        loaded = load_any(path)
        assert loaded.family is family


@pytest.mark.parametrize(("old", "family"), [("v1", Family.V1), ("v2", Family.V2_SEED), ("v2.3", Family.V2_3)])
def test_files_of_earlier_versions_with_short_family_names_still_load(tmp_path: Path, old: str,
                                                                      family: Family) -> None:
    channel_path, draft_path = tmp_path / "chan.json", tmp_path / "draft.json"
    for path, data in ((channel_path, opened_v23_channel().to_json()),
                       (draft_path, ChannelDraft(NETWORK, Family.V1, CLIENT_KEY).to_json())):
        data["family"] = old  # as every version before the core Family wrote it
        path.write_text(json.dumps(data))
        assert load_any(path).family is family
    assert ClientChannel.load(channel_path) == replace(opened_v23_channel(), family=family)


@pytest.mark.parametrize("bad", ["v3", "V2", "", 2, None])
def test_an_unknown_family_is_named(tmp_path: Path, bad: object) -> None:
    path = tmp_path / "chan.json"
    data = opened_v23_channel().to_json()
    data["family"] = bad
    path.write_text(json.dumps(data))
    with pytest.raises(StateFileError, match="family"):
        ClientChannel.load(path)


def test_private_key_never_in_repr() -> None:
    assert "11" * 32 not in repr(opened_v23_channel())
    assert "client_privkey" not in opened_v23_channel().public_json()
