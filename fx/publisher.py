"""The reference rate publisher: current mid rates to the vault's on-chain rate book.

The vault checks every quote against the reference rate it holds for the pair (within a
band) and refuses a reference rate older than its ``rateMaxAge``. The publisher reads the
book, and in one transaction sends only the points that changed, plus those whose on-chain
copy is older than ``refresh_after_s`` (by default half the vault's maximum age), so that
a steady rate does not go stale on chain. Nothing changed: no transaction.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from itertools import permutations

from fx.errors import FxError
from fx.rates import Rate, RateProvider
from settlement.chain import Sender
from settlement.chain.vault import Vault


@dataclass(frozen=True)
class PublishResult:
    published: list[Rate]
    unchanged: int
    missing: dict[tuple[str, str], str] = field(default_factory=dict)
    """Pairs no provider could price, with the reason; they keep their on-chain rate."""
    tx_hash: str | None = None
    block_number: int | None = None

    def summary(self) -> str:
        """One line for logs: how many rates went out, from where, and what fell back."""
        if not self.published:
            head = f"no reference rate changed ({self.unchanged} unchanged)"
        else:
            origins = sorted(
                {r.source.split(" [fallback: ")[0].removesuffix(" (cross via EUR)") for r in self.published}
            )
            head = f"published {len(self.published)} reference rates ({'; '.join(origins)}), {self.unchanged} unchanged"
        fallbacks = sorted(
            {r.source.split(" [fallback: ")[1].rstrip("]") for r in self.published if "[fallback" in r.source}
        )
        if fallbacks:
            head += f"; fell back from {fallbacks[0]}"
        if self.missing:
            head += f"; no rate for {len(self.missing)} pairs"
        return head


def current_rates(
    provider: RateProvider, codes: list[str], now: dt.datetime
) -> tuple[list[Rate], dict[tuple[str, str], str]]:
    """A mid rate for every ordered pair of ``codes`` that has one, and why the others have none."""
    found: list[Rate] = []
    missing: dict[tuple[str, str], str] = {}
    for sell, buy in permutations(sorted(codes), 2):
        try:
            found.append(provider.rate(sell, buy, now))
        except FxError as exc:
            missing[(sell, buy)] = str(exc)
    return found, missing


def publish_reference_rates(
    vault: Vault,
    oracle: Sender,
    provider: RateProvider,
    now: dt.datetime | None = None,
    codes: list[str] | None = None,
    refresh_after_s: int | None = None,
) -> PublishResult:
    """Publish the rates that changed (or are getting old on chain) in one transaction."""
    codes = codes if codes is not None else sorted(vault.manifest.assets)
    now = now or dt.datetime.now(dt.UTC)
    if refresh_after_s is None:
        refresh_after_s = max(vault.manifest.rate_max_age_s // 2, 1) if vault.manifest.rate_max_age_s else 86_400
    rates, missing = current_rates(provider, codes, now)
    chain_now = int(vault.w3.eth.get_block("latest")["timestamp"])
    changed: list[Rate] = []
    for rate in rates:
        on_chain, updated_at = vault.reference_rate(rate.sell, rate.buy)
        if on_chain != rate.rate or chain_now - updated_at >= refresh_after_s:
            changed.append(rate)
    if not changed:
        return PublishResult([], len(rates), missing)
    receipt = vault.publish_rates(oracle, [(r.sell, r.buy, r.rate) for r in changed])
    return PublishResult(
        changed,
        len(rates) - len(changed),
        missing,
        "0x" + bytes(receipt["transactionHash"]).hex(),
        int(receipt["blockNumber"]),
    )
