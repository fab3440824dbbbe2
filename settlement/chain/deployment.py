"""Deploy, onboard and fund: the operator's steps, written once for scripts and tests.

Every step first reads the chain and acts only on what is missing, so running a step again
(after a crash, or by mistake) deploys nothing twice and changes nothing that is right.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from web3 import Web3
from web3.contract import Contract

from contracts.build import build
from settlement import money
from settlement.chain import Sender, contract, interface
from settlement.errors import ConfigurationError, ManifestError
from settlement.manifest import AssetEntry, Manifest

DEFAULT_CURRENCIES = ("USD", "EUR", "GBP", "JPY", "CNY", "SGD", "CHF")
DEFAULT_BAND_BPS = 200
DEFAULT_RATE_MAX_AGE_S = 7 * 24 * 3600
KINDS = {"bank": 1, "lp": 2}

Log = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


@dataclass(frozen=True)
class RoleAddresses:
    admin: str
    operator: str
    oracle: str
    issuer: str
    relayer: str
    fee: str

    def check_distinct(self) -> None:
        seen: dict[str, str] = {}
        for role, address in vars(self).items():
            if address.lower() in seen:
                raise ConfigurationError(
                    f"the {role} and {seen[address.lower()]} roles share {address}: every role needs its own key"
                )
            seen[address.lower()] = role


def deploy(
    w3: Web3,
    admin_key: str,
    roles: RoleAddresses,
    manifest_path: Path,
    currencies: Iterable[str] = DEFAULT_CURRENCIES,
    band_bps: int = DEFAULT_BAND_BPS,
    rate_max_age_s: int = DEFAULT_RATE_MAX_AGE_S,
    log: Log = _quiet,
) -> Manifest:
    """Deploy the vault and one asset per currency, grant roles, list currencies."""
    codes = [money.currency(c).code for c in currencies]
    roles.check_distinct()
    chain_id = w3.eth.chain_id
    admin = Sender.from_key(w3, admin_key)
    if admin.address.lower() != roles.admin.lower():
        raise ConfigurationError("the admin key does not belong to the admin address")

    manifest = _manifest(w3, manifest_path, chain_id, roles, log)

    if not manifest.vault:
        admin.require_funds("admin")
        receipt = admin.deploy("SettlementVault", roles.admin, roles.fee, roles.oracle, band_bps, rate_max_age_s)
        manifest.vault = str(receipt["contractAddress"])
        manifest.deployment_block = int(receipt["blockNumber"])
        manifest.band_bps, manifest.rate_max_age_s = band_bps, rate_max_age_s
        manifest.save(manifest_path)
        log(f"deployed SettlementVault at {manifest.vault} (block {manifest.deployment_block})")
    vault = contract(w3, "SettlementVault", manifest.vault)

    for role_name, address in (("OPERATOR_ROLE", roles.operator), ("ORACLE_ROLE", roles.oracle)):
        role = vault.functions[role_name]().call()
        if not vault.functions.hasRole(role, address).call():
            admin.transact(vault.functions.grantRole(role, address))
            log(f"granted {role_name} to {address}")

    for code in codes:
        _deploy_asset(w3, admin, vault, manifest, manifest_path, code, roles, log)
    manifest.save(manifest_path)
    write_interface(manifest, manifest_path)
    return manifest


def _manifest(w3: Web3, manifest_path: Path, chain_id: int, roles: RoleAddresses, log: Log) -> Manifest:
    """The manifest to deploy into (the existing one, if its vault is still on chain), with this
    build's compiler settings and the roles."""
    if manifest_path.exists():
        manifest = Manifest.load(manifest_path, chain_id)
        if manifest.vault and not w3.eth.get_code(Web3.to_checksum_address(manifest.vault)):
            raise ManifestError(
                f"{manifest_path} names vault {manifest.vault}, but chain {chain_id} has no "
                "code there (was the chain reset?): remove the manifest to deploy afresh"
            )
    else:
        manifest = Manifest(chain_id=chain_id)
    result = build()
    manifest.compiler_version = result.compiler_version
    manifest.compiler_settings = result.settings
    manifest.build_id = result.build_id
    if manifest.vault and manifest.source_hash and manifest.source_hash != result.source_hash:
        log(f"note: the sources changed since {manifest.vault} was deployed; keeping it")
    manifest.source_hash = manifest.source_hash or result.source_hash
    manifest.roles = {
        "admin": roles.admin,
        "operator": roles.operator,
        "oracle": roles.oracle,
        "issuer": roles.issuer,
        "relayer": roles.relayer,
        "fee_account": roles.fee,
    }
    return manifest


