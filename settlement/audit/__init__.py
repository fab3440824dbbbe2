"""The auditor's verifier: proves from the chain alone that every settlement was authorised,
priced and booked correctly (``corridor audit``).

It needs an RPC URL, the deployment manifest and this repository, nothing of the node's. It
reads every log of the vault and its assets since the deployment block in bounded ranges,
the transactions behind every escrow, settlement and refund, and the contracts' state at one
block (the audit's last), then runs the checks in :func:`run_audit`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from eth_abi.abi import decode, encode
from eth_utils.abi import function_signature_to_4byte_selector as selector
from eth_utils.address import to_checksum_address

from settlement.audit.bytecode import check_bytecode
from settlement.audit.decoding import VaultCall, decode_call
from settlement.audit.export import check_export, load_export
from settlement.audit.ledger import Replay
from settlement.audit.report import Check, Report
from settlement.audit.state import Ledger
from settlement.chain.events import decode_log
from settlement.chain.rpc import RANGE_BLOCKS_MAX, Progress, Rpc
from settlement.eip712 import Domain
from settlement.errors import ManifestError
from settlement.manifest import Manifest

__all__ = ["AuditResult", "Tracker", "audit_checks", "check_state", "replay_chain", "run_audit"]

Tracker = Callable[[str, int], Progress]
"""Given a step's description and its total units, returns the callback told of units done."""

_ACCOUNT_OF = selector("accountOf(address,bytes3)")
_REFERENCE_RATE = selector("referenceRate(bytes3,bytes3)")
_TOTAL_SUPPLY = selector("totalSupply()")
_BALANCE_OF = selector("balanceOf(address)")
_RESOLVING_EVENTS = ("InstructionEscrowed", "InstructionSettled", "InstructionRefunded", "InstructionNetted")


def _untracked(_: str, __: int) -> Progress:
    return lambda _: None


@dataclass
class AuditResult:
    report: Report
    ledger: Ledger
    timestamps: dict[int, int]


def audit_checks(with_export: bool = False) -> dict[str, Check]:
    checks = [
        Check("balances", "Balances rebuilt from events = contract state", "accounts"),
        Check("conservation", "Conservation per currency", "currencies"),
        Check("authorisation", "Instructions signed by their debtor banks", "instructions"),
        Check("settlements", "Settlements priced and booked correctly", "settlements"),
        Check("refunds", "Refunds after the deadline or by an operator", "refunds"),
        Check("uniqueness", "Each id escrowed once, settled or refunded at most once", "ids"),
        Check("cycles", "Net cycles booked as the sum of their instructions", "cycles"),
        Check("bytecode", "Deployed code = sources compiled as the manifest says", "contracts"),
    ]
    if with_export:
        checks.append(Check("export", "Node's export = chain", "exported transfers"))
    return {c.key: c for c in checks}


def run_audit(
    rpc_url: str,
    manifest_path: Path,
    against: str | None = None,
    api_key: str | None = None,
    last_block: int | None = None,
    fresh_build: bool = False,
    range_blocks_max: int = RANGE_BLOCKS_MAX,
    track: Tracker = _untracked,
) -> AuditResult:
    """Run every check; raises :class:`ManifestError` (or another ConfigurationError) when the
    audit cannot be made at all, e.g. the manifest is for another chain."""
    started = time.perf_counter()
    with Rpc(rpc_url) as rpc:
        chain_id = rpc.chain_id()
        manifest = Manifest.load(manifest_path, chain_id)
        head = rpc.block_number()
        last = head if last_block is None else last_block
        if not manifest.deployment_block <= last <= head:
            raise ManifestError(
                f"cannot audit up to block {last}: the vault was deployed at block {manifest.deployment_block} "
                f"and the chain's head is {head}"
            )
        vault = to_checksum_address(manifest.vault)
        if rpc.call("eth_getCode", [vault, hex(last)]) in ("0x", ""):
            raise ManifestError(
                f"chain {chain_id} has no contract at the manifest's vault {vault} (another network, or was the "
                "chain reset?)"
            )
        export_rows = load_export(against, api_key) if against else None
        checks = audit_checks(export_rows is not None)
        ledger, logs = replay_chain(rpc, manifest, last, checks, range_blocks_max, track)
        first = manifest.deployment_block
        check_state(rpc, manifest, ledger, last, checks, track)
        check_bytecode(rpc, manifest, last, fresh_build, checks["bytecode"])
        if export_rows is not None:
            check_export(export_rows, ledger, checks["export"])

    open_escrows = sum(1 for records in ledger.escrows.values() for r in records if r.resolved_by is None)
    report = Report(
        chain_id=chain_id,
        vault=vault,
        first_block=first,
        last_block=last,
        checks=list(checks.values()),
        facts={
            "logs": logs.count,
            "escrows": sum(len(records) for records in ledger.escrows.values()),
            "netted": ledger.netted,
            "settlements": checks["settlements"].checked,
            "refunds": checks["refunds"].checked,
            "escrows open": open_escrows,
        },
    )
    report.elapsed_s = time.perf_counter() - started
    return AuditResult(report, ledger, logs.timestamps)


@dataclass
class ChainLogs:
    count: int
    timestamps: dict[int, int]


