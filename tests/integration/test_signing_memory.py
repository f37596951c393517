"""The SigningService remembers what it signed (spec 8.6): an older client state and a lower fee rate are
refused for the same outpoint, also after a restart (the memory file is read again); the record is on disk
before the answer; a torn last line is dropped and a damaged one refuses start-up."""

# ruff: noqa: F401, F811  (make_client is test_signing_service's fixture, imported to be requested by name)
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from paychan_runtime.config import ConfigError
from signing_service.app import create_app
from signing_service.config import SigningConfig
from signing_service.keystore import load_server_key
from tests.integration.test_signing_service import (
    CLOSING_CHANGE,
    FEE,
    SETTLEMENT_TXID,
    config_dict,
    make_client,  # a fixture, used by name
    post_sign,
    sign_request,
)

NEWER = CLOSING_CHANGE - 50_000  # a later payment: less change back to the client


async def test_an_older_state_is_refused_after_a_newer_one_also_after_a_restart(make_client: Any,
                                                                                  tmp_path: Path) -> None:
    client, token = await make_client()
    status, answer = await post_sign(client, token, sign_request(change_value=NEWER))
    assert status == 200, answer
    status, answer = await post_sign(client, token, sign_request())  # vector B's (older) state
    assert status == 403 and answer["error"]["code"] == "older_state", answer
    assert (tmp_path / "signed_settlements.jsonl").read_text().count("\n") == 1, "recorded before answering"

    client2, token2 = await make_client()  # a new app reading the same memory file: a restart
    status, answer = await post_sign(client2, token2, sign_request())
    assert status == 403 and answer["error"]["code"] == "older_state", answer
    status, answer = await post_sign(client2, token2, sign_request(change_value=NEWER))
    assert status == 200, "the same state again is fine"


async def test_a_lower_fee_rate_replacement_is_refused(make_client: Any) -> None:
    client, token = await make_client()
    status, first = await post_sign(client, token, sign_request(fee=FEE))
    assert status == 200 and first["txid"] == SETTLEMENT_TXID
    status, again = await post_sign(client, token, sign_request(fee=FEE))
    assert status == 200 and again["tx"] == first["tx"], "asking again for what was signed: the same tx"
    status, bumped = await post_sign(client, token, sign_request(fee=FEE + 5_000))
    assert status == 200 and bumped["fee"] == FEE + 5_000
    for fee in (FEE, FEE + 4_999):
        status, answer = await post_sign(client, token, sign_request(fee=fee))
        assert status == 403 and answer["error"]["code"] == "lower_fee_rate", answer

    client2, token2 = await make_client()
    status, answer = await post_sign(client2, token2, sign_request(fee=FEE))
    assert status == 403 and answer["error"]["code"] == "lower_fee_rate", "remembered across a restart"


async def test_a_torn_last_line_is_dropped_and_other_outpoints_are_independent(make_client: Any,
                                                                              tmp_path: Path) -> None:
    memory = tmp_path / "signed_settlements.jsonl"
    other = {"outpoint": "00" * 32 + ":0", "change": 5, "fee": 1, "size": 300}
    memory.write_text(json.dumps(other) + "\n" + '{"outpoint": "15')  # a crash mid-write
    client, token = await make_client()
    status, answer = await post_sign(client, token, sign_request())
    assert status == 200, answer
    lines = memory.read_text().splitlines()
    assert [json.loads(line)["outpoint"] for line in lines] == [other["outpoint"], answer_outpoint()]


def answer_outpoint() -> str:
    body = sign_request()
    return f"{body['funding_txid']}:{body['funding_vout']}"


@pytest.mark.parametrize("damage", ["not json\n", '{"outpoint": "x"}\n', '{"outpoint": "x", "change": "a", '
                                    '"fee": 1, "size": 1}\n'])
def test_a_damaged_memory_file_refuses_start_up(tmp_path: Path, damage: str) -> None:
    (tmp_path / "signed_settlements.jsonl").write_text(damage + json.dumps(
        {"outpoint": "00" * 32 + ":0", "change": 5, "fee": 1, "size": 300}) + "\n")
    config = SigningConfig.model_validate(config_dict(tmp_path))
    with pytest.raises(ConfigError, match="line 1 is damaged"):
        create_app(config, load_server_key(config.key, config.net))


async def test_memory_file_location_is_configurable(make_client: Any, tmp_path: Path) -> None:
    where = tmp_path / "elsewhere.jsonl"
    client, token = await make_client(memory={"file": str(where)})
    status, _answer = await post_sign(client, token, sign_request())
    assert status == 200 and where.read_text().count("\n") == 1
    assert not (tmp_path / "signed_settlements.jsonl").exists()
