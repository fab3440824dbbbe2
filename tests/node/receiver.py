"""A bank's webhook receiver for the tests: an HTTP server on 127.0.0.1 that keeps what it got."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from node.notify.webhooks import ID_HEADER


class Receiver:
    """Answers 500 to the first ``fails_before_success`` attempts of each delivery, then 200; keeps
    each accepted delivery as (path, headers, raw body) and counts attempts per delivery id."""

    def __init__(self, fails_before_success: int = 0) -> None:
        self.attempts: dict[str, int] = {}
        self.got: list[tuple[str, dict[str, str], bytes]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server protocol
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                delivery = self.headers[ID_HEADER]
                with receiver.lock:
                    n = receiver.attempts[delivery] = receiver.attempts.get(delivery, 0) + 1
                    if n > fails_before_success:
                        receiver.got.append((self.path, dict(self.headers.items()), raw))
                self.send_response(200 if n > fails_before_success else 500)
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def received(self, at_least: int) -> list[tuple[str, dict[str, str], bytes]]:
        """What came in so far, or nothing while it is fewer than ``at_least`` (for ``wait_for``)."""
        with self.lock:
            got = list(self.got)
        return got if len(got) >= at_least else []

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def serve(fails_before_success: int = 0) -> Iterator[Receiver]:
    r = Receiver(fails_before_success)
    yield r
    r.close()
