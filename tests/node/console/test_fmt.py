"""How the console writes figures: amounts per currency exponent, rates, times, hashes, charts."""

from __future__ import annotations

import datetime as dt

from node.console import fmt


def test_amounts_follow_the_currencys_exponent() -> None:
    assert fmt.amount(123456789, "USD") == "1,234,567.89 USD"
    assert fmt.amount(1500000000, "JPY") == "1,500,000,000 JPY"
    assert fmt.amount(-5, "EUR") == "-0.05 EUR"
    assert fmt.amount(0, "CHF") == "0.00 CHF"
    assert fmt.amount(None, "USD") == "—"


def test_rates_times_and_hashes() -> None:
    assert fmt.rate(894_199_780_000_000_000) == "0.89419978"
    assert fmt.rate(151_234_500_000_000_000_000) == "151.23450000"
    at = dt.datetime(2026, 12, 5, 19, 30, 1, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert fmt.utc(at) == '<time datetime="2026-12-05T17:30:01+00:00">2026-12-05 17:30:01 UTC</time>'
    assert fmt.unix(0) == '<time datetime="1970-01-01T00:00:00+00:00">1970-01-01 00:00:00 UTC</time>'
    full = "0x" + "ab" * 32
    shown = str(fmt.short(full))
    assert "0xababab…ababab" in shown and f'title="{full}"' in shown and f'data-copy="{full}"' in shown
    assert "&lt;script&gt;" in str(fmt.short("<script>alert(1)</script>" * 2)), "escaped"


def test_bars_scale_to_the_tallest_and_an_empty_series_draws_nothing() -> None:
    start = dt.datetime(2026, 12, 5, tzinfo=dt.UTC)
    series = [(start + dt.timedelta(minutes=5 * i), n) for i, n in enumerate((0, 5, 10))]
    bars = fmt.bars(series, 300, 100)
    assert [b.height for b in bars] == [0, 50, 100] and [b.y for b in bars] == [100, 50, 0]
    assert fmt.bars([]) == [] and fmt.paired_bars([]) == []
    ((gross, net),) = fmt.paired_bars([("7", 200, 50)], 100, 100)
    assert (gross.height, net.height, gross.label) == (100, 25, "7")
