"""Satoshi amounts: integers in 0..MAX_MONEY, never floats or bools."""

from __future__ import annotations

from typing import Any

from .errors import InvalidInput

MAX_MONEY = 21_000_000 * 100_000_000


class Sat(int):
    """An amount of satoshis; refuses floats, bools, negatives and values above 21e14."""

    __slots__ = ()

    def __new__(cls, value: Any) -> Sat:
        if type(value) is cls:
            return value
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidInput(f"amount must be an integer number of satoshis, not {type(value).__name__}")
        if value < 0:
            raise InvalidInput(f"amount must not be negative: {value}")
        if value > MAX_MONEY:
            raise InvalidInput(f"amount above 21e14 satoshis: {value}")
        return int.__new__(cls, value)

    def __add__(self, other: int) -> Sat:
        return Sat(int(self) + _operand(other))

    def __sub__(self, other: int) -> Sat:
        return Sat(int(self) - _operand(other))

    def __repr__(self) -> str:
        return f"Sat({int(self)})"


def _operand(value: Any) -> int:
    """An arithmetic operand must be an integer too (no silent truncation of floats or strings)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"amount arithmetic needs an integer, not {type(value).__name__}")
    return int(value)
