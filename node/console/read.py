"""What the console's pages show, read from the store (the chain's side: :mod:`node.console.chain`,
:mod:`node.console.liquidity`); no HTML here.

Every read is bounded: a page of transfers, the last hour of events, a window of recent blocks.
Reads of the chain go through the one JSON-RPC client and fail soft (a page says the chain did not
answer rather than failing), so the console stays up when the chain is not.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from node.console.chain import chain_head
from node.iso20022 import outbound, pacs002, pacs004
from node.iso20022.schemas import PACS002, PACS004
from node.pipeline.lease import PIPELINE as LEASE_NAME
from node.store.models import (
    AuditEntry,
    Bank,
    ChainTx,
    IsoDocument,
    Lease,
    Mismatch,
    NetworkState,
    Quote,
    ReconciliationRun,
    SeenBlock,
    Transfer,
    TransferEvent,
    WebhookDelivery,
)
from settlement.chain.rpc import Rpc
from settlement.lifecycle import ReviewState, TransferStatus

PAGE_SIZE = 50
"""Transfers per page of the search."""
HOUR = dt.timedelta(hours=1)
BUCKET = dt.timedelta(minutes=5)
"""The chart's bar: twelve to the hour."""
RECENT = dt.timedelta(minutes=5)
"""The window of FINAL/s and submit->FINAL latency."""
FINALS_SAMPLED_MAX = 20_000
"""At most this many of the window's FINAL transfers are read for the latency percentiles."""
RECENT_SHOWN = 10


@dataclass(frozen=True, slots=True)
class Overview:
    by_status: dict[str, int]
    created_per_bucket: list[tuple[dt.datetime, int]]
    final_per_bucket: list[tuple[dt.datetime, int]]
    final_recent: int
    """FINAL in the last few minutes (``RECENT``)."""
    final_per_s: float
    latency_p50_s: float | None
    latency_p99_s: float | None
    chain_head: int | None
    watcher_block: int | None
    confirmations: int
    finality: str
    leader: str | None
    leader_epoch: int | None
    lease_expires_at: dt.datetime | None
    open_mismatches: int
    held_reviews: int
    paused: bool
    paused_on_chain: bool
    at: dt.datetime
    recent: list[Transfer] = field(default_factory=list)
    """The newest transfers, to follow one from the API to FINAL on the page."""
    banks: dict[str, Bank] = field(default_factory=dict)

    @property
    def watcher_lag(self) -> int | None:
        return None if self.chain_head is None or self.watcher_block is None else self.chain_head - self.watcher_block


def _per_bucket(session: Session, column: Any, start: dt.datetime, *where: Any) -> list[tuple[dt.datetime, int]]:
    """Rows per ``BUCKET`` of ``column`` from ``start`` on, counted by the database in one pass."""
    edges = [start + i * BUCKET for i in range(int(HOUR / BUCKET) + 1)]
    sums = [
        func.coalesce(func.sum(case((and_(column >= lo, column < hi), 1), else_=0)), 0)
        for lo, hi in zip(edges, edges[1:], strict=False)
    ]
    row = session.execute(select(*sums).where(column >= start, *where)).one()
    return [(lo, int(n)) for lo, n in zip(edges, row, strict=False)]


def _percentile(sorted_values: list[float], share: float) -> float | None:
    if not sorted_values:
        return None
    return sorted_values[min(len(sorted_values) - 1, int(share * len(sorted_values)))]


def overview(session: Session, rpc: Rpc | None, finality: str, confirmations: int) -> Overview:
    now = dt.datetime.now(dt.UTC)
    start = now - HOUR
    counted = session.execute(select(Transfer.status, func.count()).group_by(Transfer.status))
    by_status: dict[str, int] = {row[0]: row[1] for row in counted}
    final = TransferEvent.status == TransferStatus.FINAL.value
    recent = session.execute(
        select(TransferEvent.at, Transfer.created_at)
        .join(Transfer, Transfer.id == TransferEvent.transfer_id)
        .where(final, TransferEvent.at >= now - RECENT)
        .order_by(TransferEvent.at.desc())
        .limit(FINALS_SAMPLED_MAX)
    ).all()
    latencies = sorted((at - made).total_seconds() for at, made in recent)
    lease = session.get(Lease, LEASE_NAME)
    state = session.get(NetworkState, 1)
    return Overview(
        by_status={s.value: by_status.get(s.value, 0) for s in TransferStatus},
        created_per_bucket=_per_bucket(session, Transfer.created_at, start),
        final_per_bucket=_per_bucket(session, TransferEvent.at, start, final),
        final_recent=len(recent),
        final_per_s=len(recent) / RECENT.total_seconds(),
        latency_p50_s=_percentile(latencies, 0.50),
        latency_p99_s=_percentile(latencies, 0.99),
        chain_head=chain_head(rpc),
        watcher_block=session.scalar(select(func.max(SeenBlock.number))),
        confirmations=confirmations,
        finality=finality,
        leader=lease.holder if lease is not None and lease.expires_at > now else None,
        leader_epoch=lease.epoch if lease is not None else None,
        lease_expires_at=lease.expires_at if lease is not None else None,
        open_mismatches=session.scalar(select(func.count()).select_from(Mismatch).where(Mismatch.cleared_at.is_(None)))
        or 0,
        held_reviews=session.scalar(
            select(func.count()).select_from(Transfer).where(Transfer.review == ReviewState.PENDING.value)
        )
        or 0,
        paused=bool(state and state.paused),
        paused_on_chain=bool(state and state.paused_on_chain),
        at=now,
        recent=list(session.scalars(select(Transfer).order_by(Transfer.created_at.desc()).limit(RECENT_SHOWN))),
        banks=banks_by_address(session),
    )


