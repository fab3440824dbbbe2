"""How the console writes figures: amounts per currency exponent, times in UTC, short hashes, charts.

Registered as Jinja filters and globals by :mod:`node.console.routes`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from markupsafe import Markup, escape

from settlement.money import currency, format_minor

STATE_CLASSES = {
    "RECEIVED": "st-received",
    "QUEUED": "st-queued",
    "ESCROWED": "st-escrowed",
    "SETTLED": "st-settled",
    "FINAL": "st-final",
    "REJECTED": "st-rejected",
    "REFUNDED": "st-refunded",
    "FAILED": "st-failed",
}


def amount(minor: int | None, code: str) -> str:
    """``123456`` USD -> ``1,234.56 USD``; JPY has no decimals (its ISO 4217 exponent is 0)."""
    if minor is None:
        return "—"
    text = format_minor(minor, code)
    sign = "-" if text.startswith("-") else ""
    whole, _, frac = text.lstrip("-").partition(".")
    return f"{sign}{int(whole):,}{'.' + frac if frac else ''} {code}"


def exponent(code: str) -> int:
    return currency(code).exponent


def rate(value: int | None) -> str:
    """An 18-decimal fixed-point rate, to 8 significant decimals."""
    if value is None:
        return "—"
    whole, frac = divmod(value, 10**18)
    return f"{whole}.{frac:018d}"[: len(str(whole)) + 9]


def utc(at: dt.datetime | None) -> Markup:
    """A time in UTC, machine-readable for the page's script, which adds the reader's local offset."""
    if at is None:
        return Markup("—")
    if at.tzinfo is None:
        at = at.replace(tzinfo=dt.UTC)
    at = at.astimezone(dt.UTC)
    iso = at.isoformat(timespec="seconds")
    return Markup('<time datetime="{}">{} UTC</time>').format(iso, at.strftime("%Y-%m-%d %H:%M:%S"))


def unix(seconds: int | None) -> Markup:
    """A Unix time (a deadline, a quote's expiry) as a UTC time."""
    return utc(None if seconds is None else dt.datetime.fromtimestamp(seconds, dt.UTC))


def short(value: str | None, keep: int = 6) -> Markup:
    """A long hash as ``0x1234…abcd``, the whole of it on hover and behind a copy button."""
    if not value:
        return Markup("—")
    text = str(value)
    shown = text if len(text) <= 2 * keep + 3 else f"{text[: keep + 2]}…{text[-keep:]}"
    return Markup(
        '<span class="hash" title="{full}"><code>{shown}</code>'
        '<button type="button" class="copy" data-copy="{full}" aria-label="copy {full}">copy</button></span>'
    ).format(full=text, shown=shown)


def state(status: str) -> Markup:
    return Markup('<span class="state {}">{}</span>').format(STATE_CLASSES.get(status, ""), escape(status))


def seconds(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    value: int


def bars(series: list[tuple[dt.datetime, int]], width: int = 480, height: int = 120) -> list[Bar]:
    """An SVG bar chart's rectangles, drawn on the server (no chart script to fetch or trust)."""
    if not series:
        return []
    top = max((v for _, v in series), default=0) or 1
    step = width / len(series)
    return [
        Bar(
            x=round(i * step + 1, 1),
            y=round(height - v * height / top, 1),
            width=round(step - 2, 1),
            height=round(v * height / top, 1),
            label=at.astimezone(dt.UTC).strftime("%H:%M"),
            value=v,
        )
        for i, (at, v) in enumerate(series)
    ]


def paired_bars(series: list[tuple[str, int, int]], width: int = 480, height: int = 120) -> list[tuple[Bar, Bar]]:
    """Two bars per point, side by side on one scale (a cycle's gross and net)."""
    if not series:
        return []
    top = max(max(a, b) for _, a, b in series) or 1
    step = width / len(series)
    half = step / 2

    def bar(i: int, offset: float, label: str, v: int) -> Bar:
        h = round(v * height / top, 1)
        return Bar(round(i * step + offset + 1, 1), round(height - h, 1), round(max(half - 2, 0.5), 1), h, label, v)

    return [(bar(i, 0, label, a), bar(i, half, label, b)) for i, (label, a, b) in enumerate(series)]
