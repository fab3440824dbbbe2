"""Appending to the hash-chained audit log (:mod:`settlement.audit_log`) in the store.

An entry is written in the transaction of the change it records, so the log holds exactly
what was committed. Appends are serialised: on PostgreSQL by a transaction-scoped advisory
lock taken before the head is read; on SQLite a writing transaction holds the database's
write lock from its start. The head (sequence and hash) is then kept in the session for the
rest of the transaction, so the watcher's hundreds of transitions in one transaction read it
once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from node.store.db import Store, insert_rows
from node.store.models import AuditEntry
from settlement.audit_log import GENESIS_HASH, ExportedEntry, as_dict, entry_hash

ADVISORY_LOCK_ID = 0x436F72726964  # "Corrid": any constant every node agrees on
_HEAD = "audit_log.head"
READ_CHUNK = 5_000


def append(session: Session, actor: str, action: str, subject: str, data: Mapping[str, Any]) -> None:
    append_many(session, [(actor, action, subject, data)])


def append_many(session: Session, items: Sequence[tuple[str, str, str, Mapping[str, Any]]]) -> None:
    """Append entries (actor, action, subject, data) in order, written in one statement."""
    if not items:
        return
    nested = session.in_nested_transaction()
    head = None if nested else session.info.get(_HEAD)
    if head is None:
        if session.get_bind().dialect.name == "postgresql" and not session.info.get("audit_log.locked"):
            session.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": ADVISORY_LOCK_ID})
            session.info["audit_log.locked"] = True
        last = session.execute(select(AuditEntry.seq, AuditEntry.hash).order_by(AuditEntry.seq.desc()).limit(1)).first()
        head = (last[0], last[1]) if last else (0, GENESIS_HASH)
    seq, prev = head
    at = dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")
    rows = []
    for actor, action, subject, data in items:
        seq += 1
        clean = {k: v for k, v in data.items() if v is not None and v != ""}
        digest = entry_hash(seq, at, actor, action, subject, clean, prev)
        rows.append(
            {
                "seq": seq,
                "at": at,
                "actor": actor,
                "action": action,
                "subject": subject,
                "data": clean,
                "prev_hash": prev,
                "hash": digest,
            }
        )
        prev = digest
    insert_rows(session, AuditEntry, rows)
    if nested:
        session.info.pop(_HEAD, None)  # a savepoint may roll these back: the next append reads the head again
    else:
        session.info[_HEAD] = (seq, prev)


def entries(store: Store, after_seq: int = 0) -> Iterator[ExportedEntry]:
    """Every entry after ``after_seq``, in sequence order, read in chunks (a short read transaction
    each, so that a long export holds no transaction open)."""
    while True:
        with store.transaction(write=False) as session:
            query = select(AuditEntry).where(AuditEntry.seq > after_seq).order_by(AuditEntry.seq).limit(READ_CHUNK)
            chunk = [ExportedEntry.of(as_dict(e)) for e in session.scalars(query)]
        yield from chunk
        if len(chunk) < READ_CHUNK:
            return
        after_seq = chunk[-1].seq
