"""CPU cost of parsing one internal-service answer: the former hand parser, httptools (kept) and h11.

    .venv/bin/python bench/bench_http_parse.py [--n 20000]

Prints microseconds per answer for each parser on a typical ChanStore answer (aiohttp's headers, a
97-byte JSON body). The figures that chose httptools for paychan_runtime/http1.py are in bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import h11
import httptools

ANSWER = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: 97\r\n"
          b"Date: Tue, 01 Dec 2026 23:00:00 GMT\r\nServer: Python/3.11 aiohttp/3.14.5\r\n\r\n" + b"x" * 97)


def hand() -> tuple[int, bytes]:
    """The parser chan_store/client.py and bench/httpload.py carried before (status from head[9:12])."""
    buf = bytearray(ANSWER)
    end = buf.find(b"\r\n\r\n")
    head = bytes(buf[:end]).lower()
    length = -1
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name == b"content-length" and value.strip().isdigit():
            length = int(value)
    status, body = int(head[9:12]), bytes(buf[end + 4 : end + 4 + length])
    del buf[: end + 4 + length]
    return status, body


class _Sink:
    def __init__(self) -> None:
        self.body: list[bytes] = []

    def on_body(self, body: bytes) -> None:
        self.body.append(body)


_sink = _Sink()
_parser = httptools.HttpResponseParser(_sink)


def with_httptools() -> tuple[int, bytes]:
    """One answer through a kept-alive httptools parser (as Http1Connection does)."""
    _sink.body = []
    _parser.feed_data(ANSWER)
    return _parser.get_status_code(), b"".join(_sink.body)


def with_h11() -> tuple[int, bytes]:
    """One exchange through h11's state machine (a fresh connection each time: h11 needs the request)."""
    conn = h11.Connection(h11.CLIENT)
    conn.send(h11.Request(method="GET", target="/", headers=[("Host", "x")]))
    conn.send(h11.EndOfMessage())
    conn.receive_data(ANSWER)
    head, data = conn.next_event(), conn.next_event()
    assert isinstance(head, h11.Response) and isinstance(data, h11.Data)
    return head.status_code, bytes(data.data)


def main() -> None:
    """Time each parser."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--n", type=int, default=20000)
    n = ap.parse_args().n
    parsers: list[tuple[str, Callable[[], tuple[int, bytes]]]] = [
        ("hand parser", hand), ("httptools", with_httptools), ("h11", with_h11)]
    for name, parse in parsers:
        assert parse() == (200, b"x" * 97), name
        began = time.perf_counter()
        for _ in range(n):
            parse()
        print(f"{name:12s} {(time.perf_counter() - began) / n * 1e6:7.2f} us/answer")


if __name__ == "__main__":
    main()
