"""ChanStore's fast front (chan_store/front.py) answers exactly as its aiohttp app does, and hands over cleanly.

Two ChanStore processes run side by side, one with `listen.fast_front = true` (the default) and one with it
off; the same channels are created in both, and the same raw requests are sent to both, each on a new
connection: every answer must agree in status, reason phrase, headers (but Date) and body, and both stores
must end with the same states. Then, on the fronted store alone: pipelined batches and another request on
one connection are answered in order across the hand-over, a batch in many small segments is served, and
PayChanServer's client (`ChanStoreClient`) pays through it after its other requests.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Iterator

import pytest

from chan_store.client import ChanStoreClient
from chan_store.contract import (
    PAYMENTS_CONTENT_TYPE,
    PaymentApplied,
    PaymentItem,
    decode_payment_results,
    encode_payments_request,
    outpoint_hex,
)
from paychan_common.errors import ChannelNotFound
from paychan_common.state import ChannelState, Status
from paychan_common.tx import OutPoint
from tests.support.raw_http import Answer, exchange, request
from tests.support.services import Services
from tests.support.synthetic import synthetic_states

pytestmark = pytest.mark.functional

NOW = 1_700_000_000
DER = b"\x30" * 70
OPEN = [s for s in synthetic_states(30) if s.status is Status.OPEN]
A, B, C = OPEN[0], OPEN[1], OPEN[2]


def _batch(*pairs: tuple[ChannelState, int]) -> bytes:
    return encode_payments_request([PaymentItem(s.outpoint, change, DER, 0x83) for s, change in pairs], NOW)


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Services, Services]]:
    fast = Services(tmp_path_factory.mktemp("fast"))
    slow = Services(tmp_path_factory.mktemp("slow"), store={"listen": {"fast_front": False}})
    for svc in (fast, slow):
        svc.start_store()

    async def create(svc: Services) -> None:
        client = ChanStoreClient(f"http://127.0.0.1:{svc.store_port}", svc.token)
        try:
            for state in OPEN:
                await client.create(state)
        finally:
            await client.close()

    try:
        for svc in (fast, slow):
            asyncio.run(create(svc))
        yield fast, slow
    finally:
        for svc in (fast, slow):
            svc.stop()


def _cases(token: str) -> list[tuple[str, str, str, dict[str, str], bytes]]:
    auth = {"Authorization": f"Bearer {token}", "Content-Type": PAYMENTS_CONTENT_TYPE}
    json_auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    return [
        ("a batch", "POST", "/payments", auth, _batch((A, A.change_value - 1), (B, B.change_value - 5))),
        ("the same batch again", "POST", "/payments", auth, _batch((A, A.change_value - 1), (B, B.change_value - 5))),
        ("a batch with refusals", "POST", "/payments", auth,
         _batch((A, A.change_value + 10), (C, C.change_value - 2), (A, A.change_value - 3))),
        ("an unknown channel", "POST", "/payments", auth,
         encode_payments_request([PaymentItem(OutPoint(b"\x11" * 32, 0), 5000, DER, 0x83)], NOW)),
        ("truncated", "POST", "/payments", auth, _batch((A, A.change_value - 4))[:20]),
        ("empty body", "POST", "/payments", auth, b""),
        ("wrong token", "POST", "/payments", {**auth, "Authorization": "Bearer " + "0" * len(token)},
         _batch((A, A.change_value - 6))),
        ("no token", "POST", "/payments", {"Content-Type": PAYMENTS_CONTENT_TYPE}, _batch((A, A.change_value - 6))),
        ("media type with a parameter (aiohttp)", "POST", "/payments",
         {**auth, "Content-Type": PAYMENTS_CONTENT_TYPE + "; v=1"}, _batch((A, A.change_value - 7))),
        ("a JSON batch (aiohttp)", "POST", "/payments", json_auth,
         json.dumps({"now": NOW, "payments": [{"outpoint": outpoint_hex(B.outpoint), "change_value": B.change_value - 9,
                                               "signature": DER.hex(), "sighash": 0x83}]}).encode()),
        ("GET on /payments (aiohttp's 405)", "GET", "/payments", auth, b""),
        ("query string (aiohttp)", "POST", "/payments?x=1", auth, _batch((A, A.change_value - 8))),
        ("another route (aiohttp)", "GET", f"/channels/{outpoint_hex(A.outpoint)}", auth, b""),
    ]


def test_every_answer_is_the_same_with_and_without_the_front(stores: tuple[Services, Services]) -> None:
    fast, slow = stores
    assert fast.token != slow.token
    answers: dict[str, Answer] = {}
    for (name, method, path, headers, body), (_, _, _, slow_headers, _) in zip(
            _cases(fast.token), _cases(slow.token), strict=True):
        [a] = exchange(fast.store_port, [request(method, path, body, headers)], 1)
        [b] = exchange(slow.store_port, [request(method, path, body, slow_headers)], 1)
        assert a == b, name
        answers[name] = a
        if a[0] != 200:
            assert set(json.loads(a[3])["error"]) == {"class", "code", "message"}, name
    for name in ("a batch", "the same batch again"):
        status, _, headers, body = answers[name]
        assert status == 200 and headers["content-type"] == "application/x-chanstore-results", name
        assert [type(r) for r in decode_payment_results(body)] == [PaymentApplied, PaymentApplied], name
    refused = decode_payment_results(answers["a batch with refusals"][3])
    assert [type(r).__name__ for r in refused] == ["InvalidPayment", "PaymentApplied", "PaymentApplied"]
    assert answers["wrong token"][0] == answers["no token"][0] == 401
    assert answers["truncated"][0] == 400 and json.loads(answers["truncated"][3])["error"]["code"] == "bad_binary"
    # and both stores hold the same states
    for state in (A, B, C):
        path = f"/channels/{outpoint_hex(state.outpoint)}"
        got = [exchange(svc.store_port, [request("GET", path, b"", {"Authorization": f"Bearer {svc.token}"})], 1)[0]
               for svc in (fast, slow)]
        assert got[0][0] == 200 and got[0][3] == got[1][3]


def test_pipelined_batches_are_answered_in_order_across_the_hand_over(stores: tuple[Services, Services]) -> None:
    fast, _ = stores
    auth = {"Authorization": f"Bearer {fast.token}", "Content-Type": PAYMENTS_CONTENT_TYPE}
    base = C.change_value - 100
    wire = b"".join([
        request("POST", "/payments", _batch((C, base)), auth),
        request("POST", "/payments", _batch((C, base - 10)), auth),
        request("GET", "/health", b"", {}),  # not a batch: aiohttp takes the connection from here on
        request("POST", "/payments", _batch((C, base - 30)), auth),
    ])
    answers = exchange(fast.store_port, [wire], 4)
    assert [a[0] for a in answers] == [200, 200, 200, 200]
    received = [decode_payment_results(answers[i][3])[0] for i in (0, 1, 3)]
    assert all(isinstance(r, PaymentApplied) for r in received)
    assert [r.change_value for r in received if isinstance(r, PaymentApplied)] == [base, base - 10, base - 30]
    assert json.loads(answers[2][3])["ok"] is True
    # a batch in 5-byte segments
    wire = request("POST", "/payments", _batch((C, base - 31)), auth)
    [answer] = exchange(fast.store_port, [wire[i:i + 5] for i in range(0, len(wire), 5)], 1)
    [result] = decode_payment_results(answer[3])
    assert isinstance(result, PaymentApplied) and result.value_received == 1


def test_thousands_of_pipelined_batches_answered_at_once_are_served_in_order(stores: tuple[Services, Services]) -> None:
    """A batch whose items are all refused has no write to wait for: its answer is delivered from within the
    front's request loop. Far more of them than Python's recursion limit, pipelined on one connection, are
    answered in order (the loop does not recurse), and then a paying batch still is."""
    fast, _ = stores
    auth = {"Authorization": f"Bearer {fast.token}", "Content-Type": PAYMENTS_CONTENT_TYPE}
    unknown = [OutPoint(hashlib.sha256(b"never created %d" % i).digest(), i) for i in range(2500)]
    base = B.change_value - 100
    wire = b"".join([*(request("POST", "/payments", encode_payments_request(
                         [PaymentItem(op, 1000, DER, 0x83)], NOW), auth) for op in unknown),
                     request("POST", "/payments", _batch((B, base)), auth)])
    answers = exchange(fast.store_port, [wire], len(unknown) + 1)
    assert [a[0] for a in answers] == [200] * (len(unknown) + 1)
    refused = [decode_payment_results(a[3])[0] for a in answers[:-1]]
    assert all(isinstance(r, ChannelNotFound) for r in refused)
    assert [str(op) in str(r) for op, r in zip(unknown, refused, strict=True)] == [True] * len(unknown)
    [paid] = decode_payment_results(answers[-1][3])
    assert isinstance(paid, PaymentApplied) and paid.change_value == base


async def test_the_client_pays_through_the_front_after_other_requests(stores: tuple[Services, Services]) -> None:
    fast, _ = stores
    client = ChanStoreClient(f"http://127.0.0.1:{fast.store_port}", fast.token)
    try:
        state = await client.get(OPEN[4].outpoint)  # a general request first: its connection goes to aiohttp
        assert state is not None
        applied = await asyncio.gather(*(client.apply_payment(s.outpoint, s.change_value - 2, DER, 0x83, NOW)
                                         for s in OPEN[4:8]))
        assert [a.value_received for a in applied] == [2, 2, 2, 2]
        after = await client.get(OPEN[5].outpoint)
        assert after is not None and after.change_value == OPEN[5].change_value - 2
    finally:
        await client.close()
