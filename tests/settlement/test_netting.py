"""Gridlock resolution (settlement.netting): what one cycle settles from given balances."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from settlement.netting import Account, Payment, resolve

LP = "lp"
RING = (("A", "USD"), ("B", "EUR"), ("C", "GBP"))


def pay(key: str, debtor: str, sell: str, creditor: str, buy: str, amount: int, fee: int = 0) -> Payment:
    return Payment(key, debtor, creditor, sell, amount, buy, amount - fee, fee, LP)


def ring(amount: int) -> list[Payment]:
    return [
        pay(f"p{i}", debtor, sell, RING[(i + 1) % 3][0], RING[(i + 1) % 3][1], amount)
        for i, (debtor, sell) in enumerate(RING)
    ]


def lp_funded(amount: int) -> dict[Account, int]:
    return {(LP, code): amount for _, code in RING}


def test_resolve_settles_everything_when_every_net_debit_is_covered() -> None:
    queue = ring(100)
    cycle = resolve(queue, {**lp_funded(1_000), ("A", "USD"): 100, ("B", "EUR"): 100, ("C", "GBP"): 100})
    assert cycle.settled == tuple(queue) and cycle.deferred == {} and cycle.rounds == 0


def test_resolve_unlocks_a_gridlocked_ring_funded_at_a_tenth() -> None:
    """Gross, no bank could pay (each holds a tenth of what it owes); net, each pays what it receives."""
    queue = ring(1_000)
    balances = {**lp_funded(10_000), ("A", "USD"): 100, ("B", "EUR"): 100, ("C", "GBP"): 100}
    cycle = resolve(queue, balances)
    assert cycle.settled == tuple(queue)
    assert cycle.net_debits() == {}  # with no fee, the ring needs no liquidity at all
    assert cycle.gross() == {"USD": 2_000, "EUR": 2_000, "GBP": 2_000}


def test_resolve_takes_out_the_short_banks_latest_payments_first() -> None:
    queue = [*ring(1_000), pay("late", "A", "USD", "B", "EUR", 500), pay("later", "A", "USD", "C", "GBP", 300)]
    balances = {**lp_funded(10_000), ("A", "USD"): 400, ("B", "EUR"): 0, ("C", "GBP"): 0}
    cycle = resolve(queue, balances)
    # A can add 400 to the ring: "later" (300) goes back in, "late" (500) waits for cover.
    assert [p.key for p in cycle.settled] == ["p0", "p1", "p2", "later"]
    shortfall = cycle.deferred["late"]
    assert (shortfall.participant, shortfall.currency, shortfall.available, shortfall.needed) == ("A", "USD", 100, 500)
    assert shortfall.missing == 400


def test_resolve_defers_a_ring_that_one_bank_cannot_close() -> None:
    queue = ring(1_000)
    queue[2] = pay("p2", "C", "GBP", "A", "USD", 600)  # C pays back less than A sends
    balances = {**lp_funded(10_000), ("A", "USD"): 100, ("B", "EUR"): 0, ("C", "GBP"): 0}
    cycle = resolve(queue, balances)
    assert cycle.settled == ()
    assert set(cycle.deferred) == {"p0", "p1", "p2"}


def test_resolve_bounds_the_cycle_size_and_rounds() -> None:
    queue = ring(100) * 1
    cycle = resolve(queue, {**lp_funded(1_000), ("A", "USD"): 100, ("B", "EUR"): 100, ("C", "GBP"): 100}, size_max=2)
    assert [p.key for p in cycle.settled] == ["p0", "p1"] and set(cycle.deferred) == {"p2"}
    # Two banks short: A by 800 (two payments out), then B by 200 (one): two rounds.
    queue = [
        *ring(1_000),
        pay("late", "A", "USD", "B", "EUR", 500),
        pay("later", "A", "USD", "C", "GBP", 300),
        pay("b-late", "B", "EUR", "C", "GBP", 200),
    ]
    balances = {**lp_funded(10_000), ("A", "USD"): 0, ("B", "EUR"): 0, ("C", "GBP"): 0}
    full = resolve(queue, balances)
    assert full.rounds == 2 and [p.key for p in full.settled] == ["p0", "p1", "p2"]
    assert resolve(queue, balances, rounds_max=1).settled == ()


payments = st.lists(
    st.tuples(st.integers(0, 3), st.integers(0, 2), st.integers(0, 3), st.integers(0, 2), st.integers(1, 1_000)),
    min_size=1,
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(payments, st.lists(st.integers(0, 2_000), min_size=12, max_size=12), st.integers(0, 3_000))
def test_resolve_always_picks_a_set_the_balances_fund(
    rows: list[tuple[int, int, int, int, int]], funds: list[int], lp_funds: int
) -> None:
    codes = ("USD", "EUR", "JPY")
    queue = [
        Payment(f"p{i}", f"bank{d}", f"bank{c}", codes[s], amount, codes[b], amount * 2 // 3, amount // 100, LP)
        for i, (d, s, c, b, amount) in enumerate(rows)
        if s != b and d != c
    ]
    balances = {(f"bank{i // 3}", codes[i % 3]): f for i, f in enumerate(funds)}
    balances.update({(LP, code): lp_funds for code in codes})
    cycle = resolve(queue, balances)
    assert {p.key for p in cycle.settled} | set(cycle.deferred) == {p.key for p in queue}
    assert not {p.key for p in cycle.settled} & set(cycle.deferred)
    for account, movement in cycle.net.items():
        assert balances.get(account, 0) + movement >= 0, account
    assert resolve(queue, balances) == cycle  # deterministic
    if all(balances.get(a, 0) + m >= 0 for a, m in resolve(queue, dict.fromkeys(balances, 10**9)).net.items()):
        assert cycle.settled == tuple(queue)


def test_resolve_counts_an_escrowed_payment_on_its_escrow_not_the_debtors_available() -> None:
    held = Payment("held", "A", "B", "USD", 1_000, "EUR", 1_000, 0, LP, from_escrow=True)
    cycle = resolve([held], {**lp_funded(10_000), ("A", "USD"): 0})
    assert cycle.settled == (held,) and ("A", "USD") not in cycle.net
    assert held.debits() == ((LP, "EUR"),)
