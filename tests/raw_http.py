"""An HTTP/1.1 exchange on a bare socket, for bodies no ordinary client would send.

The body is sent from a thread while the answer is read, as a careful client does: a server
may answer (a 413, a 408) before it has read the body, and stop reading it. Bodies may be
sent with a Content-Length, chunked, or left unfinished (``stall_s``).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

READ_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def exchange(
    url: str,
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    chunks: Iterable[bytes] = (),
    content_length: int | None = None,
    chunked: bool = False,
    stall_s: float = 0.0,
) -> Answer:
    """Send a request whose body is ``chunks`` (after them, wait ``stall_s`` without finishing) and read the answer."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=READ_TIMEOUT_S)
    lines = [f"{method} {path} HTTP/1.1", f"Host: {parts.netloc}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if content_length is not None:
        lines.append(f"Content-Length: {content_length}")
    if chunked:
        lines.append("Transfer-Encoding: chunked")
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())

    def send_body() -> None:
        try:
            for chunk in chunks:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
            if stall_s:
                time.sleep(stall_s)
            elif chunked:
                sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server answered and closed: what it said is read below

    sender = threading.Thread(target=send_body, daemon=True)
    sender.start()
    try:
        return _read_answer(sock)
    finally:
        sock.close()
        sender.join(timeout=READ_TIMEOUT_S)


def _read_answer(sock: socket.socket) -> Answer:
    data = b""
    while b"\r\n\r\n" not in data:
        got = sock.recv(65536)
        if not got:
            raise ConnectionError(f"the server closed the connection without an answer (read {data[:200]!r})")
        data += got
    head, rest = data.split(b"\r\n\r\n", 1)
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (h.split(":", 1) for h in header_lines)}
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        got = sock.recv(65536)
        if not got:
            break
        rest += got
    return Answer(int(status_line.split(" ")[1]), headers, rest[:length])
