"""The client refuses, before funding, every channel the server would refuse to open (issue 11; spec 7.2):
every exp_time short of the advertised edge is refused by both, the exact edge opens. The server runs
in-process (tests/support/stack.py) with its clock held still, so "the exact edge" is exact."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from pathlib import Path

import pytest

from paychan_client import ClientChannel, PaychanClient
from paychan_client.cli import main as cli_main
from paychan_client.models import FAMILIES, Family
from paychan_client.terms import OpenPlan, TermsRefused
from paychan_common.channel import debug_funding
from paychan_common.keys import PrivateKey
from paychan_common.network import Network
from tests.support.channels import TestChannel
from tests.support.fakes import FakeClock
from tests.support.stack import Stack

HOUR = 3600


def _client(stack: Stack) -> PaychanClient:
    return PaychanClient(str(stack.public.server.make_url("")).rstrip("/"), Network.TEST)


@pytest.mark.parametrize("family", FAMILIES)
async def test_every_refused_exp_time_is_refused_before_funding_and_the_edge_opens(stack: Stack,
                                                                                   family: Family) -> None:
    now = int(time.time())
    stack.service.clock = FakeClock(now=now)  # held still: nothing advances it
    key = PrivateKey(secrets.token_bytes(32))
    with _client(stack) as client:
        probe = await asyncio.to_thread(client.funding_info, key.public_key, now + 30 * 24 * HOUR, family)
        edge = probe.earliest_exp_time
        assert edge == now + (48 + 12) * HOUR  # min_duration_hours + settlement_period_hours (spec 7.2)
        assert probe.min_duration_hours in (48, None)  # v1 does not carry it; the extra field does
        for exp in (edge - 1, edge - HOUR, now + 48 * HOUR, now + 49 * HOUR, now):
            fake = debug_funding(key.public_key, exp, b"")
            with pytest.raises(TermsRefused, match=f"exp_time {exp} is too soon"):
                await asyncio.to_thread(client.check_fundable, key.public_key, OpenPlan(exp, fake.value), family,
                                        allowance=0)
            # ... and the server does refuse it: the same open sent without the client's check
            ch = TestChannel(exp_time=exp)
            change = ch.funding_value - 100_000
            r = await stack.public.post(ch.v23_url, params={"secret": ch.secret(change)}, json=ch.v23_full(change))
            assert r.status == 400 and (await r.json())["code"] == "exp_time_too_soon"
        fake = debug_funding(key.public_key, edge, b"")
        info = await asyncio.to_thread(client.check_fundable, key.public_key, OpenPlan(edge, fake.value), family,
                                       allowance=0)
        update = await asyncio.to_thread(client.open_channel, key, edge, fake.outpoint, fake.value, family, info=info)
    assert update.result.channel_status == "open" and update.channel.exp_time == edge


async def test_funding_terms_beyond_the_exp_time(stack: Stack) -> None:
    now = int(time.time())
    stack.service.clock = FakeClock(now=now)  # held still: nothing advances it
    key = PrivateKey(secrets.token_bytes(32))
    exp = now + 7 * 24 * HOUR
    with _client(stack) as client:
        async def refused(plan: OpenPlan, needle: str, allowance: int | None = 0) -> None:
            with pytest.raises(TermsRefused, match=needle):
                await asyncio.to_thread(client.check_fundable, key.public_key, plan, "v2.3", allowance=allowance)

        await refused(OpenPlan(exp, 99_999), "does not cover the opening payment 100000")
        await refused(OpenPlan(exp, 100_500), "leaves 500 sat of change")  # below dust: all would go to the server
        await refused(OpenPlan(exp, 200_000, open_value=50_000), "below the server's open price")
        await refused(OpenPlan(exp, 200_000, refund_address="1M8iwBs5XD7ZJQJCDC7BdLEpSivRQZJ2Hg"), "not for the test")
        edge = now + 60 * HOUR
        await refused(OpenPlan(edge, 200_000), "plus 6600 s until the funding confirms", allowance=None)
        for ok in (OpenPlan(exp, 100_000), OpenPlan(exp, 100_700), OpenPlan(edge + 6600, 200_000)):
            await asyncio.to_thread(client.check_fundable, key.public_key, ok, "v2.3",
                                    allowance=None if ok.exp_time == edge + 6600 else 0)


@pytest.mark.parametrize("family", FAMILIES)
async def test_cli_status_says_closed_after_a_manual_close(stack: Stack, tmp_path: Path, family: Family,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    key = PrivateKey(secrets.token_bytes(32))
    exp = int(time.time()) + 7 * 24 * HOUR
    fake = debug_funding(key.public_key, exp, b"")
    with _client(stack) as client:
        update = await asyncio.to_thread(client.open_channel, key, exp, fake.outpoint, fake.value, family)
    state = tmp_path / "ch.json"
    update.channel.save(state)
    status, _ = await stack.mgmt("POST", f"/channels/{fake.outpoint.display_txid}/{fake.outpoint.vout}/close")
    assert status in (200, 202)
    code = await asyncio.to_thread(cli_main, ["status", "--state", str(state)])
    assert code == 0, capsys.readouterr().err
    assert json.loads(capsys.readouterr().out)["status"] == "closed"
    assert ClientChannel.load(state).status == "closed"
