"""Backups of the node's store, restores, and recovery from the chain after a restore.

A backup is consistent: SQLite's online backup API copies the database page by page while
the node runs; PostgreSQL's ``pg_dump`` reads one snapshot. Beside the file goes a manifest
(JSON): when, the store's kind and schema revision, the watcher's checkpoint (block and hash),
how many transfers, the file's size and SHA-256.

The chain is the source of truth for what happened on it. A restored store is older than the
chain, so :func:`recover` brings it forward before the node runs again: it reads the vault's
events after the backup's checkpoint, and every instruction netted or escrowed since then that
the store does not know (accepted after the backup) is rebuilt from the transaction that carried
it (its signed instruction is in the calldata; names and remittance text, never on chain, are
not), matched by UETR and transaction hash; then the watcher applies every event up to the head,
so transfers the store knew move on as the chain says. What the backup lost and the chain never
saw (accepted after the backup, not yet sent) cannot be known here: the banks resubmit those
(their UETRs answer 404), and their Idempotency-Keys make it safe.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from node.chain.finality import Finality
from node.chain.watcher import TOPICS, Watcher, WatcherSettings, event_of
from node.store.db import Store, insert_rows
from node.store.models import Bank, SeenBlock, Transfer, TransferEvent
from node.transitions import Transitions, lock_for_update
from settlement.audit.decoding import decode_call
from settlement.chain.rpc import Rpc
from settlement.eip712 import uetr_of
from settlement.errors import CorridorError
from settlement.lifecycle import ReasonCode, TransferStatus
from settlement.manifest import Manifest

log = logging.getLogger("corridor.backups")
RECOVERED = "recovered from the chain after a restore"
RECOVERY_TICKS_MAX = 1_000_000


class BackupError(CorridorError):
    """A backup or restore that cannot be made (a bad file, a checksum that differs, a store in use)."""


@dataclass(frozen=True, slots=True)
class BackupManifest:
    file: str
    created_at: str
    store: str
    schema_revision: str
    checkpoint_block: int | None
    checkpoint_hash: str | None
    transfers: int
    bytes: int
    sha256: str

    @classmethod
    def load(cls, path: Path) -> BackupManifest:
        try:
            return cls(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError) as exc:
            raise BackupError(f"{path} is not a backup manifest: {exc}") from None


@dataclass
class Recovery:
    checkpoint_block: int | None
    head: int = 0
    recovered: list[str] = field(default_factory=list)
    """UETRs rebuilt from the chain (accepted after the backup, found netted or escrowed on chain)."""
    moved: int = 0
    """Transfers the store knew that moved on after the backup, as the chain says."""
    seconds: float = 0.0


def backup(store: Store, directory: Path, retention: int | None = None) -> BackupManifest:
    """Write a consistent backup of ``store`` and its manifest into ``directory``; keep the newest ``retention``."""
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    stamp = now.strftime("%Y%m%dT%H%M%S%fZ")
    kind = store.engine.dialect.name
    if kind == "sqlite":
        target = directory / f"node-{stamp}.db"
        _sqlite_backup(store, target)
        facts = _facts(Store(f"sqlite:///{target}"))
    else:
        target = directory / f"node-{stamp}.dump"
        facts = _pg_dump(store, target)
    manifest = BackupManifest(
        file=target.name,
        created_at=now.isoformat(),
        store=kind,
        bytes=target.stat().st_size,
        sha256=_sha256(target),
        **facts,
    )
    (directory / f"node-{stamp}.json").write_text(json.dumps(asdict(manifest), indent=1) + "\n")
    if retention is not None:
        for old in sorted(directory.glob("node-*.json"))[:-retention]:
            gone = BackupManifest.load(old)
            (directory / gone.file).unlink(missing_ok=True)
            old.unlink()
    return manifest


def newest(directory: Path) -> BackupManifest | None:
    found = sorted(directory.glob("node-*.json"))
    return BackupManifest.load(found[-1]) if found else None


def restore(manifest_path: Path, store_url: str, force: bool = False) -> BackupManifest:
    """Put the backup ``manifest_path`` names in place as the store at ``store_url`` (the node stopped).

    Refused when the file's checksum differs, or when the target store holds transfers and
    ``force`` is not given."""
    manifest = BackupManifest.load(manifest_path)
    source = manifest_path.parent / manifest.file
    if not source.exists() or _sha256(source) != manifest.sha256:
        raise BackupError(f"{source}: missing, or its SHA-256 is not the manifest's: the backup is damaged")
    url = make_url(store_url)
    if url.get_backend_name() != manifest.store:
        raise BackupError(f"a {manifest.store} backup cannot be restored into a {url.get_backend_name()} store")
    if not force and _holds_transfers(store_url):
        raise BackupError("the target store holds transfers: give --force to replace it (stop the node first)")
    if manifest.store == "sqlite":
        path = Path(url.database or "")
        for suffix in ("-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, path)
    else:
        _pg(["pg_restore", "--clean", "--if-exists", "--no-owner", "--single-transaction"], store_url, source)
    store = Store(store_url)
    try:
        store.migrate()  # a backup from an older release
    finally:
        store.dispose()
    return manifest


def recover(store: Store, rpc: Rpc, manifest: Manifest, finality: Finality) -> Recovery:
    """Bring a restored store forward to the chain's head (see the module doc)."""
    started = time.monotonic()
    with store.transaction(write=False) as session:
        checkpoint = session.scalar(select(func.max(SeenBlock.number)))
    result = Recovery(checkpoint)
    head = rpc.block_number()
    first = manifest.deployment_block if checkpoint is None else checkpoint + 1
    for logs in _log_ranges(rpc, manifest.vault, first, head):
        _rebuild_unknown(store, rpc, logs, result)
    with store.transaction(write=False) as session:
        before = dict(session.execute(select(Transfer.id, Transfer.status)).all())
    watcher = Watcher(
        store, rpc, manifest, WatcherSettings(confirmations=finality.confirmations, finality=finality.rule)
    )
    for _ in range(RECOVERY_TICKS_MAX):
        result.head = watcher.tick()
        with store.transaction(write=False) as session:
            tip = session.scalar(select(func.max(SeenBlock.number)))
        if tip is not None and tip >= result.head:
            break
    with store.transaction(write=False) as session:
        after = dict(session.execute(select(Transfer.id, Transfer.status)).all())
    result.moved = sum(1 for tid, status in before.items() if after.get(tid) != status and tid not in result.recovered)
    result.seconds = time.monotonic() - started
    return result


