"""Backups taken under load, a store destroyed and restored, and the chain bringing it forward:
every accepted transfer is found again (from the backup, or rebuilt from its transaction) and
ends FINAL once; a damaged backup or a store in use is refused."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from node.ops.backups import RECOVERED, BackupError, BackupManifest, backup, newest, recover, restore
from node.ops.reconcile import reconcile
from node.store.db import Store
from node.store.models import Transfer, TransferEvent
from settlement.chain.rpc import Rpc
from tests.node.conftest import LocalNode
from tests.stores import BACKENDS, store_url

pytestmark = [pytest.mark.devnet, pytest.mark.slow]
ROUTES = (("FATLUS33", "RHNLDEFF", "USD", "EUR"), ("RHNLDEFF", "FATLUS33", "EUR", "USD"))


def _send(node: LocalNode, count: int, into: list[str], offset: int = 0) -> list[str]:
    for n in range(count):
        debtor, creditor, sell, buy = ROUTES[(n + offset) % 2]
        into.append(node.client(debtor).send(creditor, sell, f"{10 + n}.00", buy)["id"])
    return into


def _statuses(url: str) -> dict[str, str]:
    store = Store(url)
    with store.transaction(write=False) as s:
        found = dict(s.execute(select(Transfer.id, Transfer.status)).all())
    store.dispose()
    return found


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_store_restored_from_a_backup_taken_under_load_recovers_from_the_chain(
    node_factory: Callable[..., LocalNode], tmp_path: Path, backend: str
) -> None:
    with store_url(backend, tmp_path) as url:
        node = node_factory(store_url=url)
        before = _send(node, 6, [])
        node.wait_for(lambda: set(_statuses(url).values()) == {"FINAL"}, 60, "the first transfers FINAL")
        during: list[str] = []
        sender = threading.Thread(target=_send, args=(node, 12, during, 1))
        sender.start()
        node.wait_for(lambda: len(during) >= 4, 60, "transfers under way")
        manifest = backup(node.svc.store, tmp_path / "backups")
        sender.join()
        accepted = _send(node, 4, before + during)  # and some certainly after the backup
        node.wait_for(lambda: all(_statuses(url).get(t) == "FINAL" for t in accepted), 90, "every transfer FINAL")
        node.stop()

        assert manifest.store == ("sqlite" if backend == "sqlite" else "postgresql")
        assert 6 + 4 <= manifest.transfers < len(accepted) and manifest.checkpoint_block is not None
        listed = newest(tmp_path / "backups")
        assert listed == manifest and len(manifest.sha256) == 64

        with pytest.raises(BackupError, match="holds transfers"):
            restore(tmp_path / "backups" / manifest.file.replace(Path(manifest.file).suffix, ".json"), url)
        restored = restore(tmp_path / "backups" / manifest.file.replace(Path(manifest.file).suffix, ".json"), url, True)
        assert len(_statuses(url)) == restored.transfers == manifest.transfers

        store = Store(url)
        with Rpc(node.settings.rpc_url) as rpc:
            done = recover(store, rpc, node.chain.network.manifest, node.settings.final)
        statuses = _statuses(url)
        assert set(statuses) == set(accepted) and set(statuses.values()) == {"FINAL"}
        assert len(done.recovered) == len(accepted) - manifest.transfers and done.moved >= 1
        with store.transaction(write=False) as s:
            rebuilt = s.scalars(select(TransferEvent).where(TransferEvent.transfer_id == done.recovered[0])).all()
        assert RECOVERED in rebuilt[0].reason and [e.status for e in rebuilt][-1] == "FINAL"
        assert [e.status for e in rebuilt].count("FINAL") == 1
        outcome = reconcile(store, node.settings.rpc_url, node.chain.network.manifest, node.settings.final, "test")
        assert outcome.differences == []
        store.dispose()


def test_a_damaged_backup_is_refused_and_changes_nothing(
    node_factory: Callable[..., LocalNode], tmp_path: Path
) -> None:
    node = node_factory()
    manifest = backup(node.svc.store, tmp_path / "backups")
    path = next((tmp_path / "backups").glob("*.json"))
    data = tmp_path / "backups" / manifest.file
    damaged = bytearray(data.read_bytes())
    damaged[-1] ^= 0xFF  # flipped, so it differs whatever it was (a SQLite file often ends in zeros)
    data.write_bytes(bytes(damaged))
    target = f"sqlite:///{tmp_path / 'other.db'}"
    with pytest.raises(BackupError, match="damaged"):
        restore(path, target)
    path.write_text(json.dumps({"file": "x"}))
    with pytest.raises(BackupError, match="not a backup manifest"):
        BackupManifest.load(path)


def test_scheduled_backups_show_their_age_in_readyz_and_metrics(node_factory: Callable[..., LocalNode]) -> None:
    node = node_factory(backup_interval_s=2, backup_retention=2)
    backups = node.settings.backups
    node.wait_for(lambda: len(list(backups.glob("*.json"))) >= 2, 30, "two scheduled backups")
    node.wait_for(
        lambda: len(list(backups.glob("*.json"))) == 2 and len(list(backups.glob("*.db"))) == 2, 10, "retention"
    )
    ready = httpx.get(f"{node.url}/readyz", timeout=10).json()["checks"]
    assert ready["backup_recent"] is True and 0 <= ready["backup_age_s"] < 10
    text = httpx.get(f"{node.url}/metrics", timeout=10).text
    age = next(float(line.split()[-1]) for line in text.splitlines() if line.startswith("corridor_backup_age_seconds"))
    assert 0 <= age < 10
