"""The audit's results: checks, their findings, and the report as tables or JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table

FINDINGS_SHOWN_MAX = 25
"""Findings printed per check in the readable report; ``--json`` carries all of them."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing that is wrong: a sentence, and the figures that show it (column → value)."""

    message: str
    fields: dict[str, str] = field(default_factory=dict)


@dataclass
class Check:
    key: str
    title: str
    unit: str
    checked: int = 0
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.findings

    def fail(self, message: str, **fields: object) -> None:
        self.findings.append(Finding(message, {k: str(v) for k, v in fields.items()}))

    def as_dict(self) -> dict[str, Any]:
        return {
            "check": self.key,
            "title": self.title,
            "passed": self.passed,
            "checked": self.checked,
            "unit": self.unit,
            "notes": self.notes,
            "findings": [{"message": f.message, **f.fields} for f in self.findings],
        }


@dataclass
class Report:
    chain_id: int
    vault: str
    first_block: int
    last_block: int
    checks: list[Check]
    facts: dict[str, int] = field(default_factory=dict)
    """Counts worth stating (settlements, refunds, escrows still open, logs read)."""
    elapsed_s: float = 0.0

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def check(self, key: str) -> Check:
        return next(c for c in self.checks if c.key == key)

    def summary(self) -> str:
        failed = [c.key for c in self.checks if not c.passed]
        verdict = "PASS" if not failed else f"FAIL ({', '.join(failed)})"
        facts = ", ".join(f"{v:,} {k}" for k, v in self.facts.items())
        return (
            f"{verdict}: {len(self.checks) - len(failed)}/{len(self.checks)} checks passed on chain "
            f"{self.chain_id}, vault {self.vault}, blocks {self.first_block}..{self.last_block}; {facts}; "
            f"{self.elapsed_s:.1f} s"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "chain_id": self.chain_id,
            "vault": self.vault,
            "blocks": [self.first_block, self.last_block],
            "facts": self.facts,
            "elapsed_s": round(self.elapsed_s, 3),
            "checks": [c.as_dict() for c in self.checks],
            "summary": self.summary(),
        }

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2) + "\n"

    def render(self, console: Console) -> None:
        overview = Table(title="Corridor audit", title_justify="left")
        for column in ("check", "result", "checked", "findings"):
            overview.add_column(column, justify="right" if column in ("checked", "findings") else "left")
        for c in self.checks:
            result = "[green]pass[/]" if c.passed else "[red]FAIL[/]"
            overview.add_row(c.title, result, f"{c.checked:,} {c.unit}", str(len(c.findings)))
        console.print(overview)
        for c in self.checks:
            for note in c.notes:
                console.print(f"[dim]{c.title}: {note}[/]")
            if c.passed:
                continue
            columns = ["message", *dict.fromkeys(k for f in c.findings for k in f.fields)]
            table = Table(title=f"{c.title}: {len(c.findings)} finding(s)", title_justify="left")
            for column in columns:
                table.add_column(column, overflow="fold")
            for f in c.findings[:FINDINGS_SHOWN_MAX]:
                table.add_row(f.message, *(f.fields.get(k, "") for k in columns[1:]))
            console.print(table)
            if len(c.findings) > FINDINGS_SHOWN_MAX:
                console.print(f"… and {len(c.findings) - FINDINGS_SHOWN_MAX} more (all of them with --json)")
        console.print(("[green]" if self.passed else "[red]") + self.summary() + "[/]")


def major(amount: int, decimals: int) -> str:
    """Minor units as a decimal string in major units (integers only)."""
    if decimals == 0:
        return str(amount)
    sign = "-" if amount < 0 else ""
    whole, part = divmod(abs(amount), 10**decimals)
    return f"{sign}{whole}.{part:0{decimals}d}"
