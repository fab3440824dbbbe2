"""``corridor fx``: the commands print figures with source and as-of, and fail in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scripts.corridor import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CORRIDOR_FX_PROVIDERS", "ecb")
    monkeypatch.delenv("CORRIDOR_ORACLE_KEY", raising=False)
    monkeypatch.chdir(tmp_path)  # no manifest, no demo participants here


def test_rate_prints_the_mid_with_source_and_as_of() -> None:
    result = runner.invoke(app, ["fx", "rate", "USD", "JPY"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("1 USD = ") and lines[0].endswith(" JPY   (mid)")
    assert lines[1].startswith("source:  ECB reference rate, fixing of ")
    assert lines[2].startswith("as of:   ")


def test_rate_json() -> None:
    data = json.loads(runner.invoke(app, ["fx", "rate", "GBP", "SGD", "--json"]).output)
    assert data["sell"] == "GBP" and int(data["rate"]) > 10**18 and data["rate_decimals"] == 18


def test_quote_sell_fixed() -> None:
    result = runner.invoke(app, ["fx", "quote", "--sell", "1000000.00", "USD", "--buy", "EUR"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "kind:      sell fixed" in out and "sell:      1000000.00 USD" in out
    assert "source:    ECB reference rate" in out and "signature: unsigned" in out
    assert "no deployment manifest" in out


def test_quote_buy_fixed_json() -> None:
    result = runner.invoke(app, ["fx", "quote", "--sell", "USD", "--buy-amount", "1000000", "JPY", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["kind"] == "buy_fixed" and data["buy_amount_minor"] == 1_000_000


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["fx", "rate", "USD", "XYZ"], "XYZ is not a currency Corridor knows"),
        (["fx", "rate", "USD", "USD"], "two different currencies"),
        (["fx", "quote", "--sell", "1.001", "USD", "--buy", "EUR"], "at most 2 are allowed"),
        (["fx", "quote", "--sell", "-1", "USD", "--buy", "EUR"], "must be positive"),
        (["fx", "quote", "--sell", "USD", "--buy", "EUR"], "give --sell AMOUNT CCY --buy CCY"),
        (["fx", "quote", "--sell", "USD", "--buy-amount", "5", "EUR", "--buy", "EUR"], "give only the sell currency"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert message in result.output and result.output.startswith("error: ")
