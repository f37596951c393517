"""Structured logs: one line per record, `key=value` (default) or JSON, through a filter that masks
secrets (bearer tokens, keys, passwords, full signatures and transactions) before any handler sees them.

Request logging: `access_log_middleware` writes one line per request (method, route template, path
without its query string, status, duration); routes marked quiet (the payment hot path, health checks,
scrapes) log at DEBUG, everything else at INFO.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.typedefs import Middleware

from .http import Handler
from .metrics import observed, route_template

__all__ = [
    "REDACTED",
    "JsonFormatter",
    "KeyValueFormatter",
    "LogFormat",
    "MalformedHttpFilter",
    "RedactionFilter",
    "access_log_middleware",
    "configure_logging",
    "log_request",
    "quiet_routes",
    "redact",
]

LogFormat = Literal["kv", "json"]
REDACTED = "[REDACTED]"
ACCESS_LOGGER = "paychan.access"

_SECRET_WORDS = (r"token|secret|password|passwd|passphrase|private[_-]?key|privkey|priv|key|seed|xprv|wif|"
                 r"authorization|cookie|rpc_password|payment|signature|signature_data|sig|der")
_RULES: tuple[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]], ...] = (
    # Authorization: Bearer <token>
    (re.compile(r"(?i)\b(bearer\s+)[^\s\"',;]+"), r"\1" + REDACTED),
    # token=..., "secret": "...", password: ..., payment=<v1 payload> (query strings, JSON, key=value)
    (re.compile(r"(?i)(\b(?:" + _SECRET_WORDS + r")[\"']?\s*[=:]\s*[\"']?)"
                r"(?!\[REDACTED\]|(?:bearer|basic)\s)([^\s\"',;&}\]]+)"),
     r"\1" + REDACTED),
    # BIP32 extended private keys and WIF private keys (base58)
    (re.compile(r"\b[xtyzuv]prv[1-9A-HJ-NP-Za-km-z]{100,112}\b"), REDACTED),
    (re.compile(r"\b[5KLc9][1-9A-HJ-NP-Za-km-z]{50,51}\b"), REDACTED),
    # Long hex runs: DER signatures (140-146 chars), compact signatures (128), raw transactions.
    # Shorter hex (txids, public keys, hashes: 64-66 chars) is public and stays readable.
    (re.compile(r"\b[0-9a-fA-F]{100,}\b"), lambda m: m.group(0)[:8] + "..." + REDACTED),
)


def redact(text: str) -> str:
    """Mask every secret-looking part of a text (see the module docstring)."""
    for pattern, repl in _RULES:
        text = pattern.sub(repl, text)
    return text


_STANDARD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD_ATTRS and not k.startswith("_")}


class RedactionFilter(logging.Filter):
    """Masks secrets in the message, its string extras and the exception text; never drops a record."""

    def __init__(self, extra_secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._literals = tuple(s for s in extra_secrets if len(s) >= 8)

    def _clean(self, text: str) -> str:
        for literal in self._literals:
            text = text.replace(literal, REDACTED)
        return redact(text)

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record in place (later handlers see the masked text too)."""
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a bad format string: keep its raw parts, masked
            message = f"{record.msg} {record.args!r}"
        record.msg, record.args = self._clean(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._clean(record.exc_text)
        if record.stack_info:
            record.stack_info = self._clean(record.stack_info)
        for key, value in _extras(record).items():
            if isinstance(value, str):
                setattr(record, key, self._clean(value))
        return True


def _timestamp(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


_BARE = re.compile(r"^[A-Za-z0-9_.:/@+\-{}\[\]]+$")


def _kv_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    text = str(value)
    if text and _BARE.match(text):
        return text
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'"{escaped}"'


class KeyValueFormatter(logging.Formatter):
    """`ts=... level=INFO logger=paychan.server msg="..." key=value ...` on one line (logfmt)."""

    def format(self, record: logging.LogRecord) -> str:
        """One logfmt line; the exception, if any, as an escaped `exc` field."""
        parts = [f"ts={_timestamp(record)}", f"level={record.levelname}", f"logger={record.name}",
                 f"msg={_kv_value(record.getMessage())}"]
        parts += [f"{k}={_kv_value(v)}" for k, v in _extras(record).items()]
        exc = _exception_text(self, record)
        if exc:
            parts.append(f"exc={_kv_value(exc)}")
        return " ".join(parts)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, the extras, and `exc` when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        """One JSON line."""
        data: dict[str, Any] = {"ts": _timestamp(record), "level": record.levelname, "logger": record.name,
                                "msg": record.getMessage()}
        data.update(_extras(record))
        exc = _exception_text(self, record)
        if exc:
            data["exc"] = exc
        return orjson.dumps(data, default=str).decode()


def _exception_text(formatter: logging.Formatter, record: logging.LogRecord) -> str:
    if record.exc_info and not record.exc_text:
        record.exc_text = formatter.formatException(record.exc_info)
    text = record.exc_text or ""
    if record.stack_info:
        text = (text + "\n" if text else "") + record.stack_info
    return text


_ECHO = re.compile(r":?\s*(?:bytearray\()?b['\"]")


class MalformedHttpFilter(logging.Filter):
    """On `aiohttp.server`: a request the HTTP parser refused (over-long line or header, bad Content-Length)
    becomes one WARNING line without traceback, at most `burst` per `window` seconds; the next line allowed
    says how many were left out. Anyone can send these, so they must not flood the log."""

    def __init__(self, burst: int = 10, window: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._burst, self._window, self._clock = burst, window, clock
        self._start, self._count, self._suppressed = -window, 0, 0

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite a parser refusal into its one line, or drop it when over the rate."""
        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, HttpProcessingError):
            return True
        now = self._clock()
        if now - self._start >= self._window:
            self._start, self._count = now, 0
        self._count += 1
        if self._count > self._burst:
            self._suppressed += 1
            return False
        remote = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
        reason = _ECHO.split(" ".join(str(exc.message).split()), 1)[0][:160]  # not the sender's bytes
        note = f" ({self._suppressed} more left out)" if self._suppressed else ""
        self._suppressed = 0
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.msg, record.args = f"malformed HTTP request from %s: %d %s{note}", (remote, exc.code, reason)
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True


def configure_logging(level: str = "INFO", fmt: LogFormat = "kv", stream: Any = None) -> logging.Handler:
    """Replace the root handlers by one structured, redacting handler on stderr; return it."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else KeyValueFormatter())
    handler.addFilter(RedactionFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    server_log = logging.getLogger("aiohttp.server")
    for old_filter in [f for f in server_log.filters if isinstance(f, MalformedHttpFilter)]:
        server_log.removeFilter(old_filter)
    server_log.addFilter(MalformedHttpFilter())
    return handler


def quiet_routes(routes: Iterable[tuple[str, str]]) -> Callable[[web.Request], bool]:
    """A predicate true for requests whose (method, route template) is listed (`*` = any method)."""
    wanted = frozenset(routes)

    def quiet(request: web.Request) -> bool:
        template = route_template(request)
        return (request.method, template) in wanted or ("*", template) in wanted

    return quiet


def access_log_middleware(quiet: Callable[[web.Request], bool] | None = None,
                          logger: logging.Logger | None = None) -> Middleware:
    """One log line per request: INFO, or DEBUG for quiet routes (costs nothing when not logged)."""
    log = logger or logging.getLogger(ACCESS_LOGGER)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        level = logging.DEBUG if quiet is not None and quiet(request) else logging.INFO
        if not log.isEnabledFor(level):
            return await handler(request)
        return await observed(request, handler, lambda status, seconds: log_request(
            log, level, request.method, route_template(request), request.path, status, seconds, request.remote))

    return middleware


def log_request(log: logging.Logger, level: int, method: str, route: str, path: str, status: int,
                seconds: float, remote: str | None) -> None:
    """The access-log line of one request (the caller checked `log.isEnabledFor(level)`)."""
    log.log(level, "request", extra={"method": method, "route": route, "path": path, "status": status,
                                     "ms": round(seconds * 1000, 2), "remote": remote})
