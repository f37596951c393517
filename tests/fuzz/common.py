"""Shared pieces of the atheris harnesses (tests/fuzz/README.md): the rule every parser of outside input
obeys, JSON decoding of fuzz input, and the entry point each harness calls."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

from paychan_common.errors import PaychanError

Harness = Callable[[bytes], None]

def rejects_cleanly(call: Callable[[], Any]) -> Any:
    """Run a parser: its result, or None if it refused the input with the project's error (PaychanError).

    Any other exception (ValueError, IndexError, struct.error, UnicodeError, RecursionError, ...) propagates:
    for the fuzzer it is a crash, for the service it would be a 500 or a dead process."""
    try:
        return call()
    except PaychanError:
        return None


NOT_JSON = object()


def json_input(data: bytes) -> Any:
    """The fuzz input as a JSON value, or the sentinel NOT_JSON (read_json answers 400 before any parser)."""
    try:
        return orjson.loads(data)  # what paychan_runtime.http.read_json uses
    except orjson.JSONDecodeError:
        return NOT_JSON


def text_input(data: bytes) -> str:
    """The fuzz input as text (an HTTP query or path value arrives as str)."""
    return data.decode("utf-8", errors="surrogateescape")


def main(harness: Harness, seeds: Sequence[bytes], argv: Sequence[str] | None = None) -> None:
    """Hand `harness` to libFuzzer (atheris): `python -m tests.fuzz.fuzz_X [--seed-corpus DIR] [libFuzzer flags]
    [corpus dirs or files]`; --seed-corpus first writes the harness's seeds into DIR (each must pass)."""
    import atheris

    args = list(argv if argv is not None else sys.argv)
    if len(args) > 2 and args[1] == "--seed-corpus":
        folder = Path(args[2])
        folder.mkdir(parents=True, exist_ok=True)
        for seed in seeds:
            harness(seed)
            (folder / f"seed-{hashlib.sha256(seed).hexdigest()[:16]}").write_bytes(seed)
        del args[1:3]
    atheris.Setup(args, harness)
    atheris.Fuzz()
