"""The node's services (what the API and the worker share), and their assembly from the settings:
store (migrated), chain, manifest, quote engine, keys."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy import select
from web3 import HTTPProvider, Web3

from fx.config import build_provider, load_pricing
from fx.quotes import QuoteEngine, QuoteSigner
from node.config import NodeSettings
from node.ops.rules import store_rules
from node.rate_band import RateBand
from node.store.db import Store
from node.store.models import Bank, RiskRulesVersion
from settlement.chain import RPC_TIMEOUT_S
from settlement.chain.keys import DEVNET_CHAIN_ID, load_key
from settlement.chain.vault import Vault
from settlement.eip712 import Domain
from settlement.errors import ConfigurationError, KeyError_
from settlement.lifecycle import ParticipantKind
from settlement.manifest import Manifest
from settlement.risk import load_rules_file

log = logging.getLogger("corridor.node")


@dataclass
class Services:
    settings: NodeSettings
    store: Store
    manifest: Manifest
    domain: Domain
    quotes: QuoteEngine
    vault: Vault | None = None
    """None when the node runs without a chain connection (tests of the API alone)."""
    rate_band: RateBand = field(init=False)

    def __post_init__(self) -> None:
        self.rate_band = RateBand(self.vault, self.manifest)


def role_key(settings: NodeSettings, manifest: Manifest, role: str) -> str:
    """A role's key: ``CORRIDOR_<ROLE>_KEY``, the keystore, or on the devnet chain the well-known one."""
    devnet = settings.environment == "devnet" and manifest.chain_id == DEVNET_CHAIN_ID
    return load_key(role, keystore=settings.keystore, chain_id=manifest.chain_id, devnet=devnet)


def operator_key(settings: NodeSettings, manifest: Manifest) -> str | None:
    """The operator's key for the worker, or None (not wanted, or not available: logged)."""
    if not settings.operator_key_on_node:
        return None
    try:
        return role_key(settings, manifest, "operator")
    except KeyError_ as exc:
        log.warning(
            "no operator key on this node (%s): freezes and pauses stay off chain, and a transfer the "
            "review rejects is refunded at its deadline",
            exc,
        )
        return None


def load_rules_at_start(settings: NodeSettings, store: Store, manifest: Manifest) -> None:
    """Put ``CORRIDOR_NODE_RISK_RULES`` in force, unless the same document already is; a bad file stops the start."""
    if settings.risk_rules is None:
        return
    rules = load_rules_file(settings.risk_rules, manifest.assets)
    with store.transaction() as session:
        newest = session.scalar(select(RiskRulesVersion.text).order_by(RiskRulesVersion.id.desc()).limit(1))
        if newest != rules.text:
            store_rules(session, rules, str(settings.risk_rules.resolve()), "operator:rules-file")


def build_services(settings: NodeSettings) -> Services:
    """Everything the API and the worker share. The chain need not answer yet (``/readyz`` says so)."""
    manifest = Manifest.load(settings.manifest)
    store = Store(settings.store_url)
    store.migrate()
    load_rules_at_start(settings, store, manifest)
    w3 = Web3(HTTPProvider(settings.rpc_url, request_kwargs={"timeout": RPC_TIMEOUT_S}))
    domain = Domain(manifest.chain_id, manifest.vault)
    signer = QuoteSigner(domain, role_key(settings, manifest, "oracle"))
    lp = settings.liquidity_provider
    if not lp:
        with store.transaction(write=False) as session:
            lps = select(Bank.address).where(Bank.kind == ParticipantKind.LIQUIDITY_PROVIDER).order_by(Bank.id)
            lp = session.scalar(lps.limit(1)) or ""
    if not lp:
        raise ConfigurationError(
            "no liquidity provider for quotes: onboard one (POST /v1/admin/banks, kind lp) "
            "or set CORRIDOR_NODE_LIQUIDITY_PROVIDER"
        )
    quotes = QuoteEngine(build_provider(), load_pricing(), lp, signer)
    return Services(
        settings=settings, store=store, manifest=manifest, domain=domain, quotes=quotes, vault=Vault(w3, manifest)
    )
