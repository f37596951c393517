"""PaychanClient: funding info, open, pay, close and refund over the three route families (spec 6)."""

from __future__ import annotations

import json
import time
from collections.abc import Generator
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any, TypeVar

import httpx

from paychan_common.keys import PrivateKey, PublicKey
from paychan_common.messages import ChannelLocation
from paychan_common.network import Network
from paychan_common.tx import OutPoint

from .errors import BadResponse, ChannelStateError, InvalidArgument, ServerRejected, TransportError
from .models import Family, FundingInfo, PaymentResult, parse_family, parse_response
from .payments import SignedPayment, client_address, parse_address, sign
from .refund import build_refund_tx
from .routes import Routes, close_url, outpoint_in_url
from .state import ClientChannel
from .terms import OpenPlan, check_open, confirmation_allowance

_OPEN_OK = frozenset({200, 201, 202})  # 201 (spec); the JS client also accepts 202 (spec 6.2)
_PAY_OK = frozenset({200, 202})
_CLOSE_OK = frozenset({200, 202})  # v1 DELETE answers 202, later servers 200 (spec 6.2)

Params = list[tuple[str, str]]
T = TypeVar("T")
Flow = Generator[httpx.Request, httpx.Response, T]
"""A sans-I/O protocol step: yields requests, receives their responses, returns its result."""


@dataclass(frozen=True, slots=True)
class ChannelUpdate:
    """The channel after an accepted request, and the server's PaymentResult."""

    channel: ClientChannel
    result: PaymentResult

    @property
    def settlement_txid(self) -> str | None:
        """The settlement txid once the channel is closed."""
        return self.channel.settlement_txid


