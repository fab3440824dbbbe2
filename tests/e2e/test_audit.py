"""The auditor's verifier on a devnet of its own: a clean mixed run passes every check, and each
kind of tampering is caught and named (a balance edited under the contract, deployed code that
differs from the sources, calldata that does not match what was booked, a manifest for another
chain)."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import solcx
from web3 import Web3

import settlement.audit as audit_module
from contracts.build import ROOT, SETTINGS, collect_sources, compile_sources, compiler_binary
from scripts.bench_audit import Traffic
from scripts.devnet import Devnet
from scripts.network import Network, build_network
from settlement.audit import run_audit
from settlement.audit.decoding import NettedCall, ResolutionCall, VaultCall
from settlement.audit.statement import Period, statement, write_statement
from settlement.chain import connect
from settlement.chain.events import Log
from settlement.chain.vault import SignedInstruction
from settlement.eip712 import Quote
from settlement.errors import ManifestError
from tests.chain_edits import add_available, rpc_of
from tests.conftest import ECB_RATES

pytestmark = pytest.mark.devnet


@dataclass
class Audited:
    devnet: Devnet
    network: Network
    manifest: Path
    traffic: Traffic

    def rpc(self, method: str, params: list[object]) -> object:
        return rpc_of(self.network.w3)(method, params)


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Audited]:
    """A network after mixed traffic: 60 settlements in batches over several pairs and both
    liquidity providers, 30 instructions netted in two cycles (each joined by one escrowed
    instruction), refunds by the operator and after the deadline, a withdrawal, fees collected."""
    with Devnet() as devnet:
        manifest = tmp_path_factory.mktemp("audit") / "manifest.json"
        network = build_network(connect(devnet.url), manifest, rates=ECB_RATES)
        traffic = Traffic(network)
        traffic.run(60, 25, netted=30)
        yield Audited(devnet, network, manifest, traffic)


def test_a_clean_mixed_run_passes_every_check(audited: Audited) -> None:
    report = run_audit(audited.devnet.url, audited.manifest).report
    assert report.passed, report.to_json()
    assert report.facts["settlements"] == 60 + 2 + 30 and report.facts["refunds"] == audited.traffic.refunded == 17
    assert report.facts["escrows"] == 79 and report.facts["escrows open"] == 0 and report.facts["netted"] == 30
    assert report.check("cycles").checked == 2
    assert report.check("authorisation").checked == 79 + 30
    currencies = {c for _, _, sell, buy in audited.traffic.routes[:60] for c in (sell, buy)}
    assert len(currencies) >= 3
    assert report.check("bytecode").checked == 1 + len(audited.network.manifest.assets)


def test_the_command_prints_a_passing_report_and_json(audited: Audited) -> None:
    command = [
        sys.executable,
        "-m",
        "scripts.corridor",
        "audit",
        "--rpc-url",
        audited.devnet.url,
        "--manifest",
        str(audited.manifest),
        "--no-progress",
    ]
    shown = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env={**os.environ, "COLUMNS": "200"})
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert "PASS: 8/8 checks passed" in shown.stdout and "Settlements priced and booked correctly" in shown.stdout
    as_json = subprocess.run([*command, "--json"], capture_output=True, text=True, cwd=ROOT)
    doc = json.loads(as_json.stdout)
    assert as_json.returncode == 0 and doc["passed"] and len(doc["checks"]) == 8


def test_day_statements_add_up_to_the_contract_balance(audited: Audited, tmp_path: Path) -> None:
    result = run_audit(audited.devnet.url, audited.manifest)
    bank = audited.network.banks()[0]
    today = datetime.fromtimestamp(audited.traffic.now(), UTC).date()
    doc = statement(result.ledger, result.timestamps, bank.address, Period(today, today))
    json_path, csv_path = write_statement(doc, tmp_path)
    assert json.loads(json_path.read_text()) == doc
    for code, body in doc["currencies"].items():
        decimals = body["decimals"]
        day = body["days"][-1]
        assert day["opening"] == {
            "available": "0" if decimals == 0 else "0." + "0" * decimals,
            "escrowed": "0" if decimals == 0 else "0." + "0" * decimals,
        }
        balance = audited.network.vault.balance(bank.address, code)
        scale = 10**decimals
        assert round(float(day["closing"]["available"]) * scale) == balance.available
        assert all(m["tx_hash"].startswith("0x") and m["entry"] for m in day["movements"])
    settlements = [m for b in doc["currencies"].values() for m in b["days"][0]["movements"] if m["uetr"]]
    assert settlements and all(len(m["uetr"]) == 36 for m in settlements)
    rows = list(csv.DictReader(csv_path.open()))
    assert rows[0]["entry"] == "opening balance" and rows[-1]["entry"] == "closing balance"
    assert len([r for r in rows if r["uetr"]]) == len(settlements)
    # Each net cycle the bank took part in is booked as the sum of its movements in it.
    cycles = [(code, c) for code, b in doc["currencies"].items() for d in b["days"] for c in d["cycles"]]
    assert cycles
    for code, c in cycles:
        legs = [m for m in doc["currencies"][code]["days"][-1]["movements"] if m["tx_hash"] == c["tx_hash"]]
        assert Decimal(c["available_change"]) == sum(Decimal(m["available_change"]) for m in legs)
    assert len([r for r in rows if r["entry"].startswith("net cycle")]) == len(cycles)


def test_a_balance_edited_under_the_contract_is_reported(audited: Audited) -> None:
    bank = audited.network.banks()[1]
    vault = audited.network.manifest.vault
    slot, original = add_available(audited.rpc, audited.network.vault, bank.address, "EUR", 5_00)  # five euros
    try:
        report = run_audit(audited.devnet.url, audited.manifest).report
    finally:
        audited.rpc("anvil_setStorageAt", [vault, slot, original])
    assert not report.passed
    (finding,) = report.check("balances").findings
    available = audited.network.vault.balance(bank.address, "EUR").available
    assert finding.fields["participant"] == f"{bank.bic} {bank.address}"
    assert finding.fields["currency"] == "EUR" and finding.fields["field"] == "available"
    assert finding.fields["expected"] == f"{available // 100}.{available % 100:02d} EUR"
    assert finding.fields["found"] == f"{(available + 500) // 100}.{(available + 500) % 100:02d} EUR"
    # The tokens the vault holds no longer cover what its books say.
    assert [c.key for c in report.checks if not c.passed] == ["balances"]
    assert run_audit(audited.devnet.url, audited.manifest).report.passed


def test_code_that_differs_from_the_sources_by_one_constant_is_reported(audited: Audited) -> None:
    sources = collect_sources()
    path = "contracts/SettlementVault.sol"
    assert "BAND_BPS_MAX = 2_000;" in sources[path]["content"]
    sources[path] = {"content": sources[path]["content"].replace("BAND_BPS_MAX = 2_000;", "BAND_BPS_MAX = 2_001;")}
    output = solcx.compile_standard(
        {"language": "Solidity", "sources": sources, "settings": SETTINGS},
        solc_binary=str(compiler_binary()),
        base_path=str(ROOT),
        allow_paths=[str(ROOT)],
    )
    changed = output["contracts"][path]["SettlementVault"]["evm"]["deployedBytecode"]
    code = bytearray(bytes.fromhex(changed["object"]))
    vault = audited.network.manifest.vault
    original = str(audited.rpc("eth_getCode", [vault, "latest"]))
    reference = compile_sources()[3]["contracts"][path]["SettlementVault"]["evm"]["deployedBytecode"]
    deployed = bytes.fromhex(original[2:])
    # The changed contract keeps the deployment's immutables, so only the constant differs.
    for ident, ranges in changed["immutableReferences"].items():
        source_at = reference["immutableReferences"][ident][0]["start"]
        for r in ranges:
            code[r["start"] : r["start"] + 32] = deployed[source_at : source_at + 32]
    audited.rpc("anvil_setCode", [vault, "0x" + code.hex()])
    try:
        report = run_audit(audited.devnet.url, audited.manifest).report
    finally:
        audited.rpc("anvil_setCode", [vault, original])
    assert [c.key for c in report.checks if not c.passed] == ["bytecode"]
    (finding,) = report.check("bytecode").findings
    assert finding.message == "deployed code differs from the sources"
    assert finding.fields["contract"] == "vault" and finding.fields["address"] == vault


def test_calldata_that_does_not_match_the_books_is_reported(audited: Audited, monkeypatch: pytest.MonkeyPatch) -> None:
    """The contract refuses such transactions, so they are simulated at decoding: a settlement
    whose quote carries another rate, an escrow whose instruction names another debtor."""
    real = audit_module.decode_call
    tampered: dict[str, str] = {}

    def tamper(data: bytes) -> VaultCall | None:
        call = real(data)
        if call is None:
            return None
        if call.resolutions and "settle" not in tampered and call.resolutions[0].quote is not None:
            first = call.resolutions[0]
            assert first.quote is not None
            q = first.quote.quote
            forged = Quote(q.sell_currency, q.buy_currency, q.rate * 2, q.fee_bps, q.liquidity_provider, q.expiry)
            tampered["settle"] = "0x" + first.terms.id.hex()
            swapped = ResolutionCall(first.action, first.terms, type(first.quote)(forged, first.quote.signature))
            return VaultCall(call.function, call.escrows, (swapped, *call.resolutions[1:]))
        if len(call.escrows) > 1 and "escrow" not in tampered:
            s = call.escrows[0]
            ins = s.instruction
            other = next(b.address for b in audited.network.banks() if b.address != ins.debtor)
            forged_ins = type(ins)(
                ins.id,
                ins.nonce,
                other,
                ins.creditor,
                ins.sell_currency,
                ins.sell_amount,
                ins.buy_currency,
                ins.min_buy_amount,
                ins.deadline,
                ins.details_hash,
            )
            tampered["escrow"] = "0x" + ins.id.hex()
            return VaultCall(call.function, (SignedInstruction(forged_ins, s.signature), *call.escrows[1:]))
        return call

    monkeypatch.setattr(audit_module, "decode_call", tamper)
    report = run_audit(audited.devnet.url, audited.manifest).report
    settlement_problems = {f.message for f in report.check("settlements").findings}
    assert "quote not signed by the oracle's quote key in force" in settlement_problems
    assert "booked figures differ from the conversion at the quoted rate" in settlement_problems
    escrow_problems = {f.message for f in report.check("authorisation").findings}
    assert "instruction not signed by its debtor" in escrow_problems
    assert "event differs from the escrowed instruction" in escrow_problems


def test_a_doctored_cycle_is_reported(audited: Audited, monkeypatch: pytest.MonkeyPatch) -> None:
    """Logs the chain would never emit, simulated at decoding: the second cycle's net figure one
    unit off its instructions' legs, a netted instruction of the first whose buy amount is one
    unit more, and a netted instruction whose calldata names another debtor than the one who
    signed."""
    real_log, real_call = audit_module.decode_log, audit_module.decode_call
    doctored: set[str] = set()

    def doctor_log(raw: object) -> Log | None:
        log = real_log(raw)
        if log is None:
            return None
        if log.name == "CycleSettled" and log.args["cycle"] == 2:
            doctored.add("cycle")
            net = [log.args["net"][0] + 1, *log.args["net"][1:]]
            return replace(log, args={**log.args, "net": net})
        if log.name == "InstructionNetted" and "netted" not in doctored:
            doctored.add("netted")
            return replace(log, args={**log.args, "buyAmount": log.args["buyAmount"] + 1})
        return log

    def doctor_call(data: bytes) -> VaultCall | None:
        call = real_call(data)
        if call is None or not call.netted or "signer" in doctored:
            return call
        doctored.add("signer")
        last = call.netted[-1]
        ins = last.signed.instruction
        other = next(b.address for b in audited.network.banks() if b.address != ins.debtor)
        forged = NettedCall(SignedInstruction(replace(ins, debtor=other), last.signed.signature), last.quote)
        return VaultCall(call.function, call.escrows, call.resolutions, (*call.netted[:-1], forged))

    monkeypatch.setattr(audit_module, "decode_log", doctor_log)
    monkeypatch.setattr(audit_module, "decode_call", doctor_call)
    report = run_audit(audited.devnet.url, audited.manifest).report
    assert doctored == {"cycle", "netted", "signer"}
    cycle_problems = [(f.fields["block"], f.message) for f in report.check("cycles").findings]
    first, second = sorted({block for block, _ in cycle_problems})
    assert (second, "net per currency differs from the net of its instructions' legs") in cycle_problems
    assert (first, "gross per currency differs from its instructions' legs") in cycle_problems
    settlement_problems = {f.message for f in report.check("settlements").findings}
    assert "booked figures differ from the conversion at the quoted rate" in settlement_problems
    assert "event differs from the signed instruction" in settlement_problems
    assert {f.message for f in report.check("authorisation").findings} == {"instruction not signed by its debtor"}
    # The doctored buy amount also breaks the balances rebuilt from events.
    assert not report.check("balances").passed


def test_a_manifest_for_another_chain_is_a_clear_error(audited: Audited, tmp_path: Path) -> None:
    wrong = tmp_path / "manifest.json"
    doc = json.loads(audited.manifest.read_text())
    wrong.write_text(json.dumps(doc | {"chain_id": 1}))
    with pytest.raises(ManifestError, match="is for chain 1, but the endpoint is chain 31337"):
        run_audit(audited.devnet.url, wrong)
    shown = subprocess.run(
        [sys.executable, "-m", "scripts.corridor", "audit", "--rpc-url", audited.devnet.url, "--manifest", str(wrong)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert shown.returncode == 2 and "is for chain 1, but the endpoint is chain 31337" in shown.stderr
    assert shown.stdout == ""
    moved = tmp_path / "moved.json"
    shutil.copy(audited.manifest, moved)
    doc["vault"] = Web3.to_checksum_address("0x" + "42" * 20)
    moved.write_text(json.dumps(doc))
    with pytest.raises(ManifestError, match="has no contract at the manifest's vault"):
        run_audit(audited.devnet.url, moved)
