"""Assembling a node from its settings: store (migrated), chain, manifest, quote engine, keys."""

from __future__ import annotations

from sqlalchemy import select
from web3 import HTTPProvider, Web3

from fx.config import build_provider, load_pricing
from fx.quotes import QuoteEngine, QuoteSigner
from node.api.deps import Services
from node.config import NodeSettings
from node.store.db import Store
from node.store.models import Bank
from settlement.chain import RPC_TIMEOUT_S
from settlement.eip712 import Domain
from settlement.errors import ConfigurationError
from settlement.keys import DEVNET_CHAIN_ID, load_key
from settlement.manifest import Manifest
from settlement.vault import Vault


def role_key(settings: NodeSettings, manifest: Manifest, role: str) -> str:
    """A role's key: ``CORRIDOR_<ROLE>_KEY``, the keystore, or on the devnet chain the well-known one."""
    devnet = settings.environment == "devnet" and manifest.chain_id == DEVNET_CHAIN_ID
    return load_key(role, keystore=settings.keystore, chain_id=manifest.chain_id, devnet=devnet)


def build_services(settings: NodeSettings) -> Services:
    """Everything the API and the worker share. The chain need not answer yet (``/readyz`` says so)."""
    manifest = Manifest.load(settings.manifest)
    store = Store(settings.store_url)
    store.migrate()
    w3 = Web3(HTTPProvider(settings.rpc_url, request_kwargs={"timeout": RPC_TIMEOUT_S}))
    domain = Domain(manifest.chain_id, manifest.vault)
    signer = QuoteSigner(domain, role_key(settings, manifest, "oracle"))
    lp = settings.liquidity_provider
    if not lp:
        with store.transaction(write=False) as session:
            lp = session.scalar(select(Bank.address).where(Bank.kind == "lp").order_by(Bank.id).limit(1)) or ""
    if not lp:
        raise ConfigurationError(
            "no liquidity provider for quotes: onboard one (POST /v1/admin/banks, kind lp) "
            "or set CORRIDOR_NODE_LIQUIDITY_PROVIDER"
        )
    quotes = QuoteEngine(build_provider(), load_pricing(), lp, signer)
    return Services(settings=settings, store=store, manifest=manifest, domain=domain, quotes=quotes,
                    vault=Vault(w3, manifest))  # fmt: skip
