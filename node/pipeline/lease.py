"""The pipeline's leader: a lease with an epoch (a fencing token), and who may hold it.

Replicas sharing a store elect one worker to send and watch through the ``leases`` row named
``pipeline``. A lease alone is not enough: a leader paused past its lease (a GC pause,
SIGSTOP, a slow disk) wakes up believing it still leads. So every term has an epoch, raised
by one each time the lease changes hands, and every write of the pipeline checks, in its own
database transaction, that the lease still carries the epoch its writer was elected with
(:meth:`Leadership.fence`). A deposed leader's write fails with :class:`Deposed` and rolls
back whole; on PostgreSQL the check takes a share lock on the lease row, so the lease cannot
change hands between the check and the commit, and on SQLite the writer's lock does the same.

A broadcast is checked too (:meth:`Leadership.still_leads`). What a deposed leader could
still send between that check and the send is a transaction already signed and committed
under its valid term: the same bytes the new leader finds in the store and sends itself, never
a second transaction for an instruction (an instruction enters a transaction only in a fenced
write).

The lease names a worker identity that survives a restart (:func:`worker_identity`): a worker
killed and started again finds the lease under its own name and takes it back at once, with a
new epoch, instead of waiting out its predecessor's lease. A worker stopping cleanly releases
its lease, so another takes over at its next round.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from node import metrics
from node.store.db import Store
from node.store.models import Lease
from settlement.errors import CorridorError

log = logging.getLogger("corridor.lease")
PIPELINE = "pipeline"
IDENTITY_SLOTS_MAX = 64
"""Workers one data directory may run at once (each holds one identity slot)."""


class Deposed(CorridorError):
    """This worker's term ended: another worker holds the lease (a fenced write or send was refused)."""


@dataclass(frozen=True, slots=True)
class Term:
    holder: str
    epoch: int


class Leadership:
    """Take, renew, release and check the pipeline lease for one worker identity."""

    def __init__(self, store: Store, identity: str, ttl_s: float) -> None:
        self.store = store
        self.identity = identity
        self.ttl_s = ttl_s
        self.term: Term | None = None
        """The term this process holds, or None when it does not lead."""

    def hold(self) -> tuple[bool, bool]:
        """Renew this process's term, or start one if the lease is free, expired or under this
        identity from an earlier process. Returns (leads, a new term began)."""
        now = dt.datetime.now(dt.UTC)
        expires = now + dt.timedelta(seconds=self.ttl_s)
        ours = self.term
        with self.store.transaction() as session:
            lease = session.get(Lease, PIPELINE, with_for_update=True)
            if lease is None:
                session.add(Lease(name=PIPELINE, holder=self.identity, epoch=1, expires_at=expires))
                term = Term(self.identity, 1)
            elif ours is not None and lease.holder == ours.holder and lease.epoch == ours.epoch:
                lease.expires_at = expires
                term = ours
            elif lease.holder == self.identity or lease.expires_at < now:
                # This identity's previous process (killed: its slot was free for us to take) or a lapsed
                # lease: a new term, under a new epoch that fences whoever held the old one.
                previous = lease.holder
                lease.holder, lease.epoch, lease.expires_at = self.identity, lease.epoch + 1, expires
                term = Term(self.identity, lease.epoch)
                log.info("took the pipeline lease from %s: epoch %d", previous, term.epoch)
            else:
                term = None
        if term is None and ours is not None:
            log.warning("lost the pipeline lease (epoch %d): another worker leads", ours.epoch)
        self._set(term)
        return term is not None, term is not None and term != ours

    def release(self) -> None:
        """On a clean stop: let the lease lapse now, so that another worker takes over at its next round."""
        ours = self.term
        if ours is None:
            return
        with self.store.transaction() as session:
            lease = session.get(Lease, PIPELINE, with_for_update=True)
            if lease is not None and lease.holder == ours.holder and lease.epoch == ours.epoch:
                lease.expires_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        self._set(None)

    def fence(self, session: Session) -> None:
        """Refuse this write transaction unless this process's term is still the lease's.

        On PostgreSQL a share lock holds the lease row until the commit, and a transaction left idle
        for a lease time (its process stopped) is ended by the server, releasing its locks."""
        ours = self.term
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text(f"SET LOCAL idle_in_transaction_session_timeout = {int(self.ttl_s * 1000)}"))
        row = session.execute(
            select(Lease.holder, Lease.epoch).where(Lease.name == PIPELINE).with_for_update(read=True)
        ).one_or_none()
        if ours is None or row is None or (row.holder, row.epoch) != (ours.holder, ours.epoch):
            self._deposed(ours, row)

    def still_leads(self) -> bool:
        """Before a broadcast: is this process's term still the lease's? (Read-only.)"""
        ours = self.term
        with self.store.transaction(write=False) as session:
            row = session.execute(select(Lease.holder, Lease.epoch).where(Lease.name == PIPELINE)).one_or_none()
        if ours is not None and row is not None and (row.holder, row.epoch) == (ours.holder, ours.epoch):
            return True
        metrics.FENCED.labels("broadcast").inc()
        self._set(None)
        return False

    def _deposed(self, ours: Term | None, row: object) -> None:
        metrics.FENCED.labels("write").inc()
        self._set(None)
        raise Deposed(f"this worker's term (epoch {ours.epoch if ours else '-'}) has ended; the lease is {row}")

    def _set(self, term: Term | None) -> None:
        self.term = term
        metrics.IS_LEADER.set(1 if term else 0)
        metrics.LEASE_EPOCH.set(term.epoch if term else 0)


def worker_identity(data_dir: Path, configured: str = "") -> tuple[str, int | None]:
    """A name for this worker that its next process, started after a crash, takes again.

    ``configured`` (``CORRIDOR_NODE_WORKER_ID``) wins. Otherwise the host's name and the lowest
    free slot of ``data_dir``: a slot is held by an exclusive lock on ``worker-N.lock`` that the
    kernel releases when the process dies, so two live workers never share a name and a restarted
    one takes its predecessor's. Returns the name and the locked file's descriptor (kept open for
    the life of the process).
    """
    if configured:
        return configured, None
    data_dir.mkdir(parents=True, exist_ok=True)
    for slot in range(1, IDENTITY_SLOTS_MAX + 1):
        fd = os.open(data_dir / f"worker-{slot}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        place = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:12]
        return f"{socket.gethostname()[:40]}:{place}:{slot}", fd
    raise CorridorError(f"more than {IDENTITY_SLOTS_MAX} workers on data directory {data_dir}")
