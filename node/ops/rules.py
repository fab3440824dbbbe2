"""The node's side of the risk engine: the rules in force, and the figures the rules need.

The rules live in the store (``risk_rules``, newest first), so every replica applies the
same ones; :class:`RulesInForce` reloads them when a newer version appears. A document is
checked whole before it is stored (:func:`settlement.risk.load_rules`): a bad one is refused
with its line and reason and the rules in force stay as they were.

:class:`Exposures` reads, once per pipeline tick, what the store knows of the banks whose
transfers are being checked (today's outflow and inflow, the last minute's transfers, large
transfers to new beneficiaries, beneficiaries paid before) and counts each transfer the
tick approves, so that later ones in the same tick see it. Only the figures some rule uses
are read.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import and_, func, not_, select
from sqlalchemy.orm import Session

from node.ops import audit_log
from node.store.db import Store
from node.store.models import Bank, RiskRulesVersion, Transfer
from settlement.lifecycle import TransferStatus
from settlement.risk import Exposure, Party, RiskEngine, RiskRules, TransferFacts, load_rules, normalize_name

log = logging.getLogger("corridor.risk")
S = TransferStatus
MINUTE = dt.timedelta(seconds=60)


def beneficiary_key(creditor: str, details: dict[str, Any] | None) -> str:
    """Who is paid: the creditor bank and, when the details name one, the beneficiary's account (or name)."""
    beneficiary = (details or {}).get("beneficiary") or {}
    who = normalize_name(str(beneficiary.get("account") or beneficiary.get("name") or ""))
    return hashlib.sha256(f"{creditor.lower()}|{who}".encode()).hexdigest()


def facts_of(t: Transfer, debtor: Bank, creditor: Bank | None) -> TransferFacts:
    parties = [Party("debtor_bank", debtor.name, debtor.bic, debtor.country)]
    if creditor is not None:
        parties.append(Party("creditor_bank", creditor.name, creditor.bic, creditor.country))
    details = t.details or {}
    for role, key in (("ordering_customer", "ordering_customer"), ("beneficiary", "beneficiary")):
        party = details.get(key)
        if isinstance(party, dict):
            parties.append(
                Party(
                    role,
                    str(party.get("name") or ""),
                    str(party.get("bic") or "").upper(),
                    str(party.get("country") or "").upper(),
                )
            )
    return TransferFacts(
        id=t.id,
        debtor_bic=debtor.bic,
        sell_currency=t.sell_currency,
        sell_amount=t.sell_amount,
        buy_currency=t.buy_currency,
        parties=tuple(parties),
    )


# ====================================================================== rules in force


def store_rules(session: Session, rules: RiskRules, source: str, actor: str) -> RiskRulesVersion:
    """Make checked rules the ones in force (written with an audit entry, in the caller's transaction)."""
    version = RiskRulesVersion(text=rules.text, source=source[:300], actor=actor, created_at=dt.datetime.now(dt.UTC))
    session.add(version)
    session.flush()
    audit_log.append(
        session,
        actor,
        "risk.rules_loaded",
        f"risk_rules:{version.id}",
        {"source": source, "sha256": hashlib.sha256(rules.text.encode()).hexdigest()},
    )
    return version


class RulesInForce:
    """The newest stored rules, loaded once per version; an engine with no rules until one is stored."""

    def __init__(self, store: Store, currencies: Iterable[str], base_dir: Path | None = None) -> None:
        self.store = store
        self.currencies = frozenset(currencies)
        self.base_dir = base_dir
        self.version: int | None = None
        self.engine = RiskEngine()

    def current(self, session: Session) -> RiskEngine:
        """The engine of the newest version; the document is read and parsed only when that changes."""
        newest = session.scalar(select(func.max(RiskRulesVersion.id)))
        if newest is not None and newest != self.version:
            version = session.get(RiskRulesVersion, newest)
            assert version is not None
            source = version.source
            base = Path(source).parent if Path(source).is_file() else self.base_dir
            self.engine = RiskEngine(load_rules(version.text, self.currencies, source=source, base_dir=base))
            self.version = newest
            log.info("risk rules version %s in force (%s)", newest, source)
        return self.engine


# ====================================================================== exposures


