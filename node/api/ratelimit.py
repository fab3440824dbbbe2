"""Rate limits at the door, before a key is looked up or a body read.

Two token buckets (a rate and a burst each), held in this replica's memory:

- **per API key** (its hash, valid or not): a bank sending faster than
  ``rate_limit_key_per_s`` gets 429 ``rate_limited`` with ``Retry-After``, and its neighbours
  do not wait behind it;
- **per client address, for failed authentication**: each request from an address whose key is
  missing or not valid takes a token; once they are spent, requests from that address are
  answered 429 without a look-up, except those carrying a key that authenticated recently (so a
  bank behind the same address as a key-guesser keeps working).

Each replica counts for itself: with N replicas behind a balancer an address gets up to N times
the rate. The client address is the socket's peer; behind a proxy, give the proxy's own limits.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from node.errors import Refusal, Refused

KEYS_MAX = 100_000
"""Buckets (and recently good keys) kept; the least recently used go first (a full bucket is the default)."""


class TokenBuckets:
    """One bucket per name: ``rate_per_s`` tokens a second, at most ``burst`` held."""

    def __init__(self, rate_per_s: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate_per_s, self.burst, self.clock = rate_per_s, burst, clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def _level(self, name: str, now: float) -> float:
        tokens, at = self._buckets.get(name, (float(self.burst), now))
        return min(float(self.burst), tokens + (now - at) * self.rate_per_s)

    def take(self, name: str) -> float:
        """Take a token: 0.0 if there was one, else the seconds until there will be (nothing taken)."""
        with self._lock:
            now = self.clock()
            tokens = self._level(name, now)
            if tokens < 1.0:
                return (1.0 - tokens) / self.rate_per_s
            self._buckets[name] = (tokens - 1.0, now)
            self._buckets.move_to_end(name)
            while len(self._buckets) > KEYS_MAX:
                self._buckets.popitem(last=False)
            return 0.0

    def wait(self, name: str) -> float:
        """Seconds until ``name`` has a token (0.0: it has one now); takes nothing."""
        with self._lock:
            tokens = self._level(name, self.clock())
            return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate_per_s


@dataclass(frozen=True, slots=True)
class RateSettings:
    key_per_s: float
    key_burst: int
    auth_failures_per_s: float
    auth_failures_burst: int


class RateLimits:
    def __init__(self, settings: RateSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_key = TokenBuckets(settings.key_per_s, settings.key_burst, clock) if settings.key_per_s else None
        self.failures = (
            TokenBuckets(settings.auth_failures_per_s, settings.auth_failures_burst, clock)
            if settings.auth_failures_per_s
            else None
        )
        self._good: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def admit(self, key_hash: str, address: str) -> None:
        """Before authentication: refuse (429) a key over its rate, or an unproven key from an
        address that has spent its failures."""
        if self.per_key is not None:
            wait = self.per_key.take(key_hash)
            if wait:
                raise _limited(wait, "this API key sends faster than the node's limit for a key")
        if self.failures is not None and not self._known(key_hash):
            wait = self.failures.wait(address)
            if wait:
                raise _limited(wait, "too many requests without a valid API key from your address")

    def failed(self, address: str) -> None:
        if self.failures is not None:
            self.failures.take(address)

    def succeeded(self, key_hash: str) -> None:
        with self._lock:
            self._good[key_hash] = None
            self._good.move_to_end(key_hash)
            while len(self._good) > KEYS_MAX:
                self._good.popitem(last=False)

    def _known(self, key_hash: str) -> bool:
        with self._lock:
            return key_hash in self._good


def _limited(wait_s: float, why: str) -> Refused:
    retry_after_s = max(1, math.ceil(wait_s))
    return Refused(Refusal.RATE_LIMITED, f"{why}: retry after {retry_after_s} s", {"retry_after_s": retry_after_s})
