"""ChanStoreClient: the typed client of ChanStore's HTTP API, used by PayChanServer.

`apply_payment` coalesces concurrent calls into `POST /payments` batches (adaptive micro-batching):
with fewer than `max_in_flight` batch requests under way a call is sent at once; otherwise it waits in
a queue, and each batch request that returns sends up to `max_batch` queued calls as the next batch.
Low load costs no added latency; high load costs one request (and one durable store write) per batch.
The batches travel on lean keep-alive HTTP/1.1 connections of their own (`_PaymentsPoster`): aiohttp's
client costs about 100 us of CPU a request, which at moderate load is paid for every one or two payments.
"""

from __future__ import annotations

import asyncio
import builtins
import socket
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

import orjson

from chan_store.model import (
    ChannelExistsAt,
    ChannelPage,
    PaymentApplied,
    PaymentItem,
    PaymentResult,
    StateConflict,
    StoreStats,
    state_digest,
)
from chan_store.storage import CommitStats
from chan_store.wire import (
    ListQuery,
    outpoint_hex,
    parse_outpoint,
    parse_payment_result,
    parse_state,
    payment_item_json,
    require_object,
    state_hex,
)
from paychan_common.errors import (
    ChannelExists,
    ChannelNotFound,
    Conflict,
    InvalidInput,
    PaychanError,
    ServiceUnavailable,
    error_from_json,
)
from paychan_common.state import ChannelState, Status
from paychan_common.tx import OutPoint
from paychan_runtime.client import InternalClient

__all__ = ["ChanStoreClient", "ChannelExistsAt", "PaymentApplied", "StateConflict"]

_Waiter = tuple[PaymentItem, asyncio.Future[PaymentResult]]
_Sender = Callable[[Sequence[PaymentItem]], Awaitable[builtins.list[PaymentResult]]]


def _malformed(what: str, exc: InvalidInput) -> ServiceUnavailable:
    return ServiceUnavailable(f"chan store sent a malformed {what}: {exc.message}")


def _copy_error(err: PaychanError) -> PaychanError:
    """A fresh instance of the same class for each caller (one exception object per raise)."""
    return error_from_json(type(err).__name__, err.code, err.message)


class _PaymentBatcher:
    """Adaptive micro-batching of single payments into batch requests (see the module docstring)."""

    def __init__(self, send: _Sender, max_in_flight: int, max_batch: int) -> None:
        if max_in_flight < 1 or max_batch < 1:
            raise ValueError("max_in_flight and max_batch must be >= 1")
        self._send = send
        self._max_in_flight = max_in_flight
        self._max_batch = max_batch
        self._queue: deque[_Waiter] = deque()
        self._in_flight = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self.batches_sent = 0

    async def submit(self, item: PaymentItem) -> PaymentResult:
        """Queue one payment and return its own result (or error object)."""
        future: asyncio.Future[PaymentResult] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        self._pump()
        return await future

    def _pump(self) -> None:
        loop = asyncio.get_running_loop()
        while self._queue and self._in_flight < self._max_in_flight:
            # Take the batch now, so that a request in flight never waits for a slot it does not need.
            count = min(len(self._queue), self._max_batch)
            batch = [self._queue.popleft() for _ in range(count)]
            self._in_flight += 1
            task = loop.create_task(self._run(batch), name="chanstore-payments")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: builtins.list[_Waiter]) -> None:
        try:
            live = [(item, future) for item, future in batch if not future.done()]
            if not live:
                return
            self.batches_sent += 1
            try:
                results = await self._send([item for item, _ in live])
            except PaychanError as err:
                for _, future in live:
                    if not future.done():
                        future.set_exception(_copy_error(err))
                return
            for (_, future), result in zip(live, results, strict=True):
                if not future.done():
                    future.set_result(result)
        finally:
            for _, future in batch:
                if not future.done():  # only if _send broke its contract; never leave a caller hanging
                    future.set_exception(ServiceUnavailable("chan store payment batch failed"))
            self._in_flight -= 1
            self._pump()