class ClientFlows:
    """The protocol of one server endpoint and network as sans-I/O flows: generators that yield each
    httpx.Request and receive its httpx.Response (driven by PaychanClient, AsyncPaychanClient, or an
    httpx auth flow)."""

    def __init__(self, endpoint: str, network: Network) -> None:
        if not endpoint.startswith(("http://", "https://")):
            raise InvalidArgument(f"endpoint must be an http(s) URL, not {endpoint!r}")
        self.endpoint = endpoint.rstrip("/")
        self.network = network
        self.routes = Routes(self.endpoint)

    # -- HTTP -------------------------------------------------------------------------------------------

    @staticmethod
    def _send(method: str, url: str, ok: frozenset[int], *, params: Params | None = None,
              body: dict[str, Any] | None = None) -> Flow[httpx.Response]:
        headers = {"Accept": "application/json"}
        content: bytes | None = None
        if body is not None:
            content = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        query = tuple(params) if params else None
        response = yield httpx.Request(method, url, params=query, content=content, headers=headers)
        if response.status_code not in ok:
            raise _rejection(response)
        return response

    @staticmethod
    def _json(response: httpx.Response) -> object:
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise BadResponse(f"{response.request.method} {response.request.url}: response is not JSON") from None

    # -- protocol ---------------------------------------------------------------------------------------

    def funding_info_flow(self, client_pubkey: PublicKey, exp_time: int, family: Family | str) -> Flow[FundingInfo]:
        """Fetch the channel terms and check the server's funding address against ours (spec 3.3)."""
        family = parse_family(family)
        url, params = self.routes.funding_info(family, client_pubkey.hex, exp_time)
        response = yield from self._send("GET", url, frozenset({200}), params=params)
        location = response.headers.get("location")
        open_url = str(response.url.join(location)) if location else None
        return FundingInfo.from_response(self._json(response), family, client_pubkey, exp_time, self.network,
                                         open_url=open_url)

    def check_fundable_flow(self, client_pubkey: PublicKey, plan: OpenPlan, family: Family | str, *,
                            allowance: int | None = None) -> Flow[FundingInfo]:
        """Fresh terms, and TermsRefused if the server would refuse this channel when the funding has confirmed
        (`allowance` seconds from now; default: its confirmations at 10 min each, plus one); spec 7.2."""
        info = yield from self.funding_info_flow(client_pubkey, plan.exp_time, family)
        wait = confirmation_allowance(info) if allowance is None else allowance
        check_open(info, plan, int(time.time()), wait)
        return info

    def begin_open_flow(self, client_pubkey: PublicKey, exp_time: int) -> Flow[str]:
        """v2-seed begin_open: the server's channel URL for the funding it found (spec 6.3 #2)."""
        response = yield from self._send("GET", self.routes.begin_open(client_pubkey.hex, exp_time), frozenset({200}))
        return parse_response(ChannelLocation, self._json(response)).channel_uri

    def open_channel_flow(self, key: PrivateKey, exp_time: int, funding: OutPoint, funding_value: int,
                          family: Family | str, *, change_address: str | None = None, open_value: int | None = None,
                          refund_address: str | None = None, info: FundingInfo | None = None
                          ) -> Flow[ChannelUpdate]:
        """Sign and send the opening payment (change = funding_value - open_value); spec 6.2 #2, 6.3 #3, 6.4 #2."""
        family = parse_family(family)
        if info is None:
            info = yield from self.funding_info_flow(key.public_key, exp_time, family)
        elif (info.params.client_pubkey, info.params.exp_time, info.params.network, info.family) != (
                key.public_key, exp_time, self.network, family):
            raise InvalidArgument("funding info was fetched for another key, exp_time, network or family")
        value = info.open_price if open_value is None else open_value
        if not 0 <= value <= funding_value:
            raise InvalidArgument(f"open value {value} is not within the funding value {funding_value}")
        refund = parse_address(refund_address or client_address(key, self.network), self.network).text
        plan = OpenPlan(exp_time, funding_value, value, refund, change_address if family is Family.V1 else None)
        check_open(info, plan, int(time.time()))  # what the server would refuse is refused here, with the reason
        funding_address = info.funding_address
        if family is Family.V1:
            change = parse_address(change_address or refund, self.network).text
        elif change_address is not None and change_address != funding_address:
            raise InvalidArgument("v2 payments must pay their change to the funding address (spec 4.1)")
        else:
            change = funding_address
        payment = sign(key, funding, info.redeem_script, funding_value - value, change, self.network,
                       info.dust_limit)
        pk = key.public_key.hex
        url = self.routes.open(family, pk, exp_time, funding)
        channel_url = self.routes.channel(family, pk, exp_time, funding)
        if family is Family.V1:
            params = [("client_pubkey", pk), ("exp_time", str(exp_time)), ("change_address", change),
                      ("payment", payment.v1_payload())]
            response = yield from self._send("POST", url, _OPEN_OK, params=params)
            location = response.headers.get("location")
            if location:
                channel_url = str(response.url.join(location))
                if outpoint_in_url(channel_url) != funding:
                    raise BadResponse(f"server placed the channel at {channel_url}, not at outpoint {funding}")
        elif family is Family.V2_SEED:
            response = yield from self._send("POST", url, _OPEN_OK, body=payment.v2_seed_body())
        else:
            response = yield from self._send("POST", url, _OPEN_OK, params=[("secret", payment.secret)],
                                  body=payment.v2_3_body())
        result = parse_response(PaymentResult, self._json(response))
        channel = ClientChannel(
            network=self.network, client_key=key, server_pubkey=info.server_pubkey, exp_time=exp_time,
            family=family, funding_outpoint=funding, funding_value=funding_value,
            redeem_script=info.redeem_script, change_address=change, refund_address=refund,
            dust_limit=info.dust_limit, change_value=payment.change_value, signature=payment.signature.der,
            sighash=payment.signature.sighash, channel_url=channel_url,
            secret=payment.secret if family is Family.V2_3 else "",
        )
        return ChannelUpdate(channel.with_result(result), result)

    def pay_flow(self, channel: ClientChannel, amount: int, *, application_data: str = "") -> Flow[ChannelUpdate]:
        """Send `amount` more; below the dust limit the rest goes too, with 0x82 (spec 4.2); spec 6.2 #3, 6.3 #4."""
        _require_open(channel)
        if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
            raise InvalidArgument("amount must be a non-negative integer of satoshis")
        if amount > channel.change_value:
            raise ChannelStateError(f"channel has only {channel.change_value} sat left, cannot pay {amount}")
        payment = self._sign(channel, channel.change_value - amount, channel.change_address)
        if channel.family is Family.V1:
            response = yield from self._send("PUT", channel.channel_url, _PAY_OK,
                                             params=[("payment", payment.v1_payload())])
        elif channel.family is Family.V2_SEED:
            response = yield from self._send("PUT", channel.channel_url, _PAY_OK,
                                             body=payment.v2_seed_body(application_data))
        else:
            response = yield from self._send("PUT", channel.channel_url, _PAY_OK, params=[("secret", channel.secret)],
                                  body=payment.v2_3_compact_body(application_data))
        result = parse_response(PaymentResult, self._json(response))
        updated = channel.with_payment(payment.change_value, payment.signature).with_result(result)
        return ChannelUpdate(updated, result)

    def close_flow(self, channel: ClientChannel, refund_address: str | None = None, *, fee: int = 0
                   ) -> Flow[ChannelUpdate]:
        """Ask the server to settle (spec 7.4): v1 DELETE with the latest payment; v2 closing payment.

        v2-seed: zero-value payment with change to the refund address; v2.3.0: the payment's value is `fee`.
        """
        url = close_url(channel.channel_url, channel.family)
        if channel.family is Family.V1:
            sig = channel.latest_signature
            latest = SignedPayment(channel.funding_outpoint, channel.redeem_script, channel.change_value,
                                   channel.change_address, sig)
            response = yield from self._send("DELETE", url, _CLOSE_OK, params=[("payment", latest.v1_payload())])
            updated = channel
        else:
            if isinstance(fee, bool) or not isinstance(fee, int) or fee < 0:
                raise InvalidArgument("fee must be a non-negative integer of satoshis")
            if channel.family is Family.V2_SEED and fee:
                raise InvalidArgument("a v2-seed closing payment transfers no value (spec 7.4)")
            if fee > channel.change_value:
                raise ChannelStateError(f"channel has only {channel.change_value} sat left, fee {fee} is more")
            refund = parse_address(refund_address or channel.refund_address, self.network).text
            payment = self._sign(channel, channel.change_value - fee, refund)
            if channel.family is Family.V2_SEED:
                response = yield from self._send("PUT", url, _CLOSE_OK, body=payment.v2_seed_body())
            else:
                response = yield from self._send("PUT", url, _CLOSE_OK, params=[("secret", channel.secret)],
                                      body=payment.v2_3_body())
            updated = replace(channel.with_payment(payment.change_value, payment.signature), change_address=refund)
        result = parse_response(PaymentResult, self._json(response))
        if result.settlement_txid is None:
            raise BadResponse("close response carries no settlement_txid")
        updated = replace(updated, status="closed", settlement_txid=result.settlement_txid)
        return ChannelUpdate(updated, result)

    def refund_transaction(self, channel: ClientChannel, *, fee: int | None = None, fee_rate: int | None = None,
                           refund_address: str | None = None) -> str:
        """The signed refund transaction (hex), valid after exp_time (spec 8.5); publishing is the caller's."""
        tx = build_refund_tx(channel.params, channel.client_key, channel.funding_outpoint, channel.funding_value,
                             refund_address or channel.refund_address, fee=fee, fee_rate=fee_rate)
        return tx.serialize().hex()

    def _sign(self, channel: ClientChannel, change_value: int, change_address: str) -> SignedPayment:
        if channel.network is not self.network:
            raise InvalidArgument(f"channel is on the {channel.network.params.name} network, "
                                  f"the client on {self.network.params.name}")
        return sign(channel.client_key, channel.funding_outpoint, channel.redeem_script, change_value, change_address,
                    self.network, channel.dust_limit)


