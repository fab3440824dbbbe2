"""What the console's pages show, read from the store and the chain; no HTML here.

Every read is bounded: a page of transfers, the last hour of events, a window of recent blocks.
Reads of the chain go through the one JSON-RPC client and fail soft (a page says the chain did not
answer rather than failing), so the console stays up when the chain is not.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from eth_abi.abi import decode, encode
from eth_utils.abi import function_signature_to_4byte_selector as selector
from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

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
    ReconciliationRun,
    SeenBlock,
    Transfer,
    TransferEvent,
    WebhookDelivery,
)
from settlement.chain.events import Log, decode_log
from settlement.chain.rpc import Rpc
from settlement.errors import ChainError
from settlement.lifecycle import ReviewState, TransferStatus
from settlement.manifest import Manifest

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
BLOCKS_SHOWN = 20
EVENTS_WINDOW_BLOCKS = 2_000
"""How far back the chain page and the cycles chart read the vault's events."""
_ACCOUNT_OF = selector("accountOf(address,bytes3)")


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


def chain_head(rpc: Rpc | None) -> int | None:
    if rpc is None:
        return None
    try:
        return rpc.block_number()
    except ChainError:
        return None


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
    from node.store.models import Quote  # the quote table is read only here

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


# ---------------------------------------------------------------------------------- liquidity


@dataclass(slots=True)
class Position:
    bank: Bank
    currency: str
    available: int | None
    escrowed: int | None
    sent_today: int = 0
    received_today: int = 0
    net_debit_cap: int | None = None
    queued: int = 0
    queued_amount: int = 0

    @property
    def net_debit_today(self) -> int:
        return self.sent_today - self.received_today


@dataclass(frozen=True, slots=True)
class Cycle:
    number: int
    block: int
    instructions: int
    gross: dict[str, int]
    net: dict[str, int]

    def saved(self, currency: str) -> int:
        return self.gross.get(currency, 0) - self.net.get(currency, 0)


@dataclass(slots=True)
class Liquidity:
    positions: list[Position]
    cycles: list[Cycle] = field(default_factory=list)
    chain_error: str = ""

    def cycle_currencies(self) -> list[str]:
        return sorted({code for c in self.cycles for code in c.gross})

    def cycle_series(self, code: str) -> list[tuple[str, int, int]]:
        """Per cycle: its number, what it moved gross in ``code`` and the net debits it booked."""
        return [(str(c.number), c.gross.get(code, 0), c.net.get(code, 0)) for c in self.cycles]

    def gross(self, code: str) -> int:
        return sum(c.gross.get(code, 0) for c in self.cycles)

    def saved(self, code: str) -> int:
        return sum(c.saved(code) for c in self.cycles)


def liquidity(session: Session, rpc: Rpc | None, manifest: Manifest) -> Liquidity:
    """Per bank and currency: the vault's balances, today's net debit against its cap, the queue."""
    banks = list(session.scalars(select(Bank).order_by(Bank.bic)))
    positions = [Position(b, c, None, None) for b in banks for c in b.currencies]
    by_key = {(p.bank.address.lower(), p.currency): p for p in positions}
    by_id = {(p.bank.id, p.currency): p for p in positions}
    day = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    live = Transfer.status.not_in((TransferStatus.REJECTED.value, TransferStatus.REFUNDED.value))
    for bank_id, ccy, amount in session.execute(
        select(Transfer.bank_id, Transfer.sell_currency, func.sum(Transfer.sell_amount))
        .where(Transfer.created_at >= day, live)
        .group_by(Transfer.bank_id, Transfer.sell_currency)
    ):
        if (p := by_id.get((bank_id, ccy))) is not None:
            p.sent_today = int(amount or 0)
    settled = (TransferStatus.SETTLED.value, TransferStatus.FINAL.value)
    for creditor, ccy, received in session.execute(
        select(Transfer.creditor, Transfer.buy_currency, func.sum(Transfer.buy_amount))
        .where(Transfer.status.in_(settled), Transfer.updated_at >= day)
        .group_by(Transfer.creditor, Transfer.buy_currency)
    ):
        if (p := by_key.get((creditor.lower(), ccy))) is not None:
            p.received_today = int(received or 0)
    for bank_id, ccy, n, amount in session.execute(
        select(Transfer.bank_id, Transfer.sell_currency, func.count(), func.sum(Transfer.sell_amount))
        .where(Transfer.status == TransferStatus.QUEUED.value)
        .group_by(Transfer.bank_id, Transfer.sell_currency)
    ):
        if (p := by_id.get((bank_id, ccy))) is not None:
            p.queued, p.queued_amount = int(n), int(amount or 0)
    result = Liquidity(positions)
    if rpc is None:
        result.chain_error = "the node has no chain connection"
        return result
    try:
        head = rpc.block_number()
        calls = [
            (manifest.vault, _ACCOUNT_OF + encode(["address", "bytes3"], [p.bank.address, p.currency.encode()]))
            for p in positions
        ]
        for p, answer in zip(positions, rpc.eth_calls(calls, head), strict=True):
            p.available, p.escrowed, _ = decode(["uint112", "uint112", "uint32"], answer)
        result.cycles = cycles(vault_logs(rpc, manifest, head, EVENTS_WINDOW_BLOCKS))
    except ChainError as exc:
        result.chain_error = str(exc)[:300]
    return result