class _Http1(asyncio.Protocol):
    """One keep-alive HTTP/1.1 client connection, one exchange at a time (answers need Content-Length)."""

    MAX_HEAD = 1 << 16
    MAX_BODY = 1 << 26

    def __init__(self) -> None:
        self._buf = bytearray()
        self._transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.reusable = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's is not an asyncio.Transport subclass
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self._buf += data
        if self._waiter is not None:
            self._parse()
        elif len(self._buf) > self.MAX_HEAD:  # nothing asked for: a misbehaving peer
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.reusable = False
        self._fail(exc or ConnectionResetError("connection closed by the chan store"))

    def _fail(self, exc: BaseException) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def _parse(self) -> None:
        buf = self._buf
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if len(buf) > self.MAX_HEAD:
                self._fail(ConnectionError("answer head too large"))
                self.close()
            return
        head = bytes(buf[:end]).lower()
        length = -1
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name == b"content-length" and value.strip().isdigit():
                length = int(value)
            elif name == b"connection" and value.strip() == b"close":
                self.reusable = False
        if length < 0 or length > self.MAX_BODY or not head.startswith(b"http/1.") or not head[9:12].isdigit():
            self._fail(ConnectionError("unsupported answer (no Content-Length)"))
            self.close()
            return
        total = end + 4 + length
        if len(buf) < total:
            return
        status, body = int(head[9:12]), bytes(buf[end + 4 : total])
        del buf[:total]
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result((status, body))

    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        """Send one request, return (status, body)."""
        if not self.reusable or self._transport is None or self._waiter is not None:
            raise ConnectionError("connection not usable")
        waiter: asyncio.Future[tuple[int, bytes]] = asyncio.get_running_loop().create_future()
        self._waiter = waiter
        self._transport.write(request)
        if self._buf:
            self._parse()
        return await waiter

    def close(self) -> None:
        """Close the connection (an exchange under way fails)."""
        self.reusable = False
        if self._transport is not None:
            self._transport.close()


class _PaymentsPoster:
    """`POST /payments` over lean keep-alive connections; errors as `InternalClient.request` raises them."""

    def __init__(self, base_url: str, token: str, *, unix_path: str | None, timeout: float, name: str) -> None:
        url = urlsplit(base_url)
        if url.scheme != "http" or not url.hostname:
            raise ValueError(f"chan store URL must be http://host[:port]: {base_url!r}")
        self._host, self._port, self._unix_path = url.hostname, url.port or 80, unix_path
        self._head = (f"POST {url.path.rstrip('/')}/payments HTTP/1.1\r\nHost: {url.netloc}\r\n"
                      f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
                      "Content-Length: ").encode("latin-1")
        self._timeout = timeout
        self._name = name
        self._idle: list[_Http1] = []

    async def _connect(self) -> _Http1:
        loop = asyncio.get_running_loop()
        if self._unix_path:
            _, conn = await loop.create_unix_connection(_Http1, self._unix_path)
        else:
            _, conn = await loop.create_connection(_Http1, self._host, self._port)
        return conn

    async def post(self, body: bytes) -> Any:
        """Send the batch; the parsed JSON answer, or the typed error it carries."""
        request = self._head + str(len(body)).encode() + b"\r\n\r\n" + body
        conn: _Http1 | None = None
        try:
            async with asyncio.timeout(self._timeout):
                while self._idle and not self._idle[-1].reusable:
                    self._idle.pop()
                conn = self._idle.pop() if self._idle else await self._connect()
                status, raw = await conn.exchange(request)
        except (OSError, ConnectionError, TimeoutError) as exc:
            if conn is not None:
                conn.close()
            raise ServiceUnavailable(f"{self._name} unreachable: {type(exc).__name__}") from None
        except BaseException:  # cancelled mid-exchange: the connection's state is unknown
            if conn is not None:
                conn.close()
            raise
        if conn.reusable:
            self._idle.append(conn)
        try:
            parsed = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            raise ServiceUnavailable(f"{self._name} sent a non-JSON answer (status {status})") from None
        if status >= 400:
            err = parsed.get("error") if isinstance(parsed, dict) else None
            if isinstance(err, dict):
                raise error_from_json(str(err.get("class")), str(err.get("code")), str(err.get("message")))
            raise PaychanError(f"{self._name} answered status {status}")
        return parsed

    def close(self) -> None:
        """Close the idle connections."""
        while self._idle:
            self._idle.pop().close()


