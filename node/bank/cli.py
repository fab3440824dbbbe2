"""``corridor bank``: a bank's command line to the node (send a transfer, follow it).

Credentials: ``--url``, ``--api-key`` and ``--key`` (or ``CORRIDOR_BANK_URL``,
``CORRIDOR_BANK_API_KEY``, ``CORRIDOR_BANK_KEY``); on the demo network, ``--as BIC`` takes
them from the demo credentials file that ``./run up`` wrote.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from node.bank.client import BankClient, NodeError
from settlement.errors import CorridorError
from settlement.money import format_minor

app = typer.Typer(help="Send transfers and follow them, as a bank.", no_args_is_help=True, add_completion=False)

DEMO_BANKS = Path(".data/demo-banks.json")
DEFAULT_URL = "http://127.0.0.1:8000"

AsOpt = Annotated[str | None, typer.Option("--as", help="act as this demo bank (BIC), credentials from .data")]
UrlOpt = Annotated[str | None, typer.Option(help="the node's URL (CORRIDOR_BANK_URL; default " + DEFAULT_URL + ")")]
ApiKeyOpt = Annotated[str | None, typer.Option(help="your API key (CORRIDOR_BANK_API_KEY)")]
KeyOpt = Annotated[str | None, typer.Option("--key", help="your signing key, hex (CORRIDOR_BANK_KEY)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON instead of text")]


def _client(
    as_bic: str | None, url: str | None, api_key: str | None, key: str | None, signing: bool = True
) -> BankClient:
    url = url or os.environ.get("CORRIDOR_BANK_URL")
    api_key = api_key or os.environ.get("CORRIDOR_BANK_API_KEY")
    key = key or os.environ.get("CORRIDOR_BANK_KEY")
    if as_bic:
        if not DEMO_BANKS.exists():
            raise CorridorError(f"--as needs the demo credentials in {DEMO_BANKS}: run ./run up first")
        banks = {b["bic"]: b for b in json.loads(DEMO_BANKS.read_text())["banks"]}
        if as_bic.upper() not in banks:
            raise CorridorError(f"no demo bank {as_bic}; demo banks: {', '.join(sorted(banks))}")
        bank = banks[as_bic.upper()]
        url, api_key, key = url or bank["url"], api_key or bank["api_key"], key or bank["private_key"]
    if not api_key or (signing and not key):
        raise CorridorError("give --api-key and --key (or CORRIDOR_BANK_API_KEY, CORRIDOR_BANK_KEY, or --as BIC)")
    return BankClient(url or DEFAULT_URL, api_key, key)


def _fail(exc: Exception) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(2)


def _show(t: dict[str, Any]) -> None:
    typer.echo(f"transfer  {t['id']}")
    typer.echo(f"status    {t['status']}" + (f" ({t['status_code']})" if t.get("status_code") else ""))
    typer.echo(f"reason    {t['status_reason']}")
    sell, buy = t["sell_currency"], t["buy_currency"]
    typer.echo(f"sell      {format_minor(t['sell_amount'], sell)} {sell}")
    bought = t["buy_amount"] if t["buy_amount"] is not None else t["min_buy_amount"]
    fee = f", fee {format_minor(t['fee'], sell)} {sell}" if t.get("fee") is not None else ""
    prefix = "" if t["buy_amount"] is not None else "at least "
    typer.echo(f"buy       {prefix}{format_minor(bought, buy)} {buy}{fee}")
    if t.get("review"):
        r = t["review"]
        typer.echo(f"review    {r['state']} ({r['code']}): {r['reason']}")
    for h in t["history"]:
        chain = h.get("chain") or {}
        where = (
            f"  tx {chain['tx_hash']} block {chain['block_number']} ({chain['confirmations']} conf.)" if chain else ""
        )
        typer.echo(f"  {h['at'][:19]}  {h['status']:<9} {h['reason']}{where}")


@app.command()
def send(
    to: Annotated[str, typer.Option("--to", help="the creditor bank's BIC (or address)")],
    sell: Annotated[tuple[str, str], typer.Option("--sell", metavar="AMOUNT CCY", help="e.g. --sell 250000.00 USD")],
    buy: Annotated[str, typer.Option("--buy", metavar="CCY", help="the currency the creditor receives")],
    min_buy: Annotated[
        str | None, typer.Option("--min-buy", metavar="AMOUNT", help="least the creditor may get (major units)")
    ] = None,
    quote: Annotated[
        bool, typer.Option("--quote", help="lock a quote first; settle at it, its amount the minimum")
    ] = False,
    deadline_s: Annotated[int, typer.Option(help="seconds the transfer may take before it is refunded")] = 3600,
    beneficiary: Annotated[
        str | None, typer.Option(help="the beneficiary's name (screened; only its hash on chain)")
    ] = None,
    account: Annotated[str | None, typer.Option(help="the beneficiary's account (IBAN or number)")] = None,
    country: Annotated[str | None, typer.Option(help="the beneficiary's country (ISO 3166 alpha-2)")] = None,
    remittance: Annotated[str | None, typer.Option(help="remittance information for the beneficiary")] = None,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="follow the transfer to FINAL")] = True,
    timeout_s: Annotated[float, typer.Option(help="how long --wait waits")] = 120.0,
    as_bic: AsOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Sign an instruction with your key and submit it; by default wait until it is FINAL."""
    amount, ccy = sell
    try:
        client = _client(as_bic, url, api_key, key)
        quote_id, minimum = None, min_buy or 0
        if quote:
            q = client.quote(ccy.upper(), buy.upper(), sell_amount=amount)
            quote_id, minimum = q["id"], int(q["buy_amount_minor"])
            if not as_json:
                typer.echo(f"quote     {q['rate_decimal']} {ccy}/{buy}: buys {q['buy_amount']} {buy}, fee {q['fee']}")
        party = {k: v for k, v in (("name", beneficiary), ("account", account), ("country", country)) if v}
        details: dict[str, object] | None = {"beneficiary": party} if party else None
        if remittance:
            details = {**(details or {}), "remittance": remittance}
        t = client.send(
            to,
            ccy.upper(),
            amount,
            buy.upper(),
            min_buy_amount=minimum,
            deadline_s=deadline_s,
            quote_id=quote_id,
            details=details,
        )
        if wait:
            t = client.wait(t["id"], timeout_s=timeout_s)
    except (CorridorError, TimeoutError, OSError) as exc:
        raise _fail(exc) from None
    if as_json:
        typer.echo(json.dumps(t, indent=2))
    else:
        _show(t)


