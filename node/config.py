"""The node's settings, from ``CORRIDOR_NODE_*`` environment variables (pydantic-settings).

Outside the devnet the node refuses to start with a default secret: the operator and
auditor API keys must be set, and the store must not be the embedded default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import AliasChoices, Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from node.chain.finality import Finality
from settlement.errors import ConfigurationError

DEVNET_OPERATOR_API_KEY = "devnet-operator-key"
DEVNET_AUDITOR_API_KEY = "devnet-auditor-key"


class NodeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CORRIDOR_NODE_", extra="forbid")

    environment: Literal["devnet", "production"] = Field(
        "devnet", validation_alias=AliasChoices("CORRIDOR_ENVIRONMENT", "environment")
    )
    data_dir: Path = Path(".data")
    database_url: str = ""
    """SQLAlchemy URL; default: SQLite (WAL) at ``<data_dir>/node.db``. PostgreSQL: ``postgresql+psycopg://...``."""
    rpc_url: str = Field("http://127.0.0.1:8545", validation_alias=AliasChoices("CORRIDOR_RPC_URL", "rpc_url"))
    manifest: Path = Field(Path(".data/manifest.json"), validation_alias=AliasChoices("CORRIDOR_MANIFEST", "manifest"))
    operator_api_key: str = DEVNET_OPERATOR_API_KEY
    auditor_api_key: str = DEVNET_AUDITOR_API_KEY
    deadline_min_s: int = Field(60, ge=0, description="an instruction must leave at least this long to settle")
    deadline_max_s: int = Field(7 * 86_400, ge=60)
    page_size_max: int = Field(200, ge=1, le=1000)
    idempotency_ttl_s: float = Field(
        86_400, ge=60, description="an Idempotency-Key replays its first response for this long, then is forgotten"
    )

    # How often (node/api/ratelimit.py): per replica, before a key is looked up; 0 turns a limit off.
    rate_limit_key_per_s: float = Field(200.0, ge=0, description="requests a second one API key may send (sustained)")
    rate_limit_key_burst: int = Field(400, ge=1, description="requests one API key may send at once")
    auth_failures_per_s: float = Field(
        2.0,
        ge=0,
        description="requests without a valid key one client address may send a second, once its burst is spent",
    )
    auth_failures_burst: int = Field(20, ge=1, description="requests without a valid key one address may send at once")

    # What a request may be (node/api/guard.py): bounded before a route reads it.
    body_max_bytes: int = Field(
        65_536, ge=4_096, description="the largest body of a transfer, a quote and every other POST but the two below"
    )
    batch_body_max_bytes: int = Field(4 * 2**20, ge=65_536, description="the largest body of POST /v1/transfers/batch")
    rules_body_max_bytes: int = Field(2 * 2**20, ge=65_536, description="the largest body of POST /v1/admin/risk/rules")
    body_timeout_s: float = Field(10.0, gt=0, le=300, description="a request's whole body must arrive within this")
    json_depth_max: int = Field(
        32, ge=4, le=256, description="the deepest nesting of arrays and objects a body may have"
    )

    # The pipeline (the leader replica's sender, watcher and webhooks).
    worker: bool = Field(True, description="run the pipeline in this process (one leader among replicas)")
    keystore: Path | None = Field(None, description="directory of relayer.json and oracle.json (else env keys)")
    liquidity_provider: str = Field("", description="quotes' liquidity provider (default: the first LP onboarded)")
    confirmations: int = Field(3, ge=1, le=256, description="blocks deep, its own included, before FINAL")
    finality: Literal["confirmations", "finalized"] = Field(
        "confirmations",
        description="confirmations: FINAL once a settlement is CORRIDOR_NODE_CONFIRMATIONS deep; finalized: once "
        "the chain's finalized block reaches it (Besu/QBFT, post-merge Ethereum: chains that serve the tag)",
    )
    poll_interval_s: float = Field(
        0.25, gt=0, le=60, description="a worker round starts this often (at once after a round that took longer)"
    )
    batch_size_max: int = Field(256, ge=1, le=256, description="instructions per escrow, resolve or cycle transaction")
    settlement: Literal["net", "gross"] = Field(
        "net",
        description="net: transfers wait in a queue and settle in net cycles, as many as the balances fund net "
        "(held transfers still escrow); gross: every transfer escrows, then settles",
    )
    cycle_rounds_max: int = Field(
        1024, ge=1, le=65_536, description="rounds of gridlock resolution per cycle (settlement.netting)"
    )
    queue_scan_max: int = Field(
        2048, ge=1, le=65_536, description="queued transfers a cycle chooses from, oldest first"
    )
    queue_per_bank_max: int = Field(
        10_000, ge=1, description="a bank's transfers not yet settled (RECEIVED and QUEUED); more are refused (429)"
    )
    stuck_after_s: float = Field(20.0, gt=0, description="replace a transaction not mined after this long")
    fee_cap_wei: int = Field(1_000 * 10**9, gt=0)
    lease_ttl_s: float = Field(
        10.0, gt=0, description="the pipeline lease: another worker takes over a leader silent for this long"
    )
    worker_id: str = Field(
        "",
        max_length=64,
        description="the name the worker holds the lease under, kept across its restarts; default: the host's "
        "name and the lowest free slot of the data directory (a restarted worker takes its predecessor's)",
    )
    watcher_lag_max_blocks: int = Field(30, ge=1, description="/readyz fails when the watcher is further behind")
    webhook_attempts_max: int = Field(8, ge=1, le=32)
    webhook_backoff_base_s: float = Field(1.0, gt=0)
    webhook_timeout_s: float = Field(5.0, gt=0, le=60)

    # Backups (node/ops/backups.py): taken by the leading worker.
    backup_dir: Path | None = Field(None, description="where backups go; default <data_dir>/backups")
    backup_interval_s: float = Field(
        0.0, ge=0, description="the leading worker takes a backup this often (0: only `corridor node backup`)"
    )
    backup_retention: int = Field(7, ge=1, le=10_000, description="backups kept; older ones are deleted")

    # The console (node/console/): signed in with the operator's or the auditor's API key.
    console: bool = Field(True, description="serve the operator's and auditor's console at /console")
    console_session_s: int = Field(8 * 3600, ge=60, le=7 * 86400, description="a console session lasts this long")

    # Risk, reconciliation, the operator's key and webhook.
    risk_rules: Path | None = Field(None, description="a rules file loaded at start (refused whole if wrong)")
    reconcile_interval_s: float = Field(60.0, ge=0, description="store vs chain every so often; 0: only on demand")
    operator_key_on_node: bool = Field(
        True, description="load the operator's key: freezes and pauses reach the vault, rejected reviews refund at once"
    )
    operator_webhook_url: str = Field("", description="where reconciliation mismatches are POSTed")
    operator_webhook_secret: str = Field(
        "", description="signs the operator's webhook deliveries: a Standard Webhooks secret, whsec_ and base64"
    )
    webhook_private_destinations: bool | None = Field(
        None,
        description=(
            "let callback URLs reach loopback, link-local and private addresses; default: only on the devnet, "
            "whose banks' receivers run on 127.0.0.1"
        ),
    )

    @model_validator(mode="after")
    def _no_default_secrets_outside_devnet(self) -> Self:
        if self.environment != "devnet":
            defaults = [
                name
                for name, value in (
                    ("CORRIDOR_NODE_OPERATOR_API_KEY", self.operator_api_key),
                    ("CORRIDOR_NODE_AUDITOR_API_KEY", self.auditor_api_key),
                )
                if value in (DEVNET_OPERATOR_API_KEY, DEVNET_AUDITOR_API_KEY) or len(value) < 24
            ]
            if defaults:
                raise ValueError(f"set {', '.join(defaults)} to secrets of at least 24 characters outside the devnet")
        return self

    @property
    def backups(self) -> Path:
        return self.backup_dir or self.data_dir / "backups"

    @property
    def final(self) -> Finality:
        return Finality(self.finality, self.confirmations)

    @property
    def private_webhooks_allowed(self) -> bool:
        if self.webhook_private_destinations is not None:
            return self.webhook_private_destinations
        return self.environment == "devnet"

    @property
    def store_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'node.db'}"


def load_settings(**overrides: object) -> NodeSettings:
    try:
        return NodeSettings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigurationError("; ".join(str(e["msg"]) for e in exc.errors())) from None