class ChanStoreClient:
    """Async client of ChanStore; methods return core types and raise the typed errors of the store."""

    def __init__(self, base_url: str, token: str, *, unix_path: str | None = None, pool_size: int = 100,
                 max_in_flight: int = 1, max_batch: int = 1000, timeout: float = 30.0) -> None:
        self._http = InternalClient(base_url, token, unix_path=unix_path, pool_size=pool_size,
                                    timeout=timeout, name="chan store")
        self._payments = _PaymentsPoster(base_url, token, unix_path=unix_path, timeout=timeout, name="chan store")
        self._batcher = _PaymentBatcher(self._post_payments, max_in_flight, max_batch)

    @property
    def batches_sent(self) -> int:
        """Number of `POST /payments` requests sent by `apply_payment` so far."""
        return self._batcher.batches_sent

    async def close(self) -> None:
        """Close the connection pool."""
        self._payments.close()
        await self._http.close()

    async def health(self) -> bool:
        """True if the store answers `GET /health`."""
        body = await self._http.request("GET", "/health")
        return isinstance(body, dict) and body.get("ok") is True

    async def create(self, state: ChannelState) -> ChannelState:
        """Store a new open channel; ChannelExistsAt (a ChannelExists) names the existing channel."""
        try:
            body = await self._http.request("POST", "/channels", {"state": state_hex(state)})
        except ChannelExists as err:
            existing = await self._existing_channel(state, err.code)
            raise ChannelExistsAt(err.message, existing, code=err.code) from None
        return self._state_of(body)

    async def get(self, outpoint: OutPoint) -> ChannelState | None:
        """The channel's state, or None."""
        try:
            body = await self._http.request("GET", "/channels/" + outpoint_hex(outpoint))
        except ChannelNotFound:
            return None
        return self._state_of(body)

    async def apply_payment(self, outpoint: OutPoint, change_value: int, der: bytes, sighash: int,
                            now: int) -> PaymentApplied:
        """Apply one payment (coalesced with concurrent calls); raise its own typed error if refused."""
        result = await self._batcher.submit(PaymentItem(outpoint, change_value, der, sighash, now))
        if isinstance(result, PaychanError):
            raise result
        return result

    async def apply_payments(self, items: Sequence[PaymentItem], now: int) -> builtins.list[PaymentResult]:
        """Apply a batch of payments in one request (no coalescing); per-item result or error."""
        return await self._post_payments(items, now)

    async def compare_and_set(self, old: ChannelState, new: ChannelState) -> ChannelState:
        """Replace `old` by `new` if `old` is still the stored state; else StateConflict (a Conflict)."""
        body = {"expected": state_digest(old).hex(), "state": state_hex(new)}
        try:
            answer = await self._http.request("POST", f"/channels/{outpoint_hex(new.outpoint)}/cas", body)
        except Conflict as err:
            try:
                current = await self.get(new.outpoint)
            except PaychanError:
                current = None
            raise StateConflict(err.message, current, code=err.code) from None
        return self._state_of(answer)

    async def stats(self) -> StoreStats:
        """Channel counts, memory use and the storage's commit counters."""
        body = require_object(await self._http.request("GET", "/stats"), "stats")
        try:
            storage = require_object(body.get("storage"), "stats.storage")
            fields = {name: storage[name] for name in CommitStats.__dataclass_fields__}
            return StoreStats(counts=dict(body["counts"]), memory=dict(body["memory"]),
                              storage=CommitStats(**fields))
        except (KeyError, TypeError, ValueError) as exc:
            raise ServiceUnavailable(f"chan store sent malformed stats: {exc!r}") from None

    async def list_page(self, *, status: Status | None = None, client_pubkey: bytes | None = None,
                        expiring_before: int | None = None, after: OutPoint | None = None,
                        limit: int = 100) -> ChannelPage:
        """One page of states with the cursor of the next page (see ChannelStore.list)."""
        query = ListQuery(status, client_pubkey, expiring_before, after, limit)
        body = require_object(await self._http.request("GET", "/channels", params=query.params()), "list")
        try:
            states = body.get("states")
            if not isinstance(states, builtins.list):
                raise InvalidInput("states must be a list")
            cursor = body.get("next")
            return ChannelPage(tuple(parse_state(text) for text in states),
                               None if cursor is None else parse_outpoint(cursor, "next"))
        except InvalidInput as exc:
            raise _malformed("channel list", exc) from None

    async def list(self, *, status: Status | None = None, client_pubkey: bytes | None = None,
                   expiring_before: int | None = None, after: OutPoint | None = None,
                   limit: int = 100) -> builtins.list[ChannelState]:
        """One page of states; pass the last one's outpoint as `after` for the next page."""
        page = await self.list_page(status=status, client_pubkey=client_pubkey,
                                    expiring_before=expiring_before, after=after, limit=limit)
        return builtins.list(page.states)

    async def _existing_channel(self, state: ChannelState, code: str) -> OutPoint | None:
        """The channel a 409 refers to: the same outpoint, or the key's open channel (looked up)."""
        if code != "open_channel_exists":
            return state.outpoint
        try:
            page = await self.list_page(status=Status.OPEN, client_pubkey=state.client_pubkey, limit=1)
        except PaychanError:
            return None
        return page.states[0].outpoint if page.states else None

    async def _post_payments(self, items: Sequence[PaymentItem], now: int | None = None
                             ) -> builtins.list[PaymentResult]:
        if not items:
            return []
        top = now if now is not None else items[0].now
        if top is None:
            raise InvalidInput("now is required")
        payments = []
        for item in items:
            encoded = payment_item_json(item)
            if encoded.get("now") == top:
                del encoded["now"]
            payments.append(encoded)
        body = await self._payments.post(orjson.dumps({"now": top, "payments": payments}))
        try:
            results = require_object(body, "payments answer").get("results")
            if not isinstance(results, builtins.list) or len(results) != len(items):
                raise InvalidInput("results must be a list with one result per payment")
            return [parse_payment_result(result) for result in results]
        except InvalidInput as exc:
            raise _malformed("payments answer", exc) from None

    @staticmethod
    def _state_of(body: Any) -> ChannelState:
        try:
            return parse_state(require_object(body, "answer").get("state"))
        except InvalidInput as exc:
            raise _malformed("state", exc) from None
