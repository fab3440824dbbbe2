"""Per-participant day statements from the rebuilt ledger: for each currency and day, the
opening balance, every movement with its UETR and transaction hash (a netted payment gross,
leg by leg), each net cycle's booking (the sum of the participant's movements in it), the
closing balance."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from settlement.audit.report import major
from settlement.audit.state import Ledger, Movement

DAYS_MAX = 3_660
"""Longest statement period (ten years of days)."""

CSV_COLUMNS = (
    "date",
    "time_utc",
    "currency",
    "entry",
    "uetr",
    "tx_hash",
    "block",
    "log_index",
    "available_change",
    "escrowed_change",
    "available",
    "escrowed",
)


@dataclass(frozen=True, slots=True)
class Period:
    first: date
    last: date

    def __post_init__(self) -> None:
        if self.last < self.first:
            raise ValueError(f"the period ends ({self.last}) before it starts ({self.first})")
        if (self.last - self.first).days >= DAYS_MAX:
            raise ValueError(f"a statement covers at most {DAYS_MAX} days")

    def days(self) -> list[date]:
        return [self.first + timedelta(days=i) for i in range((self.last - self.first).days + 1)]


def _day(ts: int) -> date:
    return datetime.fromtimestamp(ts, UTC).date()


def statement(ledger: Ledger, timestamps: dict[int, int], participant: str, period: Period) -> dict[str, Any]:
    """One participant's statement as a JSON-ready dict (amounts in major units, as strings)."""
    moves: dict[str, list[Movement]] = defaultdict(list)
    for m in ledger.movements:
        if m.participant == participant:
            moves[m.currency].append(m)
    currencies = sorted({c for p, c in ledger.enabled if p == participant} | set(moves))
    p = ledger.participants.get(participant)
    result: dict[str, Any] = {
        "participant": participant,
        "bic": p.bic if p else "",
        "from": period.first.isoformat(),
        "to": period.last.isoformat(),
        "currencies": {},
    }
    for code in currencies:
        decimals = ledger.decimals.get(code, 0)
        available = escrowed = 0
        by_day: dict[date, list[Movement]] = defaultdict(list)
        for m in moves[code]:
            day = _day(timestamps[m.block])
            if day < period.first:
                available, escrowed = available + m.available, escrowed + m.escrowed
            elif day <= period.last:
                by_day[day].append(m)
        days = []
        for day in period.days():
            opening = {"available": major(available, decimals), "escrowed": major(escrowed, decimals)}
            entries = []
            for m in by_day.get(day, []):
                available, escrowed = available + m.available, escrowed + m.escrowed
                entries.append(
                    {
                        "time_utc": datetime.fromtimestamp(timestamps[m.block], UTC).strftime("%H:%M:%S"),
                        "entry": m.kind,
                        "uetr": m.uetr,
                        "tx_hash": m.tx_hash,
                        "block": m.block,
                        "log_index": m.index,
                        "available_change": major(m.available, decimals),
                        "escrowed_change": major(m.escrowed, decimals),
                        "available": major(available, decimals),
                        "escrowed": major(escrowed, decimals),
                    }
                )
            closing = {"available": major(available, decimals), "escrowed": major(escrowed, decimals)}
            cycles = _cycle_bookings(ledger, by_day.get(day, []), decimals)
            days.append(
                {
                    "date": day.isoformat(),
                    "opening": opening,
                    "movements": entries,
                    "cycles": cycles,
                    "closing": closing,
                }
            )
        result["currencies"][code] = {"decimals": decimals, "days": days}
    return result


def _cycle_bookings(ledger: Ledger, moves: list[Movement], decimals: int) -> list[dict[str, Any]]:
    """Per net cycle of these movements, its net booking: what the cycle moved of the balance."""
    net: dict[str, list[int]] = {}
    for m in moves:
        if m.tx_hash in ledger.cycles:
            booked = net.setdefault(m.tx_hash, [m.block, 0, 0])
            booked[1] += m.available
            booked[2] += m.escrowed
    return [
        {
            "cycle": ledger.cycles[tx_hash],
            "tx_hash": tx_hash,
            "block": block,
            "available_change": major(available, decimals),
            "escrowed_change": major(escrowed, decimals),
        }
        for tx_hash, (block, available, escrowed) in net.items()
    ]


def write_statement(doc: dict[str, Any], directory: Path) -> tuple[Path, Path]:
    """``<BIC or address>_<from>_<to>.json`` and ``.csv`` in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    stem = f"{doc['bic'] or doc['participant']}_{doc['from']}_{doc['to']}"
    json_path, csv_path = directory / f"{stem}.json", directory / f"{stem}.csv"
    json_path.write_text(json.dumps(doc, indent=2) + "\n")
    with csv_path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_COLUMNS)
        for code, body in doc["currencies"].items():
            for day in body["days"]:
                o, c = day["opening"], day["closing"]
                writer.writerow(
                    [day["date"], "", code, "opening balance", "", "", "", "", "", "", o["available"], o["escrowed"]]
                )
                for m in day["movements"]:
                    writer.writerow(
                        [
                            day["date"],
                            m["time_utc"],
                            code,
                            m["entry"],
                            m["uetr"],
                            m["tx_hash"],
                            m["block"],
                            m["log_index"],
                            m["available_change"],
                            m["escrowed_change"],
                            m["available"],
                            m["escrowed"],
                        ]
                    )
                for cycle in day["cycles"]:
                    writer.writerow(
                        [
                            day["date"],
                            "",
                            code,
                            f"net cycle {cycle['cycle']} booking",
                            "",
                            cycle["tx_hash"],
                            cycle["block"],
                            "",
                            cycle["available_change"],
                            cycle["escrowed_change"],
                            "",
                            "",
                        ]
                    )
                writer.writerow(
                    [day["date"], "", code, "closing balance", "", "", "", "", "", "", c["available"], c["escrowed"]]
                )
    return json_path, csv_path