class Exposures:
    """What the rules need to know of each debtor bank's day, read once per tick (see the module doc)."""

    def __init__(
        self,
        session: Session,
        rules: RiskRules,
        pending: list[Transfer],
        now: dt.datetime,
        balance: Callable[[str, str], int | None],
    ) -> None:
        self.rules, self.now, self._balance = rules, now, balance
        day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        bank_ids = sorted({t.bank_id for t in pending})
        self._outflow: dict[tuple[int, str], int] = defaultdict(int)
        self._inflow: dict[tuple[str, str], int] = defaultdict(int)
        self._sent: dict[int, list[dt.datetime]] = defaultdict(list)
        self._large_new: dict[int, list[dt.datetime]] = defaultdict(list)
        self._known: set[tuple[int, str]] = set()
        counted = not_(and_(Transfer.status == S.RECEIVED.value, Transfer.batch_id.is_(None)))
        live = Transfer.status.not_in((S.REJECTED.value, S.REFUNDED.value))
        limits = [rules.default, *rules.banks.values()]
        if any(lim.daily_outflow or lim.net_debit_cap for lim in limits):
            for bank_id, ccy, amount in session.execute(
                select(Transfer.bank_id, Transfer.sell_currency, Transfer.sell_amount).where(
                    Transfer.bank_id.in_(bank_ids), Transfer.created_at >= day_start, counted, live
                )
            ):
                self._outflow[(bank_id, ccy)] += amount or 0
        if any(lim.net_debit_cap for lim in limits):
            for creditor, ccy, received in session.execute(
                select(Transfer.creditor, Transfer.buy_currency, Transfer.buy_amount).where(
                    Transfer.status.in_((S.SETTLED.value, S.FINAL.value)), Transfer.updated_at >= day_start
                )
            ):
                self._inflow[(creditor.lower(), ccy)] += received or 0
        velocity = rules.velocity
        if velocity.per_minute_max is not None:
            since = now - MINUTE
            for bank_id, at in session.execute(
                select(Transfer.bank_id, Transfer.created_at).where(
                    Transfer.bank_id.in_(bank_ids), Transfer.created_at >= since, counted, live
                )
            ):
                self._sent[bank_id].append(at)
        if velocity.large_new_max is not None:
            since = now - dt.timedelta(seconds=velocity.window_s)
            for bank_id, at in session.execute(
                select(Transfer.bank_id, Transfer.created_at).where(
                    Transfer.bank_id.in_(bank_ids),
                    Transfer.created_at >= since,
                    Transfer.large_new.is_(True),
                    counted,
                    live,
                )
            ):
                self._large_new[bank_id].append(at)
            keys = sorted({t.beneficiary_key for t in pending if t.beneficiary_key})
            for bank_id, key in session.execute(
                select(Transfer.bank_id, Transfer.beneficiary_key)
                .where(
                    Transfer.bank_id.in_(bank_ids), Transfer.beneficiary_key.in_(keys), Transfer.status == S.FINAL.value
                )
                .distinct()
            ):
                self._known.add((bank_id, key or ""))

    def of(self, t: Transfer, debtor: Bank) -> Exposure:
        ccy = t.sell_currency
        limits = self.rules.limits_for(debtor.bic)
        balance = self._balance(t.debtor, ccy) if ccy in limits.net_debit_cap else None
        velocity = self.rules.velocity
        window = dt.timedelta(seconds=velocity.window_s)
        # Counted only for a rule that reads them: a tick checks a thousand transfers.
        sent = _since(self._sent[t.bank_id], t.created_at - MINUTE) if velocity.per_minute_max is not None else 0
        large_new = (
            _since(self._large_new[t.bank_id], t.created_at - window) if velocity.large_new_max is not None else 0
        )
        return Exposure(
            outflow_today=self._outflow[(t.bank_id, ccy)],
            inflow_today=self._inflow[(debtor.address.lower(), ccy)],
            settlement_balance=balance,
            sent_last_minute=sent,
            large_new_in_window=large_new,
            beneficiary_known=(t.bank_id, t.beneficiary_key or "") in self._known,
        )

    def count(self, t: Transfer, large_new: bool) -> None:
        """A transfer this tick let through: later ones see it."""
        self._outflow[(t.bank_id, t.sell_currency)] += t.sell_amount
        self._sent[t.bank_id].append(t.created_at)
        if large_new:
            self._large_new[t.bank_id].append(t.created_at)


def _since(times: list[dt.datetime], start: dt.datetime) -> int:
    """How many of ``times`` are after ``start``."""
    return sum(1 for at in times if at > start)