# ---------------------------------------------------------------------------------- transfers


@dataclass(frozen=True, slots=True)
class Search:
    """The transfer search's filters, as the form sends them (empty: no filter)."""

    uetr: str = ""
    bank: str = ""
    status: str = ""
    pair: str = ""
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    before: dt.datetime | None = None
    """The page: transfers created before this time (the last row of the previous page)."""

    def query(self) -> dict[str, str]:
        """The filters as query parameters, for the next page's link."""
        fields = {"uetr": self.uetr, "bank": self.bank, "status": self.status, "pair": self.pair}
        fields |= {k: v.isoformat() for k, v in (("since", self.since), ("until", self.until)) if v is not None}
        return {k: v for k, v in fields.items() if v}


def search(session: Session, s: Search) -> tuple[list[Transfer], dict[str, Bank]]:
    q = select(Transfer)
    if s.uetr:
        q = q.where(Transfer.id.startswith(s.uetr.lower()))
    if s.bank:
        bank = session.scalar(select(Bank).where(Bank.bic == s.bank.upper()))
        if bank is None:
            return [], {}
        q = q.where(or_(Transfer.bank_id == bank.id, func.lower(Transfer.creditor) == bank.address.lower()))
    if s.status:
        q = q.where(Transfer.status == s.status)
    if s.pair:
        sell, _, buy = s.pair.upper().partition("/")
        q = q.where(and_(Transfer.sell_currency == sell, Transfer.buy_currency == buy))
    if s.since is not None:
        q = q.where(Transfer.created_at >= s.since)
    if s.until is not None:
        q = q.where(Transfer.created_at < s.until)
    if s.before is not None:
        q = q.where(Transfer.created_at < s.before)
    rows = list(session.scalars(q.order_by(Transfer.created_at.desc()).limit(PAGE_SIZE)))
    return rows, banks_by_address(session)


def banks_by_address(session: Session) -> dict[str, Bank]:
    return {b.address.lower(): b for b in session.scalars(select(Bank))}


@dataclass(frozen=True, slots=True)
class IsoReport:
    """One message the node sends the debtor bank about the transfer: a pacs.002 per state, a pacs.004 on refund."""

    message: str
    status: str
    """The ISO transaction status (ACTC, ACSP, ACSC, RJCT, ...) or, for a pacs.004, RTND."""
    at: dt.datetime
    xml: str


@dataclass(frozen=True, slots=True)
class TransferPage:
    transfer: Transfer
    events: list[TransferEvent]
    txs: dict[str, ChainTx]
    """The node's own transactions by hash, for the timeline's chain references."""
    deliveries: list[WebhookDelivery]
    iso: IsoDocument | None
    banks: dict[str, Bank]
    watcher_block: int | None
    quote: dict[str, Any] | None = None
    iso_reports: list[IsoReport] = field(default_factory=list)


def iso_reports(session: Session, t: Transfer, events: list[TransferEvent]) -> list[IsoReport]:
    """The status reports of each step, as the bank's ISO 20022 webhook receives them."""
    found = []
    for e in events:
        step = outbound.step(session, t, e.status, e.code, e.reason, e.at, e.tx_hash, e.block_number)
        found.append(IsoReport(PACS002, pacs002.STATUS[step.status], e.at, pacs002.report(step).decode()))
        if e.status == TransferStatus.REFUNDED.value:
            returned = pacs004.payment_return(outbound.returned(session, t, e.code, e.reason, e.at))
            found.append(IsoReport(PACS004, "RTND", e.at, returned.decode()))
    return found


def transfer_page(session: Session, transfer_id: str) -> TransferPage | None:
    t = session.get(Transfer, transfer_id.lower())
    if t is None:
        return None
    events = list(
        session.scalars(select(TransferEvent).where(TransferEvent.transfer_id == t.id).order_by(TransferEvent.id))
    )
    hashes = {e.tx_hash for e in events if e.tx_hash}
    txs = (
        {tx.tx_hash: tx for tx in session.scalars(select(ChainTx).where(ChainTx.tx_hash.in_(hashes)))} if hashes else {}
    )
    deliveries = list(
        session.scalars(
            select(WebhookDelivery).where(WebhookDelivery.transfer_id == t.id).order_by(WebhookDelivery.created_at)
        )
    )
    quote = session.get(Quote, t.quote_id) if t.quote_id else None
    return TransferPage(
        transfer=t,
        events=events,
        txs=txs,
        deliveries=deliveries,
        iso=session.get(IsoDocument, t.id),
        banks=banks_by_address(session),
        watcher_block=session.scalar(select(func.max(SeenBlock.number))),
        quote=quote.body if quote is not None else None,
        iso_reports=iso_reports(session, t, events),
    )


# ---------------------------------------------------------------------------------- audit


@dataclass(frozen=True, slots=True)
class AuditView:
    entries: list[AuditEntry]
    head_seq: int
    head_hash: str
    last_run: ReconciliationRun | None
    mismatches: list[Mismatch]


def audit_view(session: Session, entries_max: int = 100) -> AuditView:
    entries = list(session.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(entries_max)))
    head = entries[0] if entries else None
    return AuditView(
        entries=entries,
        head_seq=head.seq if head else 0,
        head_hash=head.hash if head else "",
        last_run=session.scalars(select(ReconciliationRun).order_by(ReconciliationRun.id.desc()).limit(1)).first(),
        mismatches=list(
            session.scalars(
                select(Mismatch).where(Mismatch.cleared_at.is_(None)).order_by(Mismatch.last_seen_at.desc())
            )
        ),
    )


def held(session: Session) -> list[Transfer]:
    return list(
        session.scalars(
            select(Transfer).where(Transfer.review == ReviewState.PENDING.value).order_by(Transfer.created_at)
        )
    )
