"""Satoshi amounts: integers in 0..MAX_MONEY, never floats or bools, checked where they cross a boundary."""

from __future__ import annotations

from .errors import InvalidInput

__all__ = ["MAX_MONEY", "check_amount"]

MAX_MONEY = 21_000_000 * 100_000_000
"""Consensus's MAX_MONEY: no amount exceeds 21e14 satoshis."""


def check_amount(value: object, what: str = "amount") -> int:
    """An integer number of satoshis in 0..MAX_MONEY; InvalidInput naming `what` for a float, bool,
    non-integer, negative or larger value."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{what} must be an integer number of satoshis, not {type(value).__name__}")
    if not 0 <= value <= MAX_MONEY:
        raise InvalidInput(f"{what} must be between 0 and 21e14 satoshis (MAX_MONEY)")
    return int(value)