def _log_ranges(rpc: Rpc, vault: str, first: int, last: int, blocks: int = 1_000) -> Iterator[list[dict[str, Any]]]:
    for start in range(first, last + 1, blocks):
        end = min(start + blocks - 1, last)
        yield rpc.call(
            "eth_getLogs", [{"address": vault, "fromBlock": hex(start), "toBlock": hex(end), "topics": [TOPICS]}]
        )


def _rebuild_unknown(store: Store, rpc: Rpc, logs: list[dict[str, Any]], result: Recovery) -> None:
    """Transfers the store lacks, from the calldata of the transactions that netted or escrowed them."""
    starts = [
        e for e in map(event_of, logs) if e is not None and e.name in ("InstructionNetted", "InstructionEscrowed")
    ]
    if not starts:
        return
    netted = {e.transfer_id for e in starts if e.name == "InstructionNetted"}
    with store.transaction() as session:
        known = lock_for_update(session, sorted({e.transfer_id for e in starts}))
        banks = {b.address.lower(): b.id for b in session.scalars(select(Bank))}
        with Transitions(session) as changes:
            for t in known.values():
                if t.id in netted and t.status == TransferStatus.RECEIVED.value:
                    # Accepted before the backup, netted after it: it had passed the risk check.
                    changes.add(t, TransferStatus.QUEUED, f"netted on chain ({RECOVERED})", code=ReasonCode.QUEUED)
    missing = [e for e in starts if e.transfer_id not in known]
    by_tx: dict[str, list[str]] = {}
    for e in missing:
        by_tx.setdefault(e.tx_hash, []).append(e.transfer_id)
    rows: list[dict[str, Any]] = []
    history: list[dict[str, Any]] = []
    for tx_hash, ids in by_tx.items():
        tx = rpc.call("eth_getTransactionByHash", [tx_hash])
        call = decode_call(bytes.fromhex(str(tx["input"])[2:])) if tx else None
        signed = [*(n.signed for n in call.netted), *call.escrows] if call else []
        for s in signed:
            uetr = uetr_of(s.instruction.id)
            if uetr in ids and s.instruction.debtor.lower() in banks:
                queued = call is not None and call.function == "settleCycle"
                rows.append(_recovered_row(s, banks[s.instruction.debtor.lower()], queued, tx_hash))
                history += _recovered_history(uetr, queued, tx_hash)
                result.recovered.append(uetr)
    with store.transaction() as session:
        insert_rows(session, Transfer, rows)
        insert_rows(session, TransferEvent, history)


