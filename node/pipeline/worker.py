"""The node's background work: watcher, sender, pipeline and webhooks, run by one leader.

Replicas sharing a store elect the leader through the pipeline lease (:mod:`node.pipeline.lease`):
the holder renews it every round; another worker takes over once it has expired, under a new
epoch that fences the old leader's writes and broadcasts. A new term starts clean: the nonce
counter and everything else cached from an earlier term is read again from the chain and the
store. Every loop is bounded (one log range, a bounded number of batches, a bounded number of
deliveries); an error (the chain unreachable, the store busy) is logged, counted and retried
with a capped back-off, and nothing is lost: the work is in the store.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import traceback
from pathlib import Path

from node import metrics
from node.chain.sender import SenderSettings, TxSender
from node.chain.watcher import Watcher, WatcherSettings
from node.idempotency import purge_expired
from node.notify.webhooks import Deliverer, WebhookSettings
from node.ops.backups import backup
from node.ops.reconcile import reconcile
from node.ops.rules import RulesInForce
from node.ops.switches import Switches
from node.pipeline import Pipeline, PipelineSettings
from node.pipeline.lease import Deposed, Leadership, worker_identity
from node.services import Services
from settlement.chain import RPC_TIMEOUT_S
from settlement.chain.rpc import Rpc

log = logging.getLogger("corridor.worker")
BACKOFF_MAX_S = 2.0
PURGE_INTERVAL_S = 60.0
"""How often the leader deletes expired idempotency keys."""


class Worker:
    def __init__(self, svc: Services, relayer_key: str, operator_key: str | None = None) -> None:
        """``operator_key`` (optional) carries freezes and pauses to the vault and refunds a transfer the
        review rejected before its deadline; without it those refunds wait for the deadline."""
        assert svc.vault is not None, "the worker needs a chain"
        s = svc.settings
        self.svc = svc
        self.identity, self._identity_fd = worker_identity(s.data_dir, s.worker_id)
        self.lease = Leadership(svc.store, self.identity, s.lease_ttl_s)
        self.store = svc.store.fenced(self.lease.fence)
        """Every write of the pipeline goes through this view of the store, and is refused once this
        worker's term has ended."""
        sender_settings = SenderSettings(
            confirmations=s.confirmations, stuck_after_s=s.stuck_after_s, fee_cap_wei=s.fee_cap_wei
        )
        chain_id, gate = svc.manifest.chain_id, self.lease.still_leads
        self.sender = TxSender(svc.vault.w3, relayer_key, self.store, sender_settings, chain_id=chain_id, gate=gate)
        self.operator = (
            TxSender(svc.vault.w3, operator_key, self.store, sender_settings, chain_id=chain_id, gate=gate)
            if operator_key
            else None
        )
        self.switches = Switches(self.store, svc.vault, self.operator) if self.operator else None
        self.rpc = Rpc(s.rpc_url, RPC_TIMEOUT_S)
        self.watcher = Watcher(
            self.store, self.rpc, svc.manifest, WatcherSettings(confirmations=s.confirmations, finality=s.finality)
        )
        self.risk = RulesInForce(self.store, svc.manifest.assets, s.risk_rules.parent if s.risk_rules else s.data_dir)
        self.pipeline = Pipeline(
            self.store,
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
            self.store,
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
        self._next_backup_s = time.monotonic()
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

    @property
    def leader(self) -> bool:
        return self.lease.term is not None

    def hold_lease(self) -> bool:
        """Renew or take the lease; on a new term, forget what an earlier term cached."""
        leads, new_term = self.lease.hold()
        if new_term:
            metrics.TERMS.inc()
            for sender in (self.sender, self.operator):
                if sender is not None:
                    sender.new_term()
            self.watcher.new_term()
            self.pipeline.new_term()
            self.risk.version = None
        return leads

    def start(self) -> None:
        self._stop.clear()
        # The third loop runs even with reconciliation off: it also takes backups and deletes
        # expired idempotency keys.
        self._threads = [
            threading.Thread(target=self._loop, args=(name, round_), daemon=True)
            for name, round_ in (
                ("pipeline", self._pipeline_round),
                ("webhooks", self._webhook_round),
                ("reconcile", self._reconcile_round),
            )
        ]
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=10)
        self.deliverer.close()
        if not any(t.is_alive() for t in self._threads):
            self.lease.release()
        if self._identity_fd is not None:
            os.close(self._identity_fd)
            self._identity_fd = None

    def _pipeline_round(self) -> bool:
        if self.hold_lease():
            self.step()
        return False

    def _webhook_round(self) -> bool:
        return self.leader and self.deliverer.tick() > 0

    def _reconcile_round(self) -> bool:
        """Every ``reconcile_interval_s``, on the leader: the store against the chain; every
        ``backup_interval_s`` a backup; and once a minute, expired idempotency keys deleted."""
        s = self.svc.settings
        if self.leader and s.backup_interval_s and time.monotonic() >= self._next_backup_s:
            self._next_backup_s = time.monotonic() + s.backup_interval_s
            manifest = backup(self.svc.store, s.backups, s.backup_retention)
            log.info("backup %s: %s transfers, block %s", manifest.file, manifest.transfers, manifest.checkpoint_block)
        if self.leader and time.monotonic() >= self._next_purge_s:
            self._next_purge_s = time.monotonic() + PURGE_INTERVAL_S
            with self.store.transaction() as session:
                purge_expired(session, self.svc.settings.idempotency_ttl_s)
        if not self.leader or not s.reconcile_interval_s or time.monotonic() < self._next_reconcile_s:
            return False
        self._next_reconcile_s = time.monotonic() + self.svc.settings.reconcile_interval_s
        reconcile(self.store, s.rpc_url, self.svc.manifest, s.final, "schedule")
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
            except Deposed as exc:  # counted by the lease; the next round asks for the lease again
                log.warning("%s round stopped: %s", name, exc)
                wait = interval
            except Exception as exc:  # retried: the work is in the store
                metrics.WORKER_ERRORS.labels(name).inc()
                wait = min(max(wait, interval) * 2, BACKOFF_MAX_S)
                where = traceback.extract_tb(exc.__traceback__)[-1]
                log.warning(
                    "%s round failed (retrying in %.1f s): %s: %s (at %s:%s)",
                    name,
                    wait,
                    type(exc).__name__,
                    str(exc)[:300],
                    Path(where.filename).name,
                    where.lineno,
                )
            self._stop.wait(wait)
