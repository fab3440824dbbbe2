"""The node's background work: watcher, sender, pipeline and webhooks, run by one leader.

Replicas sharing a store elect the leader through a lease row (``leases``): the holder
renews it every loop; another replica takes over when it has expired. Every loop is bounded
(one log range, a bounded number of batches, a bounded number of deliveries); an error
(the chain unreachable, the store busy) is logged, counted and retried with a capped
back-off, and nothing is lost: the work is in the store.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
import uuid

from node import metrics
from node.chain.sender import SenderSettings, TxSender
from node.chain.watcher import Watcher, WatcherSettings
from node.idempotency import purge_expired
from node.notify.webhooks import Deliverer, WebhookSettings
from node.ops.reconcile import reconcile
from node.ops.rules import RulesInForce
from node.ops.switches import Switches
from node.pipeline import Pipeline, PipelineSettings
from node.services import Services
from node.store.models import Lease
from settlement.chain import RPC_TIMEOUT_S
from settlement.chain.rpc import Rpc

log = logging.getLogger("corridor.worker")
BACKOFF_MAX_S = 5.0
PURGE_INTERVAL_S = 60.0
"""How often the leader deletes expired idempotency keys."""


class Worker:
    def __init__(self, svc: Services, relayer_key: str, operator_key: str | None = None) -> None:
        """``operator_key`` (optional) carries freezes and pauses to the vault and refunds a transfer the
        review rejected before its deadline; without it those refunds wait for the deadline."""
        assert svc.vault is not None, "the worker needs a chain"
        s = svc.settings
        self.svc = svc
        self.store = svc.store
        sender_settings = SenderSettings(
            confirmations=s.confirmations, stuck_after_s=s.stuck_after_s, fee_cap_wei=s.fee_cap_wei
        )
        self.sender = TxSender(svc.vault.w3, relayer_key, svc.store, sender_settings, chain_id=svc.manifest.chain_id)
        self.operator = (
            TxSender(svc.vault.w3, operator_key, svc.store, sender_settings, chain_id=svc.manifest.chain_id)
            if operator_key
            else None
        )
        self.switches = Switches(svc.store, svc.vault, self.operator) if self.operator else None
        self.rpc = Rpc(s.rpc_url, RPC_TIMEOUT_S)
        self.watcher = Watcher(svc.store, self.rpc, svc.manifest, WatcherSettings(confirmations=s.confirmations))
        self.risk = RulesInForce(svc.store, svc.manifest.assets, s.risk_rules.parent if s.risk_rules else s.data_dir)
        self.pipeline = Pipeline(
            svc.store,
            svc.vault,
            self.sender,
            svc.quotes,
            self.risk,
            PipelineSettings(
                batch_size_max=s.batch_size_max,
                net=s.settlement == "net",
                cycle_rounds_max=s.cycle_rounds_max,
                queue_scan_max=s.queue_scan_max,
            ),
            operator=self.operator,
        )
        self.deliverer = Deliverer(
            svc.store,
            WebhookSettings(
                attempts_max=s.webhook_attempts_max,
                backoff_base_s=s.webhook_backoff_base_s,
                timeout_s=s.webhook_timeout_s,
                operator_url=s.operator_webhook_url,
                operator_secret=s.operator_webhook_secret,
                allow_private=s.private_webhooks_allowed,
            ),
        )
        self._next_reconcile_s = time.monotonic() + s.reconcile_interval_s
        self._next_purge_s = time.monotonic()
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.leader = False
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()

    def step(self) -> None:
        """One round of the pipeline: read the chain, follow transactions, send what is due."""
        head = self.watcher.tick()
        ended = self.sender.poll(head)
        confirmed = self.sender.confirmed
        if self.operator is not None:
            ended += self.operator.poll(head)
            confirmed = confirmed + self.operator.confirmed
        self.watcher.expect(confirmed)
        self.pipeline.release(ended)
        if self.switches is not None:
            self.switches.sync()
        self.pipeline.escrow()
        self.pipeline.net()
        self.pipeline.resolve()

    def hold_lease(self) -> bool:
        now = dt.datetime.now(dt.UTC)
        with self.store.transaction() as session:
            lease = session.get(Lease, "pipeline", with_for_update=True)
            if lease is None:
                session.add(
                    Lease(
                        name="pipeline",
                        holder=self.holder,
                        expires_at=now + dt.timedelta(seconds=self.svc.settings.lease_ttl_s),
                    )
                )
                self.leader = True
            elif lease.holder == self.holder or lease.expires_at < now:
                lease.holder, lease.expires_at = self.holder, now + dt.timedelta(seconds=self.svc.settings.lease_ttl_s)
                self.leader = True
            else:
                self.leader = False
        metrics.IS_LEADER.set(1 if self.leader else 0)
        return self.leader

    def start(self) -> None:
        self._stop.clear()
        self._threads = [
            threading.Thread(target=self._loop, args=("pipeline", self._pipeline_round), daemon=True),
            threading.Thread(target=self._loop, args=("webhooks", self._webhook_round), daemon=True),
        ]
        if self.svc.settings.reconcile_interval_s > 0:
            self._threads.append(
                threading.Thread(target=self._loop, args=("reconcile", self._reconcile_round), daemon=True)
            )
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=10)
        self.deliverer.close()

    def _pipeline_round(self) -> bool:
        if self.hold_lease():
            self.step()
        return False

    def _webhook_round(self) -> bool:
        return self.leader and self.deliverer.tick() > 0

    def _reconcile_round(self) -> bool:
        """Every ``reconcile_interval_s``, on the leader: the store against the chain; and once a
        minute, expired idempotency keys deleted."""
        if self.leader and time.monotonic() >= self._next_purge_s:
            self._next_purge_s = time.monotonic() + PURGE_INTERVAL_S
            with self.store.transaction() as session:
                purge_expired(session, self.svc.settings.idempotency_ttl_s)
        if not self.leader or time.monotonic() < self._next_reconcile_s:
            return False
        self._next_reconcile_s = time.monotonic() + self.svc.settings.reconcile_interval_s
        s = self.svc.settings
        reconcile(self.store, s.rpc_url, self.svc.manifest, s.confirmations, "schedule")
        return False

    def _loop(self, name: str, round_: object) -> None:
        assert callable(round_)
        interval = self.svc.settings.poll_interval_s
        wait = interval
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                busy = round_()
                # Rounds start every ``interval``: one that took longer starts the next at once
                # (under load a pipeline round takes seconds, and a pause after it only added latency).
                wait = 0.0 if busy else max(0.0, interval - (time.monotonic() - started))
            except Exception as exc:  # retried: the work is in the store
                metrics.WORKER_ERRORS.labels(name).inc()
                wait = min(max(wait, interval) * 2, BACKOFF_MAX_S)
                log.warning(
                    "%s round failed (retrying in %.1f s): %s: %s", name, wait, type(exc).__name__, str(exc)[:300]
                )
            self._stop.wait(wait)
