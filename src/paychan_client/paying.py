"""Paying for HTTP through paychan-gateway: an httpx auth flow (sync and async) that answers 402 Payment
Required by paying from an open channel, or by opening one when allowed, within a budget, and retries.

    auth = PayingAuth(wallet, Budget(per_request=5_000, total=1_000_000))
    httpx.get(url, auth=auth)                       # or httpx.Client(auth=auth), httpx.AsyncClient(auth=auth)

Each request carries an `Idempotency-Key`, so the payment is bound to it: retried after a 502/503/504 (the
gateway did not charge) with the same payment, it is served once and charged once.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import uuid
from collections.abc import AsyncGenerator, Callable, Generator
from dataclasses import dataclass, field, replace

import httpx

from paychan_common.channel import debug_funding
from paychan_common.keys import PrivateKey
from paychan_common.network import Network
from paychan_common.state import Family
from paychan_common.tx import OutPoint

from .api import ClientFlows, Flow
from .errors import InvalidArgument
from .models import FundingInfo
from .payments import sign
from .state import ClientChannel

__all__ = ["Budget", "ChannelWallet", "PayingAuth", "debug_funder", "payment_header"]

Funder = Callable[[FundingInfo], tuple[OutPoint, int]]
"""Funds a new channel's address (spec 3.3) and returns the funding outpoint and value."""

RETRY_STATUSES = frozenset({502, 503, 504})


def debug_funder(info: FundingInfo) -> tuple[OutPoint, int]:
    """The debug-mode fake funding the server derives from the client key (spec 9); test networks only."""
    f = debug_funding(info.params.client_pubkey, info.params.exp_time, info.params.funding_address.script_pubkey)
    return f.outpoint, f.value


def payment_header(channel: ClientChannel) -> str:
    """`Paychan <txid>:<vout>:<secret> <change_value>:<signature_data>` for the channel's latest payment."""
    sig = channel.latest_signature
    return (f"Paychan {channel.funding_outpoint.display_txid}:{channel.funding_outpoint.vout}:{channel.secret} "
            f"{channel.change_value}:{sig.script_sig_push.hex()}")


@dataclass
class Budget:
    """Limits on what the flow pays: per request, per channel (opening payment included), in total."""

    per_request: int | None = None
    per_channel: int | None = None
    total: int | None = None
    spent: int = 0
    per_channel_spent: dict[str, int] = field(default_factory=dict)

    def allows(self, amount: int, channel: str, *, request_spent: int = 0) -> bool:
        """Whether paying `amount` more keeps every limit."""
        return ((self.per_request is None or request_spent + amount <= self.per_request)
                and (self.per_channel is None or self.per_channel_spent.get(channel, 0) + amount <= self.per_channel)
                and (self.total is None or self.spent + amount <= self.total))

    def spend(self, amount: int, channel: str) -> None:
        """Count a payment."""
        self.spent += amount
        self.per_channel_spent[channel] = self.per_channel_spent.get(channel, 0) + amount


class ChannelWallet:
    """The v2.3.0 channels a paying client holds, one per PayChanServer; opens one through `funder` when allowed.

    One request at a time per channel: payments on a channel must reach the gateway in the order signed."""

    def __init__(self, network: Network, *, channels: list[ClientChannel] | None = None,
                 funder: Funder | None = None, duration_hours: int = 24 * 7,
                 on_update: Callable[[ClientChannel], None] | None = None) -> None:
        self.network = network
        self.funder = funder
        self.duration_hours = duration_hours
        self.on_update = on_update
        self._channels: dict[str, ClientChannel] = {}
        self._lock = threading.Lock()
        for ch in channels or []:
            if ch.family is not Family.V2_3:
                raise InvalidArgument("paying through a gateway needs a v2.3 channel (compact payments)")
            self._channels[origin(ch.channel_url)] = ch

    def channel(self, server_url: str) -> ClientChannel | None:
        """The open channel with this server, if any."""
        ch = self._channels.get(origin(server_url))
        return ch if ch is not None and ch.status == "open" else None

    def _store(self, ch: ClientChannel) -> None:
        self._channels[origin(ch.channel_url)] = ch
        if self.on_update is not None:
            self.on_update(ch)

    def open_flow(self, server_url: str, budget: Budget) -> Flow[ClientChannel | None]:
        """Open a channel with the server when a funder is set and the open price fits the budget."""
        if self.funder is None:
            return None
        flows = ClientFlows(server_url, self.network)
        key = PrivateKey(secrets.token_bytes(32))
        exp_time = int(time.time()) + self.duration_hours * 3600
        info = yield from flows.funding_info_flow(key.public_key, exp_time, Family.V2_3)
        if not budget.allows(info.open_price, "new"):
            return None
        outpoint, value = self.funder(info)
        update = yield from flows.open_channel_flow(key, exp_time, outpoint, value, Family.V2_3, info=info)
        budget.spend(info.open_price, f"{outpoint.display_txid}:{outpoint.vout}")
        self._store(update.channel)
        return update.channel

    def pay(self, channel: ClientChannel, amount: int) -> ClientChannel:
        """Sign a payment of `amount` more; the channel is updated at once (the gateway may have it)."""
        with self._lock:
            current = self._channels.get(origin(channel.channel_url), channel)
            if amount > current.change_value - current.dust_limit:
                raise InvalidArgument(f"channel has {current.change_value} sat left, cannot pay {amount}")
            p = sign(current.client_key, current.funding_outpoint, current.redeem_script, current.change_value - amount,
                     current.change_address, self.network, current.dust_limit)
            updated = current.with_payment(p.change_value, p.signature)
            self._store(updated)
            return updated