def cycles(logs: list[Log]) -> list[Cycle]:
    found = []
    for log in logs:
        if log.name != "CycleSettled":
            continue
        codes = list(log.args["currencies"])
        found.append(
            Cycle(
                number=int(log.args["cycle"]),
                block=log.block,
                instructions=int(log.args["instructions"]),
                gross=dict(zip(codes, map(int, log.args["gross"]), strict=True)),
                net=dict(zip(codes, map(int, log.args["net"]), strict=True)),
            )
        )
    return found


# ---------------------------------------------------------------------------------- chain


@dataclass(frozen=True, slots=True)
class Block:
    number: int
    hash: str
    parent_hash: str
    timestamp: dt.datetime
    transactions: int
    gas_used: int


@dataclass(slots=True)
class ChainView:
    head: int | None
    blocks: list[Block]
    events: list[Log]
    error: str = ""


def vault_logs(rpc: Rpc, manifest: Manifest, head: int, window: int) -> list[Log]:
    first = max(manifest.deployment_block, head - window + 1)
    raw = rpc.logs([manifest.vault], first, head, window)
    return sorted((log for log in map(decode_log, raw) if log is not None), key=lambda log: log.position)


def chain_view(rpc: Rpc | None, manifest: Manifest, events_max: int = 100) -> ChainView:
    if rpc is None:
        return ChainView(None, [], [], "the node has no chain connection")
    try:
        head = rpc.block_number()
        numbers = range(head, max(-1, head - BLOCKS_SHOWN), -1)
        raw = rpc.batch([("eth_getBlockByNumber", [hex(n), False]) for n in numbers])
        blocks = [_block(b) for b in raw if b]
        events = vault_logs(rpc, manifest, head, EVENTS_WINDOW_BLOCKS)[-events_max:][::-1]
        return ChainView(head, blocks, events)
    except ChainError as exc:
        return ChainView(None, [], [], str(exc)[:300])


@dataclass(frozen=True, slots=True)
class Tx:
    hash: str
    sender: str
    to: str | None
    nonce: int
    gas_used: int | None
    ok: bool | None


@dataclass(slots=True)
class BlockView:
    block: Block | None
    transactions: list[Tx]
    events: list[Log]
    head: int | None = None
    error: str = ""


def block_view(rpc: Rpc | None, manifest: Manifest, number: int) -> BlockView:
    """One block: its header, its transactions with their outcome, and the vault's events in it."""
    if rpc is None:
        return BlockView(None, [], [], error="the node has no chain connection")
    try:
        head = rpc.block_number()
        raw = rpc.call("eth_getBlockByNumber", [hex(number), True])
        if raw is None:
            return BlockView(None, [], [], head, f"block {number} is not on the chain (its head is {head})")
        receipts = rpc.batch([("eth_getTransactionReceipt", [t["hash"]]) for t in raw["transactions"]])
        txs = [
            Tx(
                hash=t["hash"],
                sender=t["from"],
                to=t.get("to"),
                nonce=int(t["nonce"], 16),
                gas_used=int(r["gasUsed"], 16) if r else None,
                ok=(r["status"] == "0x1") if r else None,
            )
            for t, r in zip(raw["transactions"], receipts, strict=True)
        ]
        logs = rpc.logs([manifest.vault], number, number, 1)
        events = sorted((log for log in map(decode_log, logs) if log is not None), key=lambda log: log.position)
        return BlockView(_block(raw), txs, events, head)
    except ChainError as exc:
        return BlockView(None, [], [], error=str(exc)[:300])


def _block(b: dict[str, Any]) -> Block:
    return Block(
        number=int(b["number"], 16),
        hash=b["hash"],
        parent_hash=b["parentHash"],
        timestamp=dt.datetime.fromtimestamp(int(b["timestamp"], 16), dt.UTC),
        transactions=len(b["transactions"]),
        gas_used=int(b["gasUsed"], 16),
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