def _recovered_row(s: Any, bank_id: int, queued: bool, tx_hash: str) -> dict[str, Any]:
    i, now = s.instruction, dt.datetime.now(dt.UTC)
    status = TransferStatus.QUEUED if queued else TransferStatus.RECEIVED
    return {
        "id": uetr_of(i.id),
        "bank_id": bank_id,
        "nonce": i.nonce,
        "debtor": i.debtor,
        "creditor": i.creditor,
        "sell_currency": i.sell_currency.decode(),
        "sell_amount": i.sell_amount,
        "buy_currency": i.buy_currency.decode(),
        "min_buy_amount": i.min_buy_amount,
        "deadline": i.deadline,
        "details_hash": "0x" + i.details_hash.hex(),
        "signature_r": "0x" + s.signature.r.hex(),
        "signature_vs": "0x" + s.signature.vs.hex(),
        "quote_id": None,
        "status": status.value,
        "status_reason": f"{RECOVERED}: transaction {tx_hash}",
        "status_code": "",
        "details": None,
        "created_at": now,
        "updated_at": now,
    }


def _recovered_history(uetr: str, queued: bool, tx_hash: str) -> list[dict[str, Any]]:
    now = dt.datetime.now(dt.UTC)
    entries = [{"transfer_id": uetr, "status": "RECEIVED", "reason": f"{RECOVERED}: transaction {tx_hash}", "at": now}]
    if queued:
        entries.append(
            {"transfer_id": uetr, "status": "QUEUED", "reason": "netted on chain", "code": "queued", "at": now}
        )
    blank = {"transfer_id": uetr, "at": now, "code": "", "tx_hash": None, "block_number": None, "log_index": None}
    return [blank | e for e in entries]


def _sqlite_backup(store: Store, target: Path) -> None:
    source_path = make_url(store.url).database or ""
    source = sqlite3.connect(source_path, timeout=30)
    destination = sqlite3.connect(target)
    try:
        # In one step: one read transaction, so one snapshot, while the node's writers go on in WAL
        # mode (in several steps, a write between two of them makes SQLite start the copy again).
        with destination:
            source.backup(destination, pages=-1)
    finally:
        destination.close()
        source.close()


def _facts(store: Store) -> dict[str, Any]:
    """What the manifest says of a store: schema revision, checkpoint, transfers."""
    try:
        with store.transaction(write=False) as session:
            revision = session.scalar(text("SELECT version_num FROM alembic_version"))
            tip = session.execute(select(SeenBlock.number, SeenBlock.hash).order_by(SeenBlock.number.desc()).limit(1))
            block, block_hash = tip.first() or (None, None)
            transfers = session.scalar(select(func.count()).select_from(Transfer)) or 0
    finally:
        store.dispose()
    return {
        "schema_revision": str(revision),
        "checkpoint_block": block,
        "checkpoint_hash": block_hash,
        "transfers": transfers,
    }


def _pg_dump(store: Store, target: Path) -> dict[str, Any]:
    """``pg_dump`` of one exported snapshot, and the manifest's facts read in that same snapshot."""
    with store.engine.connect() as connection:
        connection.execute(text("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"))
        snapshot = connection.execute(text("SELECT pg_export_snapshot()")).scalar_one()
        _pg(["pg_dump", "--format=custom", f"--snapshot={snapshot}", f"--file={target}"], store.url, None)
        revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
        tip = connection.execute(text("SELECT number, hash FROM seen_blocks ORDER BY number DESC LIMIT 1")).first()
        transfers = connection.execute(text("SELECT count(*) FROM transfers")).scalar_one()
        connection.execute(text("COMMIT"))
    return {
        "schema_revision": str(revision),
        "checkpoint_block": tip[0] if tip else None,
        "checkpoint_hash": tip[1] if tip else None,
        "transfers": int(transfers),
    }


def _pg(command: list[str], store_url: str, source: Path | None) -> None:
    """Run a PostgreSQL client tool (from PATH, else Debian's versioned directory) against ``store_url``."""
    binary = shutil.which(command[0]) or next(
        (str(p) for p in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{command[0]}"), reverse=True)), None
    )
    if binary is None:
        raise BackupError(f"{command[0]} is not installed (Debian: apt-get install postgresql-client)")
    dsn = make_url(store_url).set(drivername="postgresql").render_as_string(hide_password=False)
    args = [binary, *command[1:], f"--dbname={dsn}", *([str(source)] if source else [])]
    done = subprocess.run(args, capture_output=True, text=True, timeout=3600, check=False)
    if done.returncode != 0:
        raise BackupError(f"{command[0]} failed: {done.stderr.strip()[:500]}")


def _holds_transfers(store_url: str) -> bool:
    store = Store(store_url)
    try:
        with store.transaction(write=False) as session:
            return bool(session.scalar(select(func.count()).select_from(Transfer)))
    except Exception:  # no such database file, or no schema yet: nothing to lose
        return False
    finally:
        store.dispose()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(2**20), b""):
            digest.update(chunk)
    return digest.hexdigest()