def origin(url: str) -> str:
    """scheme://host[:port] of a URL."""
    u = httpx.URL(url)
    return f"{u.scheme}://{u.netloc.decode()}"


@dataclass(frozen=True, slots=True)
class _Challenge:
    """What a 402 from paychan-gateway asks."""

    code: str
    price: int
    amount_due: int
    server_url: str
    route: str

    @classmethod
    def parse(cls, response: httpx.Response) -> _Challenge | None:
        if not response.headers.get("www-authenticate", "").startswith("Paychan "):
            return None
        try:
            body = json.loads(response.content)
            return cls(str(body["code"]), int(body["price"]), int(body["amount_due"]), str(body["server_url"]),
                       str(body["route"]))
        except (ValueError, KeyError, TypeError):
            return None


class PayingAuth(httpx.Auth):
    """httpx auth flow: pays the gateway's 402 from the wallet within the budget, then retries."""

    def __init__(self, wallet: ChannelWallet, budget: Budget | None = None, *, retries: int = 2,
                 prepay: bool = True) -> None:
        self.wallet = wallet
        self.budget = budget if budget is not None else Budget()
        self.retries = retries
        self.prepay = prepay
        self._hints: dict[tuple[str, str, str], _Challenge] = {}  # (origin, method, folder) -> last 402
        self._credit: dict[str, int] = {}  # channel -> credit the gateway last reported (Paychan-Credit)

    @staticmethod
    def _hint_key(request: httpx.Request) -> tuple[str, str, str]:
        path = request.url.path
        return (origin(str(request.url)), request.method, path[:path.rfind("/") + 1])

    def _attach(self, request: httpx.Request, challenge: _Challenge, paid: int) -> Flow[int | None]:
        """Sign a payment of what the challenge asks onto the request; None if the budget or the wallet say no."""
        channel = self.wallet.channel(challenge.server_url)
        if channel is None:
            channel = yield from self.wallet.open_flow(challenge.server_url, self.budget)
            if channel is None:
                return None
        name = f"{channel.funding_outpoint.display_txid}:{channel.funding_outpoint.vout}"
        # A 402 for a request on our channel knows its credit; before that, use what the gateway last said.
        known = self._credit.get(name, 0) if challenge.code == "payment_required" else 0
        amount = max(challenge.amount_due - known, 1)
        room = channel.change_value - channel.dust_limit
        if not self.budget.allows(amount, name, request_spent=paid) or amount > room:
            return None
        channel = self.wallet.pay(channel, amount)
        self.budget.spend(amount, name)
        request.headers["Authorization"] = payment_header(channel)
        return amount

    def flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """The sans-I/O flow: yields requests (the user's, and any to open a channel) and reads their answers."""
        request.headers.setdefault("Idempotency-Key", uuid.uuid4().hex)
        hint = self._hints.get(self._hint_key(request)) if self.prepay else None
        paid = 0
        if hint is not None:  # prepay the price last asked on this path's folder, less known credit
            prepay = replace(hint, code="payment_required", amount_due=hint.price)
            paid += (yield from self._attach(request, prepay, paid)) or 0
        response = yield request
        retries = self.retries
        while True:
            if response.status_code == 402:
                challenge = _Challenge.parse(response)
                if challenge is None:
                    return
                self._hints[self._hint_key(request)] = challenge
                got = yield from self._attach(request, challenge, paid)
                if got is None:
                    return
                paid += got
                request.headers["Idempotency-Key"] = uuid.uuid4().hex  # a new payment: a new request
            elif response.status_code in RETRY_STATUSES and "Authorization" in request.headers and retries > 0:
                retries -= 1  # not charged: the same payment serves the same request once it is answered
            else:
                self._note_credit(request, response)
                return
            response = yield request

    def _note_credit(self, request: httpx.Request, response: httpx.Response) -> None:
        credit = response.headers.get("paychan-credit", "")
        auth = request.headers.get("Authorization", "").split()
        if credit.isdigit() and len(auth) == 3:
            self._credit[auth[1].rsplit(":", 1)[0]] = int(credit)

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Drive the flow synchronously, reading the body of every answer but the final one's."""
        flow = self.flow(request)
        try:
            next_request = next(flow)
            while True:
                response = yield next_request
                if next_request is not request or response.status_code == 402:
                    response.read()
                next_request = flow.send(response)
        except StopIteration:
            return

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """Drive the flow asynchronously, reading the body of every answer but the final one's."""
        flow = self.flow(request)
        try:
            next_request = next(flow)
            while True:
                response = yield next_request
                if next_request is not request or response.status_code == 402:
                    await response.aread()
                next_request = flow.send(response)
        except StopIteration:
            return



def get_ranges(http: httpx.Client, url: str, write: Callable[[bytes], object], *, offset: int = 0,
               headers: dict[str, str] | None = None) -> tuple[int, httpx.Response]:
    """GET a resource piece by piece with `Range: bytes=N-` (a metered gateway answers 206 with what was paid
    for); returns the bytes written and the last response: 200/206 when complete, else the refusal (e.g. 402)."""
    written = 0
    while True:
        with http.stream("GET", url, headers={**(headers or {}), "Range": f"bytes={offset + written}-"}) as r:
            if r.status_code not in (200, 206):
                r.read()
                return written, r
            for chunk in r.iter_bytes():
                write(chunk)
                written += len(chunk)
            total = r.headers.get("content-range", "").rpartition("/")[2]
            if r.status_code == 200 or not total.isdigit() or offset + written >= int(total):
                return written, r
