"""The pipeline lease: one leader, epochs that fence a deposed leader's writes and sends, a
restarted worker back at once under its own name, a clean stop that hands over at once."""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, update

from node import metrics
from node.pipeline.lease import PIPELINE, Deposed, Leadership, worker_identity
from node.store.db import Store
from node.store.models import Lease, NetworkState
from tests.stores import BACKENDS, store_url

TTL_S = 30.0


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with store_url(request.param, tmp_path) as url:
        s = Store(url)
        s.migrate()
        yield s
        s.dispose()


def _lapse(store: Store) -> None:
    """The leader went silent for longer than its lease (paused, or its host gone)."""
    with store.transaction() as session:
        session.execute(
            update(Lease).where(Lease.name == PIPELINE).values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(1))
        )


def _write(store: Store, value: bool) -> None:
    with store.transaction() as session:
        session.execute(update(NetworkState).where(NetworkState.id == 1).values(paused=value))


def _paused(store: Store) -> bool:
    with store.transaction(write=False) as session:
        return bool(session.scalar(select(NetworkState.paused).where(NetworkState.id == 1)))


def _fenced(action: str) -> float:
    return float(metrics.FENCED.labels(action)._value.get())


def test_one_leader_and_a_deposed_leaders_write_is_refused_and_rolled_back(store: Store) -> None:
    a, b = Leadership(store, "worker-a", TTL_S), Leadership(store, "worker-b", TTL_S)
    assert a.hold() == (True, True) and a.term is not None and a.term.epoch == 1
    assert b.hold() == (False, False)
    assert a.hold() == (True, False)  # renewed: the same term
    fenced_a = store.fenced(a.fence)
    _write(fenced_a, True)
    assert _paused(store)

    _lapse(store)
    assert b.hold() == (True, True) and b.term is not None and b.term.epoch == 2
    refused = _fenced("write")
    with pytest.raises(Deposed, match="epoch 1"):
        _write(fenced_a, False)
    assert _paused(store)  # nothing of the deposed leader's write was kept
    assert _fenced("write") == refused + 1 and a.term is None
    assert not a.still_leads()
    assert a.hold() == (False, False)  # b's lease is live
    _write(store.fenced(b.fence), False)
    assert not _paused(store)


def test_a_deposed_leader_does_not_broadcast(store: Store) -> None:
    a, b = Leadership(store, "worker-a", TTL_S), Leadership(store, "worker-b", TTL_S)
    a.hold()
    assert a.still_leads()
    _lapse(store)
    b.hold()
    refused = _fenced("broadcast")
    assert not a.still_leads() and _fenced("broadcast") == refused + 1


def test_a_restarted_worker_takes_its_own_lease_back_at_once_under_a_new_epoch(store: Store) -> None:
    before = Leadership(store, "host:1", TTL_S)
    before.hold()
    other = Leadership(store, "host:2", TTL_S)
    assert other.hold() == (False, False)  # the killed worker's lease is still live for anyone else
    after = Leadership(store, "host:1", TTL_S)  # the same worker, started again after kill -9
    assert after.hold() == (True, True) and after.term is not None and after.term.epoch == 2
    with pytest.raises(Deposed):
        _write(store.fenced(before.fence), True)  # had the old process survived, it is fenced


def test_a_clean_stop_releases_the_lease_and_the_next_worker_takes_it(store: Store) -> None:
    a, b = Leadership(store, "worker-a", TTL_S), Leadership(store, "worker-b", TTL_S)
    a.hold()
    assert b.hold() == (False, False)
    a.release()
    assert a.term is None
    assert b.hold() == (True, True) and b.term is not None and b.term.epoch == 2
    a.release()  # not leading: nothing to release, b keeps its lease
    assert b.hold() == (True, False)


def test_the_lease_cannot_change_hands_between_a_fenced_check_and_its_commit(store: Store) -> None:
    if store.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer: the takeover waits for the write lock anyway")
    a, b = Leadership(store, "worker-a", TTL_S), Leadership(store, "worker-b", TTL_S)
    a.hold()
    _lapse(store)
    took: list[float] = []
    with store.fenced(a.fence).transaction() as session:  # a's term still stands: the check passes
        thread = threading.Thread(target=lambda: took.append(time.monotonic()) if b.hold()[0] else None)
        thread.start()
        time.sleep(0.5)
        assert not took  # b waits on the share lock a's transaction holds
        session.execute(update(NetworkState).where(NetworkState.id == 1).values(paused=True))
        committed = time.monotonic()
    thread.join(timeout=10)
    assert took and took[0] >= committed
    assert _paused(store)


def test_worker_names_survive_a_restart_and_two_live_workers_never_share_one(tmp_path: Path) -> None:
    first, fd1 = worker_identity(tmp_path)
    second, fd2 = worker_identity(tmp_path)
    assert first != second and first.endswith(":1") and second.endswith(":2")
    assert fd1 is not None and fd2 is not None
    os.close(fd1)  # the first worker dies: the kernel releases its slot
    again, fd3 = worker_identity(tmp_path)
    assert again == first
    assert worker_identity(tmp_path, "configured-name") == ("configured-name", None)
    for fd in (fd2, fd3):
        assert fd is not None
        os.close(fd)
