"""The operator scripts as an operator runs them: deploy (twice), onboard, fund, and the
one-line errors for a wrong URL, an unfunded key, a missing manifest, an unknown currency."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from eth_account import Account

from scripts.devnet import Devnet
from settlement.chain import connect, contract
from tests.conftest import ROOT

pytestmark = pytest.mark.devnet


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
    )


@pytest.fixture(scope="module")
def fresh() -> object:
    with Devnet() as d:
        yield d


def test_deploy_prints_manifest_and_is_idempotent(fresh: Devnet, tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.json"
    common = ["--rpc-url", fresh.url, "--manifest", str(manifest), "--devnet"]
    first = run("scripts/deploy.py", *common)
    assert first.returncode == 0, first.stderr
    data = json.loads(manifest.read_text())
    assert '"vault"' in first.stdout and data["vault"] in first.stdout
    assert {c: a["decimals"] for c, a in data["assets"].items()} == {
        "USD": 2,
        "EUR": 2,
        "GBP": 2,
        "JPY": 0,
        "CNY": 2,
        "SGD": 2,
        "CHF": 2,
    }
    assert len(set(data["roles"].values())) == 6
    w3 = connect(fresh.url)
    block = w3.eth.block_number

    second = run("scripts/deploy.py", *common)
    assert second.returncode == 0, second.stderr
    assert json.loads(manifest.read_text())["vault"] == data["vault"]
    assert w3.eth.block_number == block, "a second run sent transactions"

    vault = contract(w3, "SettlementVault", data["vault"])
    assert vault.functions.hasRole(vault.functions.ORACLE_ROLE().call(), data["roles"]["oracle"]).call()
    assert vault.functions.currencyOf(b"JPY").call()[1] == 0

    bank = Account.create()
    onboard = run(
        "scripts/onboard.py",
        *common,
        "--address",
        bank.address,
        "--kind",
        "bank",
        "--bic",
        "TESTDEFF",
        "--currencies",
        "EUR,USD",
    )
    assert onboard.returncode == 0, onboard.stderr
    fund = run("scripts/fund.py", *common, "--to", bank.address, "--currency", "EUR", "--amount", "1500.25")
    assert fund.returncode == 0, fund.stderr
    assert vault.functions.accountOf(bank.address, b"EUR").call()[0] == 150025

    bad = run("scripts/fund.py", *common, "--to", bank.address, "--currency", "XYZ", "--amount", "1")
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and "XYZ" in bad.stderr
    decimals = run("scripts/fund.py", *common, "--to", bank.address, "--currency", "JPY", "--amount", "1.5")
    assert decimals.returncode == 2 and "at most 0" in decimals.stderr


def test_one_line_errors(fresh: Devnet, tmp_path: Path) -> None:
    wrong_url = run("scripts/deploy.py", "--rpc-url", "http://127.0.0.1:9", "--devnet")
    assert wrong_url.returncode == 2
    assert wrong_url.stderr.strip().count("\n") == 0 and "127.0.0.1:9" in wrong_url.stderr

    missing = run(
        "scripts/onboard.py",
        "--rpc-url",
        fresh.url,
        "--manifest",
        str(tmp_path / "none.json"),
        "--devnet",
        "--address",
        Account.create().address,
        "--kind",
        "bank",
        "--bic",
        "TESTDEFF",
        "--currencies",
        "EUR",
    )
    assert missing.returncode == 2 and "no deployment manifest" in missing.stderr

    unfunded = {"CORRIDOR_ADMIN_KEY": Account.create().key.hex()}
    broke = run(
        "scripts/deploy.py",
        "--rpc-url",
        fresh.url,
        "--manifest",
        str(tmp_path / "m.json"),
        "--devnet",
        env=unfunded,
    )
    assert broke.returncode == 2 and "no ether" in broke.stderr

    unknown = run(
        "scripts/deploy.py",
        "--rpc-url",
        fresh.url,
        "--manifest",
        str(tmp_path / "u.json"),
        "--devnet",
        "--currencies",
        "USD,ABC",
    )
    assert unknown.returncode == 2 and "ABC" in unknown.stderr

    helps = [run(f"scripts/{name}.py", "--help") for name in ("deploy", "onboard", "fund", "devnet")]
    assert all(h.returncode == 0 and "usage" in h.stdout for h in helps)