def replay_chain(
    rpc: Rpc,
    manifest: Manifest,
    last: int,
    checks: dict[str, Check],
    range_blocks_max: int = RANGE_BLOCKS_MAX,
    track: Tracker = _untracked,
) -> tuple[Ledger, ChainLogs]:
    """Read every log of the vault and its assets up to ``last`` and replay them (the checks of
    ``checks`` that the replay runs are filled in); the node's reconciliation uses it too."""
    vault = to_checksum_address(manifest.vault)
    first = manifest.deployment_block
    addresses = [vault, *(to_checksum_address(a.address) for a in manifest.assets.values())]
    raw = rpc.logs(addresses, first, last, range_blocks_max, track("reading logs (blocks)", last - first + 1))
    logs = sorted((log for log in map(decode_log, raw) if log is not None), key=lambda log: log.position)
    vault_logs = [log for log in logs if log.address == vault]
    timestamps = rpc.timestamps(
        (log.block for log in vault_logs), track("reading block times", len({log.block for log in vault_logs}))
    )
    wanted = {log.tx_hash for log in vault_logs if log.name in _RESOLVING_EVENTS}
    txs = rpc.transactions(wanted, track("reading transactions", len(wanted)))
    calls: dict[str, VaultCall | None] = {}
    for tx_hash, tx in txs.items():
        to = tx.get("to") if tx else None
        calls[tx_hash] = decode_call(bytes.fromhex(tx["input"][2:])) if to and to.lower() == vault.lower() else None
    replay = Replay(Domain(manifest.chain_id, vault), vault, timestamps, calls, checks)
    ledger = replay.run(logs)
    checks["uniqueness"].checked = len(ledger.escrows.keys() | ledger.settlements.keys() | ledger.refunds.keys())
    return ledger, ChainLogs(len(logs), timestamps)


def check_state(
    rpc: Rpc,
    manifest: Manifest,
    ledger: Ledger,
    block: int,
    checks: dict[str, Check],
    track: Tracker = _untracked,
) -> None:
    """Rebuilt balances and fee accruals against the contracts' state at ``block``; conservation."""
    balances, conservation = checks["balances"], checks["conservation"]
    vault = to_checksum_address(manifest.vault)
    accounts = sorted(ledger.enabled | set(ledger.balances))
    pairs = sorted(set(ledger.rates) | set(ledger.fees_accrued))
    assets = {code: to_checksum_address(entry.address) for code, entry in manifest.assets.items()}
    calls = [(vault, _ACCOUNT_OF + encode(["address", "bytes3"], [p, c.encode()])) for p, c in accounts]
    calls += [(vault, _REFERENCE_RATE + encode(["bytes3", "bytes3"], [s.encode(), b.encode()])) for s, b in pairs]
    for token in assets.values():
        calls += [(token, _TOTAL_SUPPLY), (token, _BALANCE_OF + encode(["address"], [vault]))]
    results = rpc.eth_calls(calls, block, track("reading contract state", len(calls)))

    held: dict[str, int] = {}
    """Per currency, what the vault should hold: balances rebuilt and fees accrued."""
    _check_accounts(balances, ledger, accounts, results, held)
    _check_fee_accruals(balances, ledger, pairs, results[len(accounts) :], held)
    _check_conservation(conservation, ledger, assets, results[len(accounts) + len(pairs) :], held)


def _check_accounts(
    balances: Check, ledger: Ledger, accounts: list[tuple[str, str]], results: list[bytes], held: dict[str, int]
) -> None:
    """Each account's available and escrowed balance in the vault against the one rebuilt from events."""
    for (participant, code), answer in zip(accounts, results, strict=False):
        balances.checked += 1
        available, escrowed, _ = decode(["uint112", "uint112", "uint32"], answer)
        rebuilt = ledger.balances.get((participant, code), [0, 0])
        held[code] = held.get(code, 0) + rebuilt[0] + rebuilt[1]
        for field, expected, found in (("available", rebuilt[0], available), ("escrowed", rebuilt[1], escrowed)):
            if expected != found:
                balances.fail(
                    "balance differs from the one rebuilt from events",
                    participant=ledger.name(participant),
                    currency=code,
                    field=field,
                    expected=ledger.amount(expected, code),
                    found=ledger.amount(found, code),
                )


def _check_fee_accruals(
    balances: Check, ledger: Ledger, pairs: list[tuple[str, str]], results: list[bytes], held: dict[str, int]
) -> None:
    """Each pair's fees accrued in the vault against the events."""
    for (sell, buy), answer in zip(pairs, results, strict=False):
        balances.checked += 1
        fees = decode(["uint128", "uint40", "uint8", "uint8", "uint72"], answer)[4]
        expected = ledger.fees_accrued.get((sell, buy), 0)
        held[sell] = held.get(sell, 0) + expected
        if fees != expected:
            balances.fail(
                "fees accrued on the pair differ from the events",
                participant="(fee accrual)",
                currency=f"{sell}/{buy}",
                field="fees accrued",
                expected=ledger.amount(expected, sell),
                found=ledger.amount(fees, sell),
            )


def _check_conservation(
    conservation: Check, ledger: Ledger, assets: Mapping[str, str], results: list[bytes], held: dict[str, int]
) -> None:
    """Per asset: supply = minted - burned, and the vault's holdings = what it received - sent = what it books."""
    for i, (code, token) in enumerate(assets.items()):
        conservation.checked += 1
        supply = int.from_bytes(results[2 * i], "big")
        holdings = int.from_bytes(results[2 * i + 1], "big")
        if ledger.tokens.get(token) != code:
            conservation.fail(
                "the manifest's asset is not the token the vault lists for the currency", currency=code, token=token
            )
        issued = ledger.minted.get(code, 0) - ledger.burned.get(code, 0)
        received = ledger.vault_received.get(code, 0) - ledger.vault_sent.get(code, 0)
        for what, expected, found in (
            ("total supply = minted - burned", issued, supply),
            ("vault's holdings = tokens it received - tokens it sent", received, holdings),
            ("vault's holdings = available + escrowed + fees accrued", held.get(code, 0), holdings),
        ):
            if expected != found:
                conservation.fail(
                    "not conserved",
                    currency=code,
                    rule=what,
                    expected=ledger.amount(expected, code),
                    found=ledger.amount(found, code),
                )
