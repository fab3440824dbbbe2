"""How far the vault lets a quote's rate lie from its reference rate, and what that means for a
bank's minimum: intake refuses an instruction no quote the vault would take could settle,
rather than escrowing the bank's funds until the deadline refunds them."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

from settlement.chain.vault import Vault
from settlement.conversion import BPS, UINT128_MAX, convert
from settlement.manifest import Manifest

log = logging.getLogger("corridor.intake")


@dataclass(frozen=True, slots=True)
class RateCeiling:
    """The highest rate the vault takes for a pair now: its reference rate and the band above it."""

    reference_rate: int
    band_bps: int
    sell_decimals: int
    buy_decimals: int

    @property
    def rate(self) -> int:
        # The vault refuses a rate r when |r - reference| * 10_000 > reference * band.
        return min(UINT128_MAX, self.reference_rate + self.reference_rate * self.band_bps // BPS)

    def best_buy(self, sell_amount: int) -> int:
        """The most any quote the vault takes could buy for ``sell_amount`` (no fee, the top of the band)."""
        return convert(sell_amount, self.rate, 0, self.sell_decimals, self.buy_decimals).buy_amount


class RateBand:
    """The ceilings of the vault's pairs, read from the chain and kept ``ttl_s``; after a failed read
    none are given for ``retry_after_s`` (intake then checks no minimum rather than wait for a
    chain that does not answer). Shared by the API's threads."""

    def __init__(
        self, vault: Vault | None, manifest: Manifest, ttl_s: float = 2.0, retry_after_s: float = 10.0
    ) -> None:
        self.vault = vault
        self.manifest = manifest
        self.ttl_s = ttl_s
        self.retry_after_s = retry_after_s
        self._lock = threading.Lock()
        self._read: dict[tuple[str, str], tuple[float, RateCeiling | None]] = {}
        self._unreadable_until = 0.0

    def ceilings(self, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], RateCeiling]:
        listed = {(s, b) for s, b in pairs if s != b and s in self.manifest.assets and b in self.manifest.assets}
        now = time.monotonic()
        if self.vault is None or not listed or now < self._unreadable_until:
            return {}
        stale = [pair for pair in listed if pair not in self._read or now - self._read[pair][0] > self.ttl_s]
        # One request reads the chain; the others meanwhile check against what was read before,
        # rather than queue behind a chain that may be slow to answer.
        if stale and self._lock.acquire(blocking=False):
            try:
                self._refresh(stale, now)
            except Exception as exc:  # the chain is a refinement here: the pipeline refunds what cannot settle
                self._unreadable_until = now + self.retry_after_s
                log.warning(
                    "reference rates unreadable, intake checks no minimums for %ss: %s", self.retry_after_s, exc
                )
                return {}
            finally:
                self._lock.release()
        found = [(pair, self._read.get(pair)) for pair in listed]
        return {pair: read[1] for pair, read in found if read is not None and read[1] is not None}

    def _refresh(self, pairs: list[tuple[str, str]], now: float) -> None:
        assert self.vault is not None
        band = self.vault.band_bps()
        for s, b in pairs:
            rate = self.vault.reference_rate(s, b)[0]
            decimals = (self.manifest.assets[s].decimals, self.manifest.assets[b].decimals)
            self._read[(s, b)] = (now, RateCeiling(rate, band, *decimals) if rate > 0 else None)
