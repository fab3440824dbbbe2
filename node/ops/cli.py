"""The operator's commands on a node's store: ``corridor reconcile``, ``corridor audit-log``,
``corridor risk``. They read the node's settings (``CORRIDOR_NODE_*``, as ``corridor node serve``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from settlement.errors import CorridorError

if TYPE_CHECKING:
    from node.config import NodeSettings
    from node.store.db import Store

audit_log_app = typer.Typer(
    help="The hash-chained audit log of operator actions and transfer state changes.",
    no_args_is_help=True,
    add_completion=False,
)
risk_app = typer.Typer(help="Risk rules.", no_args_is_help=True, add_completion=False)

JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]


def _store() -> tuple[NodeSettings, Store]:
    from node.config import load_settings
    from node.store.db import Store

    settings = load_settings()
    store = Store(settings.store_url)
    store.migrate()
    return settings, store


def reconcile(as_json: JsonOpt = False) -> None:
    """Compare the node's store with the chain now: balances, open escrows and every transfer's state.

    Exit status 0 when they agree, 1 when a mismatch is open (it is recorded, sent to the
    operator's webhook and shown by GET /v1/admin/reconciliation; nothing is corrected), 2 when
    the comparison cannot be made.
    """
    from node.ops.reconcile import open_mismatches
    from node.ops.reconcile import reconcile as run
    from settlement.manifest import Manifest

    try:
        settings, store = _store()
        outcome = run(store, settings.rpc_url, Manifest.load(settings.manifest), settings.final, "operator")
    except (CorridorError, OSError) as exc:
        typer.echo(f"corridor reconcile: {exc}", err=True)
        raise typer.Exit(2) from None
    except Exception as exc:  # the chain or the store not answering
        typer.echo(f"corridor reconcile: {type(exc).__name__}: {exc}", err=True)
        raise typer.Exit(2) from None
    with store.transaction(write=False) as session:
        rows = [(m.kind, m.subject, m.expected, m.found, m.detail, m.first_run_id) for m in open_mismatches(session)]
    if as_json:
        keys = ("kind", "subject", "expected", "found", "detail", "first_run_id")
        listed = [dict(zip(keys, r, strict=True)) for r in rows]
        summary = {"run_id": outcome.run_id, "block": outcome.block, "checked": outcome.checked}
        typer.echo(json.dumps({**summary, "open_mismatches": listed}, indent=2))
    else:
        checked = ", ".join(f"{v} {k}" for k, v in outcome.checked.items())
        typer.echo(f"reconciliation run {outcome.run_id} at block {outcome.block}: checked {checked}")
        for kind, subject, expected, found, detail, first in rows:
            typer.echo(
                f"  MISMATCH {kind:<13} {subject}: expected {expected}, found {found} ({detail}; since run {first})"
            )
        typer.echo(f"{len(rows)} open mismatches ({outcome.opened} new, {outcome.cleared} no longer found)")
    raise typer.Exit(1 if rows else 0)


@audit_log_app.command()
def verify(
    file: Annotated[
        Path | None, typer.Option("--file", help="an export (JSON lines) instead of the node's store")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Prove the log unbroken: every entry's hash, sequence and link to the one before.

    Exit status 0 when it holds (the head hash is printed: keep it to notice a log cut short
    later), 1 naming the first bad entry, 2 when the log cannot be read.
    """
    from settlement.audit_log import ExportedEntry, verify

    try:
        if file is not None:
            entries = []
            for number, line in enumerate(file.read_text().splitlines(), 1):
                if line.strip():
                    try:
                        entries.append(ExportedEntry.of(json.loads(line)))
                    except (ValueError, KeyError, TypeError, RecursionError) as exc:
                        typer.echo(f"corridor audit-log: {file}, line {number}: not an audit entry ({exc})", err=True)
                        raise typer.Exit(2) from None
            verdict = verify(entries)
        else:
            from node.ops import audit_log

            _, store = _store()
            verdict = verify(audit_log.entries(store))
    except (CorridorError, OSError) as exc:
        typer.echo(f"corridor audit-log: {exc}", err=True)
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "ok": verdict.ok,
                    "entries": verdict.entries,
                    "head_hash": verdict.head_hash,
                    "bad_seq": verdict.bad_seq,
                    "reason": verdict.reason,
                },
                indent=2,
            )
        )
    elif verdict.ok:
        typer.echo(f"OK: {verdict.entries} entries, unbroken; head hash {verdict.head_hash}")
    else:
        typer.echo(f"BROKEN at entry {verdict.bad_seq}: {verdict.reason} ({verdict.entries} entries before it hold)")
    raise typer.Exit(0 if verdict.ok else 1)


@audit_log_app.command()
def export(
    out: Annotated[Path | None, typer.Option("--out", help="write here instead of stdout")] = None,
) -> None:
    """Write the log as JSON lines (as GET /v1/audit/log does), for the auditors."""
    from node.ops import audit_log
    from settlement.audit_log import as_dict

    try:
        _, store = _store()
        with out.open("w") if out is not None else open(sys.stdout.fileno(), "w", closefd=False) as sink:
            count = 0
            for e in audit_log.entries(store):
                sink.write(json.dumps(as_dict(e), separators=(",", ":"), sort_keys=True) + "\n")
                count += 1
    except (CorridorError, OSError) as exc:
        typer.echo(f"corridor audit-log: {exc}", err=True)
        raise typer.Exit(2) from None
    if out is not None:
        typer.echo(f"{count} entries written to {out}", err=True)


@risk_app.command()
def check(
    file: Annotated[Path, typer.Argument(help="the rules file (YAML)")],
    currency: Annotated[
        list[str] | None, typer.Option("--currency", help="a settled currency (default: the manifest's)")
    ] = None,
) -> None:
    """Check a rules file as the node would load it: exit 0 and a summary, or 1 with the line and reason."""
    from node.config import load_settings
    from settlement.manifest import Manifest
    from settlement.money import format_minor
    from settlement.risk import RulesError, load_rules_file

    try:
        codes = currency or list(Manifest.load(load_settings().manifest).assets)
        rules = load_rules_file(file, codes)
    except RulesError as exc:
        typer.echo(f"refused: {exc}", err=True)
        raise typer.Exit(1) from None
    except (CorridorError, OSError) as exc:
        typer.echo(f"corridor risk: {exc}", err=True)
        raise typer.Exit(2) from None
    listed = len(rules.screening.sanctions.entries) if rules.screening.sanctions else 0
    review = ", ".join(f"{format_minor(v, c)} {c}" for c, v in rules.review_above.items()) or "nothing"
    typer.echo(
        f"OK: {file}: {len(rules.banks)} banks with their own limits, {listed} sanctions entries, review above {review}"
    )
