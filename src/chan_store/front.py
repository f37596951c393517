"""ChanStore's fast front: binary `POST /payments` batches served without the web framework.

A `paychan_runtime.front` front (its module docstring tells the framing, the pipelining and the hand-over)
on ChanStore's listening socket. It takes a request only when it is plainly a binary payment batch:
`POST /payments`, HTTP/1.1 keep-alive, `Content-Type: application/x-chanstore-payments` exactly, a
Content-Length within the app's body limit, the right bearer token (compared in constant time), and the
store open. Anything else, a wrong or missing token included, goes to aiohttp, which answers it as before
(401 for the token). A taken batch goes through the same functions as the aiohttp handler
(`decode_payments_request`, `ChannelEngine.apply_payments`, `encode_payment_results`) and the same error
edge (`paychan_runtime.http.internal_error_answer`), with the same latency histogram and access-log line;
its answer is written only once the batch is durably stored, as the handler's is.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from http import HTTPStatus

import orjson
from aiohttp import web

from chan_store.app import AUTH_HEADER_KEY, STORE_KEY
from chan_store.contract import (
    MAX_BODY_BYTES,
    PAYMENTS_CONTENT_TYPE,
    RESULTS_CONTENT_TYPE,
    PaymentResult,
    decode_payments_request,
    encode_payment_results,
)
from chan_store.engine import ChannelEngine
from chan_store.metrics import STORE_METRICS
from chan_store.store import ChannelStore
from paychan_runtime.front import FrontConnection, FrontContext, read_head
from paychan_runtime.http import internal_error_answer

__all__ = ["BatchConnection", "StoreFront", "front"]

_PATH = "/payments"
_TARGET = _PATH.encode("ascii")
_MEDIA = PAYMENTS_CONTENT_TYPE.encode("ascii")
_RESULTS = RESULTS_CONTENT_TYPE.encode("ascii")


class StoreFront(FrontContext):
    """What every connection shares: the app (its store, once open), the token, metrics, the access log."""

    def __init__(self, app: web.Application, server: web.Server) -> None:
        super().__init__(server, app[STORE_METRICS])
        self.app = app
        self.expected = app[AUTH_HEADER_KEY]

    @property
    def store(self) -> ChannelEngine | None:
        """The channel store once the app's storage is open."""
        return self.app.get(STORE_KEY)

    def protocol(self) -> BatchConnection:
        """A new connection's protocol (the listening server's factory)."""
        return BatchConnection(self)


class BatchConnection(FrontConnection[ChannelEngine]):
    """One connection from a PayChanServer worker (see the module docstring)."""

    def __init__(self, ctx: StoreFront) -> None:
        super().__init__(ctx)
        self._ctx = ctx

    def take(self, head: bytes) -> tuple[ChannelEngine, int] | None:
        """(the store, content length) of a plain, authorized binary batch; None for anything else."""
        fields = read_head(head, b"POST")
        if fields is None or fields.url != _TARGET or fields.content_type != _MEDIA:
            return None
        given = fields.authorization
        if given is None or not hmac.compare_digest(given, self._ctx.expected):
            return None  # aiohttp's bearer middleware answers 401
        length = fields.length(MAX_BODY_BYTES)
        store = self._ctx.store
        if length is None or store is None:
            return None
        return store, length

    async def respond(self, taken: ChannelEngine, body: bytes) -> bytes:
        """The batch's binary results once durable, or the error answer of the internal error edge."""
        start = time.perf_counter()
        try:
            now, items = decode_payments_request(body)
            outcome: list[PaymentResult] | Exception = await taken.apply_payments(items, now)
        except Exception as err:  # noqa: BLE001 - internal_error_answer logs what is not a PaychanError
            outcome = err
        return self._answer(outcome, start)

    def serve(self, taken: ChannelEngine, body: bytes) -> None:
        """LevelDB or memory storage (`ChannelStore.start_payments`): the answer is written from the callback
        of the batch's commit, without a task (2 event-loop iterations per batch instead of 5); any other
        engine through `respond`."""
        if not isinstance(taken, ChannelStore):
            super().serve(taken, body)
            return
        start = time.perf_counter()

        def reply(outcome: list[PaymentResult] | Exception) -> None:
            try:
                answer = self._answer(outcome, start)
            except Exception as exc:  # noqa: BLE001 - a bug: never leave the connection hanging
                self.fail(exc)
                return
            self.deliver(answer)

        try:
            now, items = decode_payments_request(body)
        except Exception as err:  # noqa: BLE001 - answered by the error edge, as in respond
            reply(err)
            return
        taken.start_payments(items, now, reply)

    def _answer(self, outcome: list[PaymentResult] | Exception, start: float) -> bytes:
        """The answer to a batch (its results, or the error edge's answer to its error); latency, access log."""
        ctx = self._ctx
        if not isinstance(outcome, Exception):
            try:
                answer, status = ctx.answer(200, "OK", encode_payment_results(outcome), _RESULTS), 200
            except Exception as err:  # noqa: BLE001 - an encoding failure goes to the error edge too
                outcome = err
        if isinstance(outcome, Exception):
            status, err_body = internal_error_answer(outcome, "POST", _PATH)
            answer = ctx.answer(status, HTTPStatus(status).phrase, orjson.dumps(err_body))
        ctx.served("POST", _PATH, _PATH, status, start, self.peer)
        return answer


def front(app: web.Application) -> Callable[[web.Server], StoreFront]:
    """What `paychan_runtime.serve.serve_app(front=…)` takes: given aiohttp's server, the front."""
    return lambda server: StoreFront(app, server)
