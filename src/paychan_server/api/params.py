"""Parsing of URL path and query parameters (spec 7.1)."""

from __future__ import annotations

from collections.abc import Mapping

from paychan_common.channel import parse_hex
from paychan_common.errors import InvalidInput
from paychan_common.keys import PublicKey
from paychan_common.script import check_exp_time
from paychan_common.tx import OutPoint, outpoint_from_display


def required(query: Mapping[str, str], name: str) -> str:
    """A required query parameter."""
    value = query.get(name)
    if value is None or value == "":
        raise InvalidInput(f"missing query parameter {name!r}")
    return value


def parse_uint(text: str, name: str, limit: int = 0xFFFFFFFF) -> int:
    """A decimal unsigned integer (digits only)."""
    if not text.isascii() or not text.isdigit() or len(text) > 10:
        raise InvalidInput(f"{name} must be a decimal integer")
    value = int(text)
    if value > limit:
        raise InvalidInput(f"{name} out of range")
    return value


def parse_exp_time(text: str) -> int:
    """exp_time: decimal, 500000000 <= t <= 2^32-1."""
    return check_exp_time(parse_uint(text, "exp_time"))


def parse_pubkey(text: str) -> PublicKey:
    """client_pubkey: 66 hex chars, a valid compressed point."""
    return PublicKey.from_hex(text)


def parse_outpoint(txid: str, vout: str) -> OutPoint:
    """funding_txid (display hex) and funding_vout (uint32) from a path."""
    return outpoint_from_display(txid.lower(), parse_uint(vout, "funding_vout"))


def parse_secret(text: str | None) -> bytes:
    """v2.3.0 `secret`: 64 hex chars, bare or JSON-quoted (spec 6.4)."""
    if not text:
        raise InvalidInput("missing query parameter 'secret'")
    if len(text) == 66 and text[0] == text[-1] == '"':
        text = text[1:-1]
    if len(text) != 64:
        raise InvalidInput("secret must be 64 hex characters")
    return parse_hex(text, "secret", 64)
