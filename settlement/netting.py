"""Gridlock resolution: which queued payments one net settlement cycle can settle.

The algorithm is Bech and Soramäki's partial multilateral netting ("Gridlock resolution in
payments systems", Danmarks Nationalbank Monetary Review 2001), on Corridor's accounts, which
are (participant, currency) pairs because every payment has two legs through a liquidity
provider:

1. Take every candidate payment (the queue, in order, at most ``size_max``) and sum its legs
   per account: the debtor pays the sell amount, the liquidity provider receives it less the
   fee and pays the buy amount, the creditor receives the buy amount (the fee accrues to the
   fee account, which is never short).
2. If every account's available balance covers its net debit, settle them all.
3. Otherwise take the account whose shortfall is largest (ties: the smallest account key) and
   take out the payments that debit it, latest in the queue first, until it is covered; go to 2.
   Each round takes out at least one payment, and there are at most ``rounds_max`` rounds (if
   they run out, nothing settles this time).
4. Then give each payment taken out, in queue order, one more chance: it goes back in if every
   account stays covered.

The result is deterministic: it depends only on the queue's order and the balances. The vault
applies the same rule on chain (each account's net debit covered by its available balance), so
a cycle chosen here from the chain's current balances settles unless the balances move first.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

Account = tuple[str, str]
"""A participant's address and a currency code."""


@dataclass(frozen=True, slots=True)
class Payment:
    """A queued payment, priced: the figures the vault will book for it."""

    key: str
    debtor: str
    creditor: str
    sell_currency: str
    sell_amount: int
    buy_currency: str
    buy_amount: int
    fee: int
    liquidity_provider: str
    from_escrow: bool = False
    """Escrowed before (a review hold): its escrow pays its sell leg, not the debtor's available balance."""

    def legs(self) -> tuple[tuple[Account, int], ...]:
        """Its movements of available balances, as the vault sums them (the fee aside)."""
        lp = self.liquidity_provider
        debtor = () if self.from_escrow else (((self.debtor, self.sell_currency), -self.sell_amount),)
        return (
            *debtor,
            ((lp, self.sell_currency), self.sell_amount - self.fee),
            ((lp, self.buy_currency), -self.buy_amount),
            ((self.creditor, self.buy_currency), self.buy_amount),
        )

    def debits(self) -> tuple[Account, ...]:
        """The accounts whose available balance it draws on."""
        provider = (self.liquidity_provider, self.buy_currency)
        return (provider,) if self.from_escrow else ((self.debtor, self.sell_currency), provider)


@dataclass(frozen=True, slots=True)
class Shortfall:
    """Why a payment waits: its debtor's cover in the sell currency falls short of it."""

    participant: str
    currency: str
    available: int
    needed: int

    @property
    def missing(self) -> int:
        return max(0, self.needed - self.available)


@dataclass(frozen=True, slots=True)
class Cycle:
    settled: tuple[Payment, ...]
    deferred: dict[str, Shortfall]
    """Payment key → the shortfall that keeps it queued."""
    net: dict[Account, int]
    """The settled set's net movement per account."""
    rounds: int

    def gross(self) -> dict[str, int]:
        """Per currency, what the settled payments move gross (sell and buy amounts)."""
        moved: dict[str, int] = defaultdict(int)
        for p in self.settled:
            moved[p.sell_currency] += p.sell_amount
            moved[p.buy_currency] += p.buy_amount
        return dict(moved)

    def net_debits(self) -> dict[str, int]:
        """Per currency, the liquidity the cycle uses: the sum of its accounts' net debits."""
        debits: dict[str, int] = defaultdict(int)
        for (_, currency), movement in self.net.items():
            if movement < 0:
                debits[currency] -= movement
        return dict(debits)


def resolve(
    queue: Sequence[Payment], available: Mapping[Account, int], size_max: int = 256, rounds_max: int = 1024
) -> Cycle:
    """The payments of ``queue`` (in priority order) that one cycle settles from ``available``."""
    if size_max < 1 or rounds_max < 1:
        raise ValueError("size_max and rounds_max must be positive")
    candidates = list(queue[:size_max])
    book = _Book(available)
    for p in candidates:
        book.add(p)
    included = [True] * len(candidates)
    by_debit: dict[Account, list[int]] = defaultdict(list)
    for i, p in enumerate(candidates):
        for account in p.debits():
            by_debit[account].append(i)
    rounds = 0
    while (short := book.most_short()) is not None:
        rounds += 1
        if rounds > rounds_max:
            included = [False] * len(candidates)
            book = _Book(available)
            break
        account = short
        waiting = by_debit[account]
        while waiting and book.shortfall(account) > 0:
            i = waiting.pop()
            if included[i]:
                included[i] = False
                book.remove(candidates[i])
    for i, p in enumerate(candidates):
        if not included[i] and book.fits(p):
            included[i] = True
            book.add(p)
    settled = tuple(p for i, p in enumerate(candidates) if included[i])
    deferred = {p.key: book.shortfall_of(p) for i, p in enumerate(candidates) if not included[i]}
    deferred.update((p.key, book.shortfall_of(p)) for p in queue[size_max:])
    return Cycle(settled, deferred, book.net(), rounds)


class _Book:
    """Net movements per account of the payments included so far, against the balances."""

    def __init__(self, available: Mapping[Account, int]) -> None:
        self.available = available
        self.movement: dict[Account, int] = defaultdict(int)

    def add(self, p: Payment) -> None:
        self._apply(p.legs(), 1)

    def remove(self, p: Payment) -> None:
        self._apply(p.legs(), -1)

    def _apply(self, legs: Iterable[tuple[Account, int]], sign: int) -> None:
        for account, amount in legs:
            self.movement[account] += sign * amount

    def shortfall(self, account: Account) -> int:
        return max(0, -(self.available.get(account, 0) + self.movement[account]))

    def most_short(self) -> Account | None:
        worst: tuple[int, Account] | None = None
        for account, movement in self.movement.items():
            gap = -(self.available.get(account, 0) + movement)
            if gap > 0 and (worst is None or (-gap, account) < (-worst[0], worst[1])):
                worst = (gap, account)
        return None if worst is None else worst[1]

    def fits(self, p: Payment) -> bool:
        totals: dict[Account, int] = defaultdict(int)
        for account, amount in p.legs():
            totals[account] += amount
        return all(self.available.get(a, 0) + self.movement[a] + amount >= 0 for a, amount in totals.items())

    def shortfall_of(self, p: Payment) -> Shortfall:
        account = (p.debtor, p.sell_currency)
        cover = self.available.get(account, 0) + self.movement[account]
        return Shortfall(p.debtor, p.sell_currency, max(0, cover), p.sell_amount)

    def net(self) -> dict[Account, int]:
        return {account: movement for account, movement in self.movement.items() if movement}
