"""A development network: contracts deployed with the well-known devnet keys, demo banks and
liquidity providers onboarded and funded, reference rates published.

Used by the benchmarks, the tests and the bring-up command. Development chains only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from eth_account import Account
from web3 import Web3

from fx.config import build_provider
from fx.publisher import publish_reference_rates as publish
from fx.rates import RateProvider
from settlement.chain import Sender
from settlement.chain.deployment import DEFAULT_CURRENCIES, RoleAddresses, deploy, fund, onboard
from settlement.chain.keys import ROLES, devnet_key, load_key
from settlement.chain.vault import Vault
from settlement.lifecycle import ParticipantKind  # noqa: E402
from settlement.manifest import Manifest


@dataclass(frozen=True)
class DemoParticipant:
    name: str
    kind: str
    bic: str
    country: str
    currencies: tuple[str, ...]
    key: str

    @property
    def address(self) -> str:
        return str(Account.from_key(self.key).address)


# Four banks in four countries and two liquidity providers, each on its own devnet key.
_DEMO = (
    ("First Atlantic Bank", "bank", "FATLUS33", "US", ("USD", "EUR", "GBP", "JPY")),
    ("Rheinland Bank", "bank", "RHNLDEFF", "DE", ("EUR", "USD", "GBP", "CHF")),
    ("Thames Merchant Bank", "bank", "THMSGB2L", "GB", ("GBP", "USD", "EUR", "SGD")),
    ("Lion City Bank", "bank", "LNCTSGSG", "SG", ("SGD", "USD", "CNY", "JPY")),
    ("Meridian Liquidity", "lp", "MRDNGB2LXXX", "GB", DEFAULT_CURRENCIES),
    ("Pacific FX Partners", "lp", "PCFXSGSGXXX", "SG", DEFAULT_CURRENCIES),
)

_BALANCE_MAJOR = {"bank": 10_000_000, "lp": 1_000_000_000}
_JPY_FACTOR = 150  # fund yen-like currencies with a comparable value


@dataclass
class Network:
    w3: Web3
    manifest: Manifest
    keys: dict[str, str]
    participants: list[DemoParticipant] = field(default_factory=list)

    @property
    def vault(self) -> Vault:
        return Vault(self.w3, self.manifest)

    def sender(self, role_or_key: str) -> Sender:
        key = self.keys.get(role_or_key, role_or_key)
        return Sender.from_key(self.w3, key)

    def banks(self) -> list[DemoParticipant]:
        return [p for p in self.participants if p.kind == ParticipantKind.BANK]

    def lps(self) -> list[DemoParticipant]:
        return [p for p in self.participants if p.kind == ParticipantKind.LIQUIDITY_PROVIDER]


def demo_participants() -> list[DemoParticipant]:
    first = len(ROLES)
    return [
        DemoParticipant(name, kind, bic, country, tuple(ccys), devnet_key(first + i))
        for i, (name, kind, bic, country, ccys) in enumerate(_DEMO)
    ]


def build_network(
    w3: Web3,
    manifest_path: Path,
    fund_participants: bool = True,
    log: object = None,
    rates: RateProvider | None = None,
) -> Network:
    """Deploy (or reuse) the contracts and onboard and fund the demo participants."""
    chain_id = w3.eth.chain_id
    keys = {role: load_key(role, chain_id=chain_id, devnet=True) for role in ROLES}
    roles = RoleAddresses(**{r: Account.from_key(k).address for r, k in keys.items()})
    say = log if callable(log) else (lambda _: None)
    manifest = deploy(w3, keys["admin"], roles, manifest_path, log=say)
    network = Network(w3, manifest, keys, demo_participants())
    for p in network.participants:
        onboard(w3, manifest, keys["operator"], p.address, p.kind, p.bic, p.currencies, log=say)
    publish_reference_rates(network, say, rates)
    if fund_participants:
        vault = network.vault
        for p in network.participants:
            for code in p.currencies:
                if vault.balance(p.address, code).available > 0:
                    continue
                exponent = manifest.asset(code).decimals
                major = _BALANCE_MAJOR[p.kind] * (_JPY_FACTOR if exponent == 0 else 1)
                fund(w3, manifest, keys["issuer"], p.address, code, major * 10**exponent, log=say)
    return network


def publish_reference_rates(network: Network, log: object = None, rates: RateProvider | None = None) -> None:
    """Publish current mid rates of every deployed currency pair (those that changed)."""
    result = publish(network.vault, network.sender("oracle"), rates or build_provider())
    if callable(log):
        log(result.summary())


def onboard_node(store_url: str, manifest: Manifest, participants: list[DemoParticipant]) -> dict[str, str]:
    """Put the demo participants in a node's directory; returns each new bank's API key by BIC.

    Participants already there are left alone (their keys were shown when they were added).
    """
    from node.ops.directory import onboard
    from node.store.db import Store
    from node.store.models import Bank

    store = Store(store_url)
    store.migrate()
    keys: dict[str, str] = {}
    try:
        with store.transaction() as session:
            known = {b.bic for b in session.query(Bank)}
            for p in participants:
                if p.bic in known:
                    continue
                _, api_key = onboard(
                    session,
                    manifest,
                    name=p.name,
                    bic=p.bic,
                    country=p.country,
                    address=p.address,
                    kind=p.kind,
                    currencies=list(p.currencies),
                )
                if api_key is not None:
                    keys[p.bic] = api_key
    finally:
        store.dispose()
    return keys
