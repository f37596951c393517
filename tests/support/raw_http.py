"""Raw HTTP/1.1 over a socket, for tests that need exact bytes: pipelining, segments, every header."""

from __future__ import annotations

import socket
import time

import httptools

__all__ = ["Answer", "exchange", "request"]

Answer = tuple[int, str, dict[str, str], bytes]
"""(status, reason phrase, headers lower-cased without Date, body)."""


def request(method: str, target: str, body: bytes, headers: dict[str, str]) -> bytes:
    """One request's bytes; Content-Length is added unless the headers say Transfer-Encoding."""
    head = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in headers.items())]
    if "Transfer-Encoding" not in headers:
        head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


class _Answers:
    def __init__(self) -> None:
        self.done: list[Answer] = []
        self._reason = ""
        self._headers: dict[str, str] = {}
        self._body = b""
        self.parser = httptools.HttpResponseParser(self)

    def on_status(self, status: bytes) -> None:
        self._reason = status.decode()

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode().lower()] = value.decode()

    def on_body(self, body: bytes) -> None:
        self._body += body

    def on_message_complete(self) -> None:
        self._headers.pop("date", None)
        self.done.append((self.parser.get_status_code(), self._reason, self._headers, self._body))
        self._reason, self._headers, self._body = "", {}, b""


def exchange(port: int, chunks: list[bytes], answers: int) -> list[Answer]:
    """Send the chunks on one new connection (2 ms apart when several), read `answers` answers."""
    got = _Answers()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for chunk in chunks:
            sock.sendall(chunk)
            if len(chunks) > 1:
                time.sleep(0.002)
        while len(got.done) < answers:
            data = sock.recv(65536)
            assert data, f"connection closed after {len(got.done)} answers"
            got.parser.feed_data(data)
    return got.done