def _deploy_asset(
    w3: Web3,
    admin: Sender,
    vault: Contract,
    manifest: Manifest,
    manifest_path: Path,
    code: str,
    roles: RoleAddresses,
    log: Log,
) -> None:
    """Deploy the asset of ``code`` unless it is on chain, and list it in the vault unless it is."""
    cur = money.currency(code)
    entry = manifest.assets.get(code)
    if entry is None or not w3.eth.get_code(Web3.to_checksum_address(entry.address)):
        receipt = admin.deploy("SettlementAsset", f"Corridor {code}", code, cur.exponent, roles.admin, roles.issuer)
        entry = AssetEntry(str(receipt["contractAddress"]), cur.exponent)
        manifest.assets[code] = entry
        manifest.save(manifest_path)
        log(f"deployed SettlementAsset {code} ({cur.exponent} decimals) at {entry.address}")
    if not vault.functions.currencyOf(cur.code_bytes).call()[2]:
        admin.transact(vault.functions.listCurrency(cur.code_bytes, entry.address))
        log(f"listed {code}")


def interface_path(manifest_path: Path) -> Path:
    """Where the vault's ABI is written, beside the manifest."""
    return manifest_path.with_name("vault.abi.json")


def write_interface(manifest: Manifest, manifest_path: Path) -> Path:
    path = interface_path(manifest_path)
    path.write_text(json.dumps(interface("SettlementVault", manifest.vault, manifest.chain_id), indent=1) + "\n")
    return path


def onboard(
    w3: Web3,
    manifest: Manifest,
    operator_key: str,
    participant: str,
    kind: str,
    bic: str,
    currencies: Iterable[str],
    log: Log = _quiet,
) -> None:
    """Register a bank or liquidity provider and enable it for currencies (idempotent)."""
    if kind not in KINDS:
        raise ConfigurationError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    bic_bytes = _bic(bic)
    codes = [money.currency(c).code for c in currencies]
    for code in codes:
        manifest.asset(code)
    if not Web3.is_address(participant):
        raise ConfigurationError(f"{participant!r} is not an address")
    participant = Web3.to_checksum_address(participant)
    operator = Sender.from_key(w3, operator_key)
    operator.require_funds("operator")
    vault = contract(w3, "SettlementVault", manifest.vault)
    kind_now, _, _, bic_now = vault.functions.participantOf(participant).call()
    if kind_now == 0:
        operator.transact(
            vault.functions.registerParticipant(participant, KINDS[kind], bic_bytes, [c.encode() for c in codes])
        )
        log(f"registered {kind} {bic} at {participant} for {', '.join(codes)}")
        return
    if kind_now != KINDS[kind] or bic_now != bic_bytes:
        registered = bic_now.rstrip(b"\0").decode()
        raise ConfigurationError(f"{participant} is already registered with another kind or BIC ({registered})")
    for code in codes:
        flags = vault.functions.accountOf(participant, code.encode()).call()[2]
        if not flags & 1:
            operator.transact(vault.functions.enableCurrency(participant, code.encode()))
            log(f"enabled {code} for {participant}")


def fund(
    w3: Web3,
    manifest: Manifest,
    issuer_key: str,
    participant: str,
    code: str,
    amount_minor: int,
    log: Log = _quiet,
) -> None:
    """Mint ``amount_minor`` against reserves and deposit it for ``participant``."""
    cur = money.currency(code)
    entry = manifest.asset(cur.code)
    if amount_minor <= 0:
        raise ConfigurationError("the amount must be positive")
    issuer = Sender.from_key(w3, issuer_key)
    issuer.require_funds("issuer")
    token = contract(w3, "SettlementAsset", entry.address)
    vault = contract(w3, "SettlementVault", manifest.vault)
    participant = Web3.to_checksum_address(participant)
    issuer.transact(token.functions.mint(issuer.address, amount_minor))
    if token.functions.allowance(issuer.address, manifest.vault).call() < amount_minor:
        issuer.transact(token.functions.approve(manifest.vault, 2**256 - 1))
    issuer.transact(vault.functions.deposit(participant, cur.code_bytes, amount_minor))
    log(f"minted and deposited {money.format_minor(amount_minor, cur.code)} {cur.code} for {participant}")


def _bic(bic: str) -> bytes:
    text = bic.strip().upper()
    if len(text) not in (8, 11) or not text.isalnum() or not text.isascii():
        raise ConfigurationError(f"{bic!r} is not a BIC: 8 or 11 letters and digits")
    return text.encode().ljust(11, b"\0")
