"""A JSON-RPC proxy that breaks calls on purpose, between the node and the chain.

No such tool ships in the package registries here, so this is a small one: a threaded HTTP
server forwarding each POST to the chain, and, for a share ``fault_rate`` of the calls, one
fault drawn from ``kinds``:

  drop        read the request, close the connection without an answer
  reset       abort the connection (TCP RST) without an answer
  delay       answer after ``delay_s`` (beyond the client's timeout)
  http_5xx    answer 502, 503 or 504 with no JSON-RPC body
  truncate    announce the whole answer, send half of it, close
  head_lag    ``eth_blockNumber`` a few blocks behind the head (and so, from one call to the
              next, going backwards)
  logs_empty  ``eth_getLogs`` answered ``[]`` when its range reaches the head's last blocks (a
              node that has not indexed them yet)

Faults that change an answer apply to the matching calls of a batch too; a call they do not fit
is passed through and not counted. ``counts`` holds what was injected, by kind.
"""

from __future__ import annotations

import json
import random
import socket
import struct
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

KINDS = ("drop", "reset", "delay", "http_5xx", "truncate", "head_lag", "logs_empty")


class RpcProxy:
    def __init__(
        self,
        upstream: str,
        fault_rate: float = 0.1,
        kinds: tuple[str, ...] = KINDS,
        delay_s: float = 12.0,
        seed: int = 1,
    ) -> None:
        assert set(kinds) <= set(KINDS), kinds
        self.upstream, self.fault_rate, self.kinds, self.delay_s = upstream, fault_rate, kinds, delay_s
        self.counts: Counter[str] = Counter()
        self.calls = 0
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._http = httpx.Client(timeout=60)
        self._server = _Server(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> RpcProxy:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._http.close()

    def pick(self, methods: set[str]) -> str | None:
        """The fault for a request calling ``methods``, or None: one that fits it (a head lag only
        for a request that asks for the head, empty logs only for one that asks for logs)."""
        fits = [
            k
            for k in self.kinds
            if (k != "head_lag" or "eth_blockNumber" in methods) and (k != "logs_empty" or "eth_getLogs" in methods)
        ]
        with self._lock:
            self.calls += 1
            if self._random.random() >= self.fault_rate:
                return None
            return self._random.choice(fits)

    def count(self, kind: str) -> None:
        with self._lock:
            self.counts[kind] += 1

    def forward(self, body: bytes) -> httpx.Response:
        return self._http.post(self.upstream, content=body, headers={"Content-Type": "application/json"})

    def rewrite(self, kind: str, request: Any, answer: Any) -> bool:
        """Change ``answer`` in place for a ``head_lag`` or ``logs_empty`` fault (True: it applied)."""
        pairs = zip(request, answer, strict=False) if isinstance(request, list) else [(request, answer)]
        applied = False
        for call, reply in pairs:
            if not isinstance(call, dict) or not isinstance(reply, dict) or "result" not in reply:
                continue
            if kind == "head_lag" and call.get("method") == "eth_blockNumber":
                reply["result"] = hex(max(0, int(reply["result"], 16) - self._random.randint(1, 4)))
                applied = True
            elif kind == "logs_empty" and call.get("method") == "eth_getLogs" and reply["result"]:
                reply["result"] = []
                applied = True
        return applied


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up (after a fault, or its own timeout) is not news."""


def _handler(proxy: RpcProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_: Any) -> None:
            pass

        def do_POST(self) -> None:  # noqa: N802 - the standard library's name
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            try:
                request = json.loads(body)
            except ValueError:
                request = None
            calls = request if isinstance(request, list) else [request]
            kind = proxy.pick({str(c.get("method")) for c in calls if isinstance(c, dict)})
            if kind in ("drop", "reset"):
                proxy.count(kind)
                if kind == "reset":
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.close_connection = True
                self.connection.close()
                return
            if kind == "http_5xx":
                proxy.count(kind)
                self._answer(proxy._random.choice((502, 503, 504)), b"upstream unavailable", "text/plain")
                return
            if kind == "delay":
                proxy.count(kind)
                time.sleep(proxy.delay_s)
            try:
                upstream = proxy.forward(body)
            except httpx.HTTPError:
                self._answer(502, b"chain unreachable", "text/plain")
                return
            content = upstream.content
            if kind in ("head_lag", "logs_empty") and upstream.status_code == 200:
                answer = json.loads(content)
                if proxy.rewrite(kind, request, answer):
                    proxy.count(kind)
                    content = json.dumps(answer).encode()
            if kind == "truncate":
                proxy.count(kind)
                self.send_response(upstream.status_code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content[: len(content) // 2])
                self.close_connection = True
                return
            self._answer(upstream.status_code, content, "application/json")

        def _answer(self, status: int, content: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

    return Handler
