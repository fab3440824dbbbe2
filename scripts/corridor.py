"""``corridor``: the command line of banks, operators and auditors.

Each group lives with the package it drives (``fx/cli.py`` for ``corridor fx``); this file
only assembles them.
"""

from __future__ import annotations

import typer

from fx.cli import app as fx_app
from node.bank.cli import app as bank_app
from node.cli import app as node_app
from node.ops.cli import audit_log_app, reconcile, risk_app
from settlement.audit.cli import audit

app = typer.Typer(
    help="Corridor: cross-border settlement of tokenized deposits.", no_args_is_help=True, add_completion=False
)
app.add_typer(fx_app, name="fx")
app.add_typer(node_app, name="node")
app.add_typer(bank_app, name="bank")
app.add_typer(audit_log_app, name="audit-log")
app.add_typer(risk_app, name="risk")
app.command("audit")(audit)
app.command("reconcile")(reconcile)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
