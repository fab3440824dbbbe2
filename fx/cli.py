"""``corridor fx``: mid rates and locked quotes from the command line.

    corridor fx rate USD JPY
    corridor fx quote --sell 1000000.00 USD --buy EUR
    corridor fx quote --sell USD --buy-amount 1000000.00 EUR

Rates come from the providers ``CORRIDOR_FX_*`` configures (see :mod:`fx.config`). A quote
is signed with the oracle's quote key when a deployment manifest is found (it names the
chain and vault the signature is bound to) and the key is available (``CORRIDOR_ORACLE_KEY``,
``--keystore``, or ``--devnet`` on a development chain); otherwise it is shown unsigned, as
an indication.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from fx.config import build_provider, load_pricing
from fx.errors import QuoteError
from fx.quotes import QuoteEngine, QuoteSigner
from fx.rates import Rate, format_rate
from settlement.chain.keys import load_key
from settlement.eip712 import Domain
from settlement.errors import CorridorError
from settlement.manifest import DEFAULT_PATH, Manifest
from settlement.money import format_minor

app = typer.Typer(help="FX rates and quotes.", no_args_is_help=True, add_completion=False)

DEMO_PARTICIPANTS = Path(".data/demo-participants.json")
_NO_LP = "0x0000000000000000000000000000000000000000"

JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON instead of text")]


def _fail(exc: CorridorError) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(2)


def _age(rate: Rate) -> str:
    seconds = (dt.datetime.now(dt.UTC) - rate.as_of).total_seconds()
    if seconds < 120:
        return f"{max(seconds, 0):.0f} s old"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h old"
    return f"{seconds / 86400:.0f} days old"


@app.command()
def rate(
    sell: Annotated[str, typer.Argument(help="currency sold, e.g. USD")],
    buy: Annotated[str, typer.Argument(help="currency bought, e.g. JPY")],
    as_json: JsonOpt = False,
) -> None:
    """The mid rate of SELL/BUY (units of BUY per unit of SELL), with its source and as-of time."""
    try:
        found = build_provider().rate(sell.upper(), buy.upper(), dt.datetime.now(dt.UTC))
    except CorridorError as exc:
        raise _fail(exc) from None
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "sell": found.sell,
                    "buy": found.buy,
                    "rate": str(found.rate),
                    "rate_decimals": 18,
                    "source": found.source,
                    "as_of": found.as_of.isoformat(),
                }
            )
        )
        return
    typer.echo(f"1 {found.sell} = {format_rate(found.rate)} {found.buy}   (mid)")
    typer.echo(f"source:  {found.source}")
    typer.echo(f"as of:   {found.as_of:%Y-%m-%d %H:%M:%S}Z ({_age(found)})")


@app.command()
def quote(
    sell: Annotated[str, typer.Option("--sell", metavar="[AMOUNT] CCY", help="sell AMOUNT of CCY, or sell CCY")],
    sell_currency: Annotated[
        str | None, typer.Argument(metavar="[CCY]", help="the currency after --sell AMOUNT", show_default=False)
    ] = None,
    buy: Annotated[str | None, typer.Option("--buy", metavar="CCY", help="currency bought (sell-fixed)")] = None,
    buy_amount: Annotated[
        tuple[str, str] | None,
        typer.Option("--buy-amount", metavar="AMOUNT CCY", help="the creditor receives exactly AMOUNT of CCY"),
    ] = None,
    lp: Annotated[
        str | None, typer.Option("--lp", help="liquidity provider address (default: pricing, demo LP)")
    ] = None,
    manifest: Annotated[Path, typer.Option(help="deployment manifest: the signature's chain and vault")] = DEFAULT_PATH,
    keystore: Annotated[Path | None, typer.Option(help="directory holding oracle.json")] = None,
    devnet: Annotated[bool, typer.Option("--devnet", help="the well-known oracle key (chain 31337 only)")] = False,
    as_json: JsonOpt = False,
) -> None:
    """A locked quote: sell a fixed amount, or buy one.

    Sell fixed: --sell AMOUNT CCY --buy CCY.  Buy fixed: --sell CCY --buy-amount AMOUNT CCY.

    The sell amount includes the fee; the buy amount is what the creditor receives.
    """
    try:
        engine, note = _engine(lp, manifest, keystore, devnet)
        if buy_amount is not None:
            if sell_currency is not None or buy is not None:
                raise QuoteError("with --buy-amount AMOUNT CCY give only the sell currency: --sell USD")
            locked = engine.quote_buy(sell.upper(), buy_amount[1].upper(), buy_amount[0])
        else:
            if sell_currency is None or buy is None:
                raise QuoteError("give --sell AMOUNT CCY --buy CCY, or --sell CCY --buy-amount AMOUNT CCY")
            locked = engine.quote_sell(sell_currency.upper(), sell, buy.upper())
    except CorridorError as exc:
        raise _fail(exc) from None
    if as_json:
        typer.echo(json.dumps(locked.to_dict() | {"note": note}))
        return
    s, b = locked.sell_currency, locked.buy_currency
    expires = dt.datetime.fromtimestamp(locked.expiry, dt.UTC)
    fee = f"fee {format_minor(locked.fee, s)} {s}, {locked.fee_bps} bps"
    pricing = f"mid {format_rate(locked.mid_rate, 8)} less {locked.spread_bps} bps, {locked.tier}"
    sig = locked.signature
    rows: list[tuple[str, Any]] = [
        ("quote", locked.id),
        ("kind", locked.kind.value.replace("_", " ")),
        (
            "sell",
            f"{format_minor(locked.sell_amount, s)} {s}  ({fee})",
        ),
        ("buy", f"{format_minor(locked.buy_amount, b)} {b}"),
        (
            "rate",
            f"{format_rate(locked.rate, 8)}  ({pricing})",
        ),
        ("provider", locked.liquidity_provider),
        ("expires", f"{expires:%Y-%m-%d %H:%M:%S}Z (in {locked.expiry - int(time.time())} s)"),
        ("source", locked.source),
        ("as of", f"{locked.as_of:%Y-%m-%d %H:%M:%S}Z"),
        (
            "signature",
            "unsigned" if sig is None else f"0x{sig.r.hex()}{sig.vs.hex()} (r, vs)",
        ),
    ]
    for label, value in rows:
        typer.echo(f"{label + ':':<11}{value}")
    if note:
        typer.echo(f"note:      {note}")


def _engine(lp: str | None, manifest_path: Path, keystore: Path | None, devnet: bool) -> tuple[QuoteEngine, str]:
    notes: list[str] = []
    signer: QuoteSigner | None = None
    if manifest_path.exists():
        manifest = Manifest.load(manifest_path)
        key = None
        if os.environ.get("CORRIDOR_ORACLE_KEY") or keystore is not None or devnet:
            key = load_key("oracle", keystore=keystore, chain_id=manifest.chain_id, devnet=devnet)
        if key is not None:
            signer = QuoteSigner(Domain(manifest.chain_id, manifest.vault), key)
        else:
            notes.append("unsigned: no oracle key (set CORRIDOR_ORACLE_KEY, --keystore, or --devnet)")
    else:
        notes.append(f"unsigned: no deployment manifest at {manifest_path} to bind a signature to")
    provider = lp or os.environ.get("CORRIDOR_FX_LIQUIDITY_PROVIDER") or _demo_lp()
    if provider is None:
        provider = _NO_LP
        notes.append("no liquidity provider given (--lp): indicative only")
    engine = QuoteEngine(build_provider(), load_pricing(), provider, signer)
    return engine, "; ".join(notes)


def _demo_lp() -> str | None:
    if not DEMO_PARTICIPANTS.exists():
        return None
    try:
        participants = json.loads(DEMO_PARTICIPANTS.read_text())
    except ValueError:
        return None
    lps = [p["address"] for p in participants if p.get("kind") == "lp"]
    return str(lps[0]) if lps else None
