"""Intake's view of the vault's band: the ceiling of a pair, read from the chain, kept a while,
and given up on (not waited for) when the chain does not answer."""

from __future__ import annotations

from node.rate_band import RateBand, RateCeiling
from settlement.conversion import convert
from settlement.manifest import AssetEntry, Manifest

MANIFEST = Manifest(chain_id=1, assets={"USD": AssetEntry("0x" + "00" * 20, 2), "JPY": AssetEntry("0x" + "00" * 20, 0)})
RATE = 150 * 10**18


class Chain:
    """A vault's two reads, counted; ``down`` makes them fail as an unreachable node does."""

    def __init__(self) -> None:
        self.reads = 0
        self.down = False

    def band_bps(self) -> int:
        return self._read(200)

    def reference_rate(self, sell: str, buy: str) -> tuple[int, int]:
        return (self._read(RATE if (sell, buy) == ("USD", "JPY") else 0), 0)

    def _read(self, value: int) -> int:
        self.reads += 1
        if self.down:
            raise ConnectionError("no answer")
        return value


def test_the_best_buy_is_the_conversion_at_the_top_of_the_band_with_no_fee() -> None:
    ceiling = RateCeiling(RATE, 200, 2, 0)
    assert ceiling.rate == RATE * 10_200 // 10_000
    assert ceiling.best_buy(1000_00) == convert(1000_00, RATE * 102 // 100, 0, 2, 0).buy_amount == 153_000
    assert RateCeiling(2**128 - 1, 10_000, 2, 0).rate == 2**128 - 1, "never beyond the signed type"


def test_ceilings_are_read_once_a_while_and_pairs_without_a_rate_are_not_checked() -> None:
    chain = Chain()
    band = RateBand(chain, MANIFEST, ttl_s=60)
    found = band.ceilings([("USD", "JPY"), ("JPY", "USD"), ("USD", "USD"), ("USD", "XYZ")])
    assert list(found) == [("USD", "JPY")] and found[("USD", "JPY")].best_buy(100) == 153
    reads = chain.reads
    assert band.ceilings([("USD", "JPY")]) == found and chain.reads == reads, "kept, not read again"


def test_an_unreachable_chain_is_not_waited_for() -> None:
    chain = Chain()
    chain.down = True
    band = RateBand(chain, MANIFEST, ttl_s=0, retry_after_s=60)
    assert band.ceilings([("USD", "JPY")]) == {}
    reads = chain.reads
    chain.down = False
    assert band.ceilings([("USD", "JPY")]) == {} and chain.reads == reads, "not asked again before retry_after_s"


def test_without_a_chain_nothing_is_checked() -> None:
    assert RateBand(None, MANIFEST).ceilings([("USD", "JPY")]) == {}
