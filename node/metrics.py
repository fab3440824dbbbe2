"""Prometheus metrics of the node (served at ``/metrics``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

TRANSITIONS = Counter("corridor_transfer_transitions_total", "Transfer status changes", ["status"])
WATCHER_LAG = Gauge("corridor_watcher_lag_blocks", "Blocks between the chain head and the watcher's checkpoint")
REORGS = Counter("corridor_reorgs_total", "Chain reorganisations the watcher followed")
LOGS_MISSED = Counter(
    "corridor_watcher_logs_missed_total", "Mined transactions of this node whose events a log read missed (read again)"
)
TXS_SENT = Counter("corridor_txs_sent_total", "Transactions the relayer signed", ["kind"])
TXS_RESIGNED = Counter(
    "corridor_txs_resigned_total", "Transactions signed again with a fresh nonce because theirs was already used"
)
TXS_ENDED = Counter("corridor_txs_ended_total", "Relayer transactions that failed or were dropped", ["status"])
WORKER_ERRORS = Counter("corridor_worker_errors_total", "Errors of the pipeline loop (retried)", ["kind"])
IS_LEADER = Gauge("corridor_worker_leader", "1 while this process holds the pipeline lease")
LEASE_EPOCH = Gauge(
    "corridor_worker_lease_epoch", "The epoch (fencing token) of this process's term; 0 when it does not lead"
)
FENCED = Counter(
    "corridor_worker_fenced_total",
    "Writes and broadcasts of this process refused because its term had ended (another worker leads)",
    ["action"],
)
TERMS = Counter("corridor_worker_terms_total", "Terms this process began as the pipeline's leader")
RECONCILIATION_RUNS = Counter("corridor_reconciliation_runs_total", "Reconciliation runs by outcome", ["outcome"])
RECONCILIATION_MISMATCHES = Gauge(
    "corridor_reconciliation_mismatches", "Differences between the store and the chain found by the last run"
)
REVIEWS_PENDING = Gauge("corridor_reviews_pending", "Transfers held for the operator's review")
BACKUP_AGE = Gauge(
    "corridor_backup_age_seconds", "Seconds since the newest backup in the backup directory was taken; -1: none"
)