def _failed(request: httpx.Request, exc: httpx.HTTPError) -> TransportError:
    return TransportError(f"{request.method} {request.url} failed: {exc or type(exc).__name__}")


def run_flow(flow: Flow[T], http: httpx.Client) -> T:
    """Drive a flow over a synchronous httpx client."""
    try:
        request = next(flow)
        while True:
            try:
                response = http.send(request)
            except httpx.HTTPError as exc:
                raise _failed(request, exc) from None
            request = flow.send(response)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


async def run_flow_async(flow: Flow[T], http: httpx.AsyncClient) -> T:
    """Drive a flow over an asynchronous httpx client."""
    try:
        request = next(flow)
        while True:
            try:
                response = await http.send(request)
            except httpx.HTTPError as exc:
                raise _failed(request, exc) from None
            request = flow.send(response)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


class PaychanClient(ClientFlows):
    """A synchronous RBPCP client for one server endpoint and network."""

    def __init__(self, endpoint: str, network: Network, *, http: httpx.Client | None = None,
                 timeout: float = 10) -> None:
        super().__init__(endpoint, network)
        self._owns_http = http is None
        self._http = http if http is not None else httpx.Client(timeout=timeout)

    def __enter__(self) -> PaychanClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()

    def release(self) -> None:
        """Close the HTTP connection pool if this client created it."""
        if self._owns_http:
            self._http.close()

    def funding_info(self, client_pubkey: PublicKey, exp_time: int, family: Family | str) -> FundingInfo:
        """Fetch the channel terms and check the server's funding address against ours (spec 3.3)."""
        return run_flow(self.funding_info_flow(client_pubkey, exp_time, family), self._http)

    def check_fundable(self, client_pubkey: PublicKey, plan: OpenPlan, family: Family | str, *,
                       allowance: int | None = None) -> FundingInfo:
        """Fresh terms, refused (TermsRefused) where the server would refuse the channel (spec 7.2)."""
        return run_flow(self.check_fundable_flow(client_pubkey, plan, family, allowance=allowance), self._http)

    def begin_open(self, client_pubkey: PublicKey, exp_time: int) -> str:
        """v2-seed begin_open: the server's channel URL for the funding it found (spec 6.3 #2)."""
        return run_flow(self.begin_open_flow(client_pubkey, exp_time), self._http)

    def open_channel(self, key: PrivateKey, exp_time: int, funding: OutPoint, funding_value: int, family: Family | str,
                     **options: Any) -> ChannelUpdate:
        """Sign and send the opening payment (spec 6.2 #2, 6.3 #3, 6.4 #2); options as open_channel_flow."""
        return run_flow(self.open_channel_flow(key, exp_time, funding, funding_value, family, **options), self._http)

    def pay(self, channel: ClientChannel, amount: int, *, application_data: str = "") -> ChannelUpdate:
        """Send `amount` more (spec 6.2 #3, 6.3 #4, 6.4 #3)."""
        return run_flow(self.pay_flow(channel, amount, application_data=application_data), self._http)

    def close(self, channel: ClientChannel, refund_address: str | None = None, *, fee: int = 0) -> ChannelUpdate:
        """Ask the server to settle (spec 7.4)."""
        return run_flow(self.close_flow(channel, refund_address, fee=fee), self._http)


