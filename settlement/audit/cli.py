"""``corridor audit``: prove every settlement from the chain alone.

Exit status: 0 when every check passed, 1 when one failed (the report says which and why),
2 when the audit could not be made (no endpoint, a manifest for another chain, a bad option).
"""

from __future__ import annotations

import contextlib
import sys
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from settlement.audit import AuditResult, run_audit
from settlement.audit.state import BANK
from settlement.audit.statement import Period, statement, write_statement
from settlement.chain.rpc import RANGE_BLOCKS_MAX
from settlement.chain.rpc import Progress as Advance
from settlement.errors import CorridorError
from settlement.manifest import DEFAULT_PATH

DEFAULT_RPC_URL = "http://127.0.0.1:8545"

# Paragraphs on one line each: the help's renderer wraps them to the terminal.
_HELP = (
    "Prove from the chain alone that every settlement was authorised, priced and booked correctly.\n\n"
    "Rebuilds every balance from the contracts' events and compares it with their state; checks conservation per "
    "currency; for every escrow, settlement and refund, checks the signatures, the roles in force, the conversion, "
    "the rate against the reference rate and band, the deadlines and that each id resolves once; compiles the "
    "sources with the manifest's compiler and settings and compares them with the deployed code. With --against, "
    "also compares the node's export with the chain. With --statements, writes day statements.\n\n"
    "Exit status: 0 every check passed, 1 a check failed, 2 the audit could not be made (no endpoint, a manifest "
    "for another chain, a bad option)."
)


def audit(
    rpc_url: Annotated[
        str, typer.Option(envvar="CORRIDOR_RPC_URL", help="the chain's JSON-RPC endpoint (read only)")
    ] = DEFAULT_RPC_URL,
    manifest: Annotated[
        Path, typer.Option(envvar="CORRIDOR_MANIFEST", help="the deployment manifest (addresses, compiler, settings)")
    ] = DEFAULT_PATH,
    against: Annotated[
        str | None,
        typer.Option(
            help="also compare with the node's transfer export: a JSON-lines file, or the node's URL "
            "(read from GET /v1/audit/transfers/export with --api-key)"
        ),
    ] = None,
    api_key: Annotated[
        str | None, typer.Option(envvar="CORRIDOR_AUDITOR_API_KEY", help="the auditor's API key, for --against URL")
    ] = None,
    last_block: Annotated[
        int | None, typer.Option(help="audit up to this block (default: the chain's head when the audit starts)")
    ] = None,
    fresh_build: Annotated[
        bool, typer.Option(help="compile the sources afresh instead of reusing an identical cached build")
    ] = False,
    range_blocks: Annotated[int, typer.Option(min=1, help="blocks per eth_getLogs call")] = RANGE_BLOCKS_MAX,
    json_output: Annotated[bool, typer.Option("--json", help="print the report as JSON instead of tables")] = False,
    statements: Annotated[
        Path | None,
        typer.Option(help="write a day statement (CSV and JSON) per bank into this directory, for --from..--to"),
    ] = None,
    from_date: Annotated[
        str | None, typer.Option("--from", help="first day of the statements (YYYY-MM-DD, UTC; default today)")
    ] = None,
    to_date: Annotated[str | None, typer.Option("--to", help="last day of the statements (default --from)")] = None,
    bank: Annotated[
        list[str] | None,
        typer.Option(help="statement for this participant only (BIC or address; repeatable; default every bank)"),
    ] = None,
    progress: Annotated[bool, typer.Option(help="show progress bars on stderr")] = True,
) -> None:
    """See ``_HELP`` (the text of ``--help``)."""
    err = Console(stderr=True)
    try:
        period = _period(from_date, to_date) if statements else None
        bars = _progress(err) if progress and not json_output else None

        def track(description: str, total: int) -> Advance:
            if bars is None:
                return lambda _: None
            task = bars.add_task(description, total=max(total, 1))
            return lambda done: bars.advance(task, done)

        with bars or contextlib.nullcontext():
            result = run_audit(rpc_url, manifest, against, api_key, last_block, fresh_build, range_blocks, track=track)
        if statements and period:
            _write_statements(result, statements, period, bank, err)
    except (CorridorError, ValueError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if json_output:
        sys.stdout.write(result.report.to_json())
    else:
        result.report.render(Console())
    raise typer.Exit(0 if result.report.passed else 1)


audit.__doc__ = _HELP


def _period(first: str | None, last: str | None) -> Period:
    try:
        start = date.fromisoformat(first) if first else date.today()
        end = date.fromisoformat(last) if last else start
    except ValueError:
        raise ValueError(f"dates are YYYY-MM-DD, not {first!r} / {last!r}") from None
    return Period(start, end)


def _write_statements(
    result: AuditResult, directory: Path, period: Period, only: list[str] | None, err: Console
) -> None:
    ledger = result.ledger
    wanted = {w.upper() for w in only or []}
    chosen = [
        address
        for address, p in sorted(ledger.participants.items(), key=lambda item: item[1].bic)
        if (p.bic.upper() in wanted or address.upper() in wanted) or (not wanted and p.kind == BANK)
    ]
    missing = wanted - {ledger.participants[a].bic.upper() for a in chosen} - {a.upper() for a in chosen}
    if missing:
        raise ValueError(f"no participant {', '.join(sorted(missing))} on chain")
    for address in chosen:
        json_path, csv_path = write_statement(statement(ledger, result.timestamps, address, period), directory)
        err.print(f"statement: {json_path} and {csv_path.name}")


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    )


def main() -> None:
    """``scripts/audit.py`` and ``python -m settlement.audit.cli``: the same command alone."""
    typer.run(audit)


if __name__ == "__main__":
    main()