@app.command()
def status(
    uetr: Annotated[str, typer.Argument(help="the transfer's UETR")],
    as_bic: AsOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show a transfer: its status, history and on-chain references."""
    try:
        t = _client(as_bic, url, api_key, key, signing=False).transfer(uetr)
    except (NodeError, CorridorError, OSError) as exc:
        raise _fail(exc) from None
    if as_json:
        typer.echo(json.dumps(t, indent=2))
    else:
        _show(t)


iso = typer.Typer(help="Payments as ISO 20022 messages: pacs.008 in; pacs.002, pacs.004, camt.054, camt.053 out.")
app.add_typer(iso, name="iso", no_args_is_help=True)


@iso.command("send")
def iso_send(
    document: Annotated[Path, typer.Argument(help="a pacs.008 (.001.08 to .13) XML file, one transfer")],
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="follow the transfer to FINAL")] = False,
    timeout_s: Annotated[float, typer.Option(help="how long --wait waits")] = 120.0,
    as_bic: AsOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    key: KeyOpt = None,
) -> None:
    """Sign the instruction the document maps to with your key and submit the document; prints its
    latest pacs.002 (after FINAL with --wait). Sending the same file again is the same transfer."""
    try:
        client = _client(as_bic, url, api_key, key)
        t = client.iso_send(document.read_bytes())
        if wait:
            client.wait(t["id"], timeout_s=timeout_s)
        typer.echo(client.iso_status(t["id"]).decode())
    except (CorridorError, TimeoutError, OSError) as exc:
        raise _fail(exc) from None


@iso.command("status")
def iso_status(
    uetr: Annotated[str, typer.Argument(help="the transfer's UETR")],
    message: Annotated[
        str, typer.Option(help="pacs.002 (latest status), pacs.004 (a return) or camt.054 (a booking)")
    ] = "pacs.002",
    as_bic: AsOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    key: KeyOpt = None,
) -> None:
    """Print a transfer's ISO 20022 message: its latest pacs.002 by default."""
    readers = {"pacs.002": "iso_status", "pacs.004": "iso_return", "camt.054": "iso_notification"}
    if message not in readers:
        raise _fail(CorridorError(f"--message is one of {', '.join(readers)}"))
    try:
        client = _client(as_bic, url, api_key, key, signing=False)
        typer.echo(getattr(client, readers[message])(uetr).decode())
    except (CorridorError, OSError) as exc:
        raise _fail(exc) from None


@iso.command("statement")
def iso_statement(
    currency: Annotated[str, typer.Option("--currency", help="ISO 4217 code of a currency your bank holds")],
    day: Annotated[str | None, typer.Option("--date", help="the day, YYYY-MM-DD (UTC); default today")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="write the camt.053 here")] = None,
    as_bic: AsOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    key: KeyOpt = None,
) -> None:
    """Your end-of-day camt.053 for one currency, built by the node from the chain."""
    try:
        xml = _client(as_bic, url, api_key, key, signing=False).iso_statement(currency.upper(), day)
    except (CorridorError, OSError) as exc:
        raise _fail(exc) from None
    if output is None:
        typer.echo(xml.decode())
    else:
        output.write_bytes(xml)
        typer.echo(f"camt.053 written to {output}")