class AsyncPaychanClient(ClientFlows):
    """The asynchronous RBPCP client: the same protocol as PaychanClient over httpx.AsyncClient."""

    def __init__(self, endpoint: str, network: Network, *, http: httpx.AsyncClient | None = None,
                 timeout: float = 10) -> None:
        super().__init__(endpoint, network)
        self._owns_http = http is None
        self._http = http if http is not None else httpx.AsyncClient(timeout=timeout)

    async def __aenter__(self) -> AsyncPaychanClient:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.release()

    async def release(self) -> None:
        """Close the HTTP connection pool if this client created it."""
        if self._owns_http:
            await self._http.aclose()

    async def funding_info(self, client_pubkey: PublicKey, exp_time: int, family: Family | str) -> FundingInfo:
        """Fetch the channel terms and check the server's funding address against ours (spec 3.3)."""
        return await run_flow_async(self.funding_info_flow(client_pubkey, exp_time, family), self._http)

    async def check_fundable(self, client_pubkey: PublicKey, plan: OpenPlan, family: Family | str, *,
                             allowance: int | None = None) -> FundingInfo:
        """Fresh terms, refused (TermsRefused) where the server would refuse the channel (spec 7.2)."""
        return await run_flow_async(self.check_fundable_flow(client_pubkey, plan, family, allowance=allowance),
                                    self._http)

    async def begin_open(self, client_pubkey: PublicKey, exp_time: int) -> str:
        """v2-seed begin_open (spec 6.3 #2)."""
        return await run_flow_async(self.begin_open_flow(client_pubkey, exp_time), self._http)

    async def open_channel(self, key: PrivateKey, exp_time: int, funding: OutPoint, funding_value: int,
                           family: Family | str, **options: Any) -> ChannelUpdate:
        """Sign and send the opening payment (spec 6.4 #2); options as open_channel_flow."""
        return await run_flow_async(self.open_channel_flow(key, exp_time, funding, funding_value, family, **options),
                                    self._http)

    async def pay(self, channel: ClientChannel, amount: int, *, application_data: str = "") -> ChannelUpdate:
        """Send `amount` more (spec 6.4 #3)."""
        return await run_flow_async(self.pay_flow(channel, amount, application_data=application_data), self._http)

    async def close(self, channel: ClientChannel, refund_address: str | None = None, *,
                    fee: int = 0) -> ChannelUpdate:
        """Ask the server to settle (spec 7.4)."""
        return await run_flow_async(self.close_flow(channel, refund_address, fee=fee), self._http)


def _require_open(channel: ClientChannel) -> None:
    if channel.status != "open":
        raise ChannelStateError("channel is closed")


def _rejection(response: httpx.Response) -> ServerRejected:
    """A ServerRejected from a v2 JSON error body, or the v1 reason phrase (spec 6.1)."""
    message = response.reason_phrase or ""
    code: str | None = None
    try:
        body = json.loads(response.content) if response.content else None
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    if isinstance(body, dict):
        if isinstance(body.get("message"), str):
            message = body["message"]
        for key in ("code", "type"):
            if isinstance(body.get(key), str):
                code = body[key]
                break
    location = response.headers.get("location")
    return ServerRejected(response.status_code, message, code,
                          location=str(response.url.join(location)) if location else None)

