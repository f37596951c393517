"""Structured logs: the redaction filter masks tokens, keys and full signatures (caplog), key=value and JSON
lines, one access-log line per request (payment routes at DEBUG), and no secret in a real flow's logs."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from paychan_runtime.logs import REDACTED, JsonFormatter, KeyValueFormatter, RedactionFilter, configure_logging, redact
from tests.support.channels import TestChannel
from tests.support.stack import INTERNAL_TOKEN, MGMT_TOKEN, Stack, exp_time

log = logging.getLogger("paychan.tests.logs")

TOKEN = "9f" * 32
PRIVKEY = "1111111111111111111111111111111111111111111111111111111111111111"
WIF = "cMahea7zqjxrtgAbB7LSGbcQUr1uX1ojuat9jZodMN87JcbXMTcA"
XPRV = ("tprv8ZgxMBicQKsPd9TeAdPADNnSyH9SSUUbTVeFszDE23Ki6TBB5nCcLtBCBpMpQuCSbpDGfv6mZVqaQY5bySxs3fPJpoqzYp"
        "7Ux3Pt5e7N6hK")
DER = ("3045022100c126d4b7f8d93bbbb4c6d16b02de945aea571b3701c186e1a923c6819cbe0f78022052fba4b82226ee555d9edd8b9b3f"
       "879a79feb1d6da21641e18aa579576f70619")
TXID = "754c727936f9688ae25011f10082c415e9f889ddd112f306beb4d3617402c315"
PUBKEY = "034f355bdcb7cc0af728ef3cceb9615d90684bb5b2ca5f859ab0f0b704075871aa"
V1_PAYLOAD = "UOPMczoLAAAwRQIhALdU3l9u4w4jYQqF53iWYFg5K39oOt51OCWoPZGuzYjqAiAIHIrWU2BHBWsqQ15CWahORODI"


@pytest.fixture
def redacting(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """caplog whose handler carries the redaction filter, as every service handler does."""
    f = RedactionFilter()
    caplog.handler.addFilter(f)
    yield caplog
    caplog.handler.removeFilter(f)


def test_filter_masks_tokens_keys_and_signatures(redacting: pytest.LogCaptureFixture) -> None:
    redacting.set_level(logging.DEBUG)  # here: pytest resets the handler's level between phases
    log.info("request headers: Authorization: Bearer %s", TOKEN)
    log.info("token=%s secret=%s password: hunter2hunter2", TOKEN, TOKEN)
    log.warning("loaded key=%s and %s and %s", PRIVKEY, WIF, XPRV)
    log.info("signature %s for %s", DER, TXID)
    log.info('body {"signature_data": "%s", "funding_txid": "%s"}', DER[:20], TXID)
    log.info("GET /v1/channels/%s/0?payment=%s", TXID, V1_PAYLOAD)
    log.info("extra fields", extra={"auth": f"Bearer {TOKEN}", "sig": DER})
    try:
        raise ValueError(f"bad request with private_key={PRIVKEY}")
    except ValueError:
        log.exception("failed")
    text = redacting.text
    for secret in (TOKEN, PRIVKEY, WIF, XPRV, DER, DER[:20], V1_PAYLOAD, "hunter2"):
        assert secret not in text, secret
    assert TXID in text  # public identifiers stay readable
    assert text.count(REDACTED) >= 10
    extra = next(r for r in redacting.records if r.getMessage() == "extra fields")
    assert TOKEN not in extra.auth and DER not in extra.sig  # type: ignore[attr-defined]


def test_redact_is_idempotent_and_keeps_public_values() -> None:
    once = redact(f"token={TOKEN} pubkey={PUBKEY} txid={TXID} sig={DER}")
    assert redact(once) == once
    assert PUBKEY in once and TXID in once and TOKEN not in once and DER not in once


def _record(msg: str, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("paychan.x", logging.INFO, __file__, 1, msg, None, None)
    for k, v in extra.items():
        setattr(record, k, v)
    return record


def test_key_value_and_json_lines() -> None:
    line = KeyValueFormatter().format(_record('said "hi"\nthere', route="/v2/channels/{txid}/{vout}", ms=1.5,
                                              status=200, remote=None))
    assert "\n" not in line
    assert line.split(" ")[1:3] == ["level=INFO", "logger=paychan.x"]
    assert 'msg="said \\"hi\\"\\nthere"' in line
    assert "route=/v2/channels/{txid}/{vout} " in line and "ms=1.5" in line and "remote=null" in line
    data = json.loads(JsonFormatter().format(_record("hello", status=404)))
    assert data["msg"] == "hello" and data["status"] == 404 and data["level"] == "INFO" and data["ts"].endswith("Z")


def test_configure_logging_writes_redacted_json() -> None:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    stream = io.StringIO()
    try:
        configure_logging("INFO", "json", stream=stream)
        logging.getLogger("paychan.x").info("Authorization: Bearer %s", TOKEN)
        logging.getLogger("paychan.x").debug("not shown")
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0])["msg"] == f"Authorization: Bearer {REDACTED}"


async def test_access_log_one_line_per_request_payments_at_debug(stack: Stack,
                                                                 redacting: pytest.LogCaptureFixture) -> None:
    redacting.set_level(logging.DEBUG)
    ch = TestChannel(exp_time=exp_time())
    change = await stack.open_v23(ch)
    redacting.clear()
    await stack.pay_v23(ch, change - 1)
    await stack.public.get(f"/v2/funding/{ch.pk}/{ch.exp_time}/info")
    access = [r for r in redacting.records if r.name == "paychan.access"]
    public = [(r.levelname, r.route) for r in access if r.route.startswith("/v2/")]  # type: ignore[attr-defined]
    assert public == [("DEBUG", "/v2/channels/{txid}/{vout}"), ("INFO", "/v2/funding/{a}/{b}/info")]
    assert ("DEBUG", "/payments") in [(r.levelname, r.route) for r in access]  # type: ignore[attr-defined]  # ChanStore's too
    assert all("?" not in r.path and "secret" not in r.path for r in access)  # type: ignore[attr-defined]


async def test_no_secret_in_a_whole_flow(stack: Stack, redacting: pytest.LogCaptureFixture) -> None:
    redacting.set_level(logging.DEBUG)
    ch = TestChannel(exp_time=exp_time())
    change = await stack.open_v23(ch)
    await stack.pay_v23(ch, change - 1)
    await stack.mgmt("GET", "/totals", token="wrong")
    await stack.mgmt("POST", f"/channels/{ch.op.display_txid}/{ch.op.vout}/close")
    text = redacting.text
    sig = ch.sign(change - 1).der.hex()
    for secret in (INTERNAL_TOKEN, MGMT_TOKEN, ch.key.secret.hex(), sig, ch.secret(change)):
        assert secret not in text


def test_malformed_http_is_one_rate_limited_warning_line() -> None:
    from aiohttp.http_exceptions import LineTooLong

    from paychan_runtime.logs import MalformedHttpFilter

    now = [0.0]
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(KeyValueFormatter())
    logger = logging.getLogger("paychan.tests.aiohttp-server")
    logger.propagate = False
    logger.addHandler(handler)
    logger.addFilter(MalformedHttpFilter(burst=2, window=60.0, clock=lambda: now[0]))
    try:
        for _ in range(5):
            try:
                raise LineTooLong("request line", "8190", "9000")
            except LineTooLong as exc:
                logger.error("Error handling request from %s", "192.0.2.7", exc_info=exc)
        now[0] = 61.0
        try:
            raise LineTooLong("header", "8190", "9000")
        except LineTooLong as exc:
            logger.error("Error handling request from %s", "192.0.2.7", exc_info=exc)
        logger.error("an unrelated error stays as it is")
    finally:
        logger.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 4  # two in the first window, one after it, and the unrelated record
    assert all("level=WARNING" in line and "192.0.2.7" in line and "exc=" not in line for line in lines[:3])
    assert "3 more left out" in lines[2]
    assert "level=ERROR" in lines[3]
