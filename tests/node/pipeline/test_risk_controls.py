"""Risk controls through a running node on a devnet: rules loaded by the admin API, screening
stopping a transfer (code in the API and the webhook), the review queue (approve, reject and
refund), freezing and pausing carried to the vault, and reconciliation catching a store edited
behind the node's back and a balance edited in the vault's storage."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text

from node.bank.client import BankClient, NodeError
from node.config import DEVNET_OPERATOR_API_KEY
from node.store.models import ChainTx, SeenBlock, Transfer, WebhookDelivery
from tests.chain_edits import add_available, rpc_of
from tests.node.conftest import LocalNode

NodeFactory = Callable[..., LocalNode]
SANCTIONS = """id,kind,name,aliases,bic,country,program
T-1,person,Ivan Sergeyevich Petrov,Ivan Petrov,,RU,TEST
T-2,country,,,,KP,TEST
"""
RULES = """version: 1
limits:
  default:
    max_per_transfer: {USD: "50000.00"}
screening:
  list: sanctions.csv
  threshold: 90
  review_from: 80
review:
  above: {USD: "10000.00"}
"""


def _operator(node: LocalNode) -> BankClient:
    return BankClient(node.url, DEVNET_OPERATOR_API_KEY)


def _admin(node: LocalNode, path: str, body: dict[str, Any], key: str) -> Any:
    return _operator(node).request("POST", path, body, idempotency_key=key)


def _with_rules(node_factory: NodeFactory, tmp_path: Path) -> LocalNode:
    (tmp_path / "sanctions.csv").write_text(SANCTIONS)
    node = node_factory()
    assert _admin(node, "/v1/admin/risk/rules", {"text": RULES}, "rules-1")["version"] == 1
    return node


def test_rules_by_the_admin_api_a_bad_document_changes_nothing_and_screening_stops_a_transfer(
    node_factory: NodeFactory, tmp_path: Path
) -> None:
    node = _with_rules(node_factory, tmp_path)
    bad = RULES.replace('max_per_transfer: {USD: "50000.00"}', 'max_per_transfer: {USD: "-1.00"}')
    with pytest.raises(NodeError) as err:
        _admin(node, "/v1/admin/risk/rules", {"text": bad}, "rules-2")
    assert (err.value.status, err.value.code) == (422, "invalid_rules")
    assert err.value.details["line"] == 4 and "cannot be negative" in err.value.details["reason"]
    with pytest.raises(NodeError) as err:
        _admin(node, "/v1/admin/risk/rules", {"text": RULES + "unknown_section: {}\n"}, "rules-3")
    assert err.value.details["line"] == 11 and err.value.details["reason"] == "unknown_section: unknown key"
    assert _operator(node).request("GET", "/v1/admin/risk/rules")["version"] == 1, "the rules in force stay"

    us = node.client("FATLUS33")
    us.request("POST", "/v1/webhooks", {"url": "http://127.0.0.1:9/hook"}, idempotency_key="hook")
    stopped = us.send(
        "RHNLDEFF", "USD", "500.00", "EUR", details={"beneficiary": {"name": "Petróv, IVAN", "country": "DE"}}
    )
    over = us.send("RHNLDEFF", "USD", "50000.01", "EUR")
    fine = us.send("RHNLDEFF", "USD", "500.00", "EUR", details={"beneficiary": {"name": "Anna Weber"}})
    assert us.wait(fine["id"])["status"] == "FINAL"
    for t, code in ((stopped, "sanctions_name"), (over, "limit_per_transfer")):
        got = us.wait(t["id"], status="REJECTED")
        assert got["status_code"] == code and [h["status"] for h in got["history"]] == ["RECEIVED", "REJECTED"]
    got = us.transfer(stopped["id"])
    assert "'Petróv, IVAN' matches listed 'Ivan Sergeyevich Petrov' (T-1, TEST)" in got["status_reason"]
    with node.svc.store.transaction(write=False) as s:
        deliveries = select(WebhookDelivery).where(WebhookDelivery.transfer_id == stopped["id"])
        bodies = [d.body["data"] for d in s.scalars(deliveries.order_by(WebhookDelivery.created_at))]
    assert [(b["status"], b["status_code"]) for b in bodies] == [("RECEIVED", ""), ("REJECTED", "sanctions_name")]


def test_the_review_queue_approves_and_rejects_and_a_rejected_escrow_is_refunded_at_once(
    node_factory: NodeFactory, tmp_path: Path
) -> None:
    node = _with_rules(node_factory, tmp_path)
    us, vault = node.client("FATLUS33"), node.chain.network.vault
    before = vault.balance(us.address, "USD")
    approve = us.send("RHNLDEFF", "USD", "20000.00", "EUR")
    reject = us.send("RHNLDEFF", "USD", "30000.00", "EUR", deadline_s=3600)
    for t in (approve, reject):
        held = node.wait_for(lambda t=t: (x := us.transfer(t["id"]))["status"] == "ESCROWED" and x, 30, "escrow")
        assert held["review"]["state"] == "pending" and held["status_code"] == "review_amount"
        assert "held for review: 20000.00 USD" in held["status_reason"] or "30000.00 USD" in held["status_reason"]
    queue = _operator(node).request("GET", "/v1/admin/reviews")["data"]
    assert {t["id"] for t in queue} == {approve["id"], reject["id"]}
    assert vault.balance(us.address, "USD").escrowed == before.escrowed + 50_000_00
    with pytest.raises(NodeError) as err:
        us.request("GET", "/v1/admin/reviews")
    assert err.value.status == 403

    _admin(node, f"/v1/admin/reviews/{approve['id']}/approve", {"note": "known customer"}, "a1")
    _admin(node, f"/v1/admin/reviews/{reject['id']}/reject", {"note": "no invoice"}, "r1")
    with pytest.raises(NodeError) as err:
        _admin(node, f"/v1/admin/reviews/{reject['id']}/approve", {}, "a2")
    assert (err.value.status, err.value.code) == (409, "not_in_review")
    approved = us.wait(approve["id"])
    assert [h["status"] for h in approved["history"]] == ["RECEIVED", "ESCROWED", "SETTLED", "FINAL"]
    # Escrowed alone while held, it joined a net cycle once approved: its escrow paid its sell leg.
    with node.svc.store.transaction(write=False) as s:
        cycles = [tx.payload["transfer_ids"] for tx in s.scalars(select(ChainTx).where(ChainTx.kind == "cycle"))]
    assert any(approve["id"] in ids for ids in cycles)
    refunded = us.wait(reject["id"], status="REFUNDED", timeout_s=60)
    assert refunded["status_code"] == "review_rejected" and "no invoice" in refunded["status_reason"]
    assert refunded["review"]["state"] == "rejected"
    assert dt.datetime.fromisoformat(refunded["updated_at"]).timestamp() < refunded["deadline"] - 3000, "at once"
    after = vault.balance(us.address, "USD")
    assert after.escrowed == before.escrowed and after.available == before.available - 20_000_00
    assert _operator(node).request("GET", "/v1/admin/reviews")["data"] == []


def test_batches_held_for_review_do_not_keep_a_later_batch_from_settling(
    node_factory: NodeFactory, tmp_path: Path
) -> None:
    """A resolve round looks at a bounded number of batches (4 here): five batches held for
    review come first, and the batch after them still settles."""
    (tmp_path / "sanctions.csv").write_text(SANCTIONS)
    node = node_factory(batch_size_max=1)
    assert node.worker is not None
    pipeline = node.worker.pipeline
    pipeline.settings = replace(pipeline.settings, batches_per_tick_max=1)
    _admin(node, "/v1/admin/risk/rules", {"text": RULES}, "rules-1")
    us = node.client("FATLUS33")
    held = [us.send("RHNLDEFF", "USD", f"{20000 + i}.00", "EUR") for i in range(5)]
    for t in held:
        node.wait_for(lambda t=t: us.transfer(t["id"])["status"] == "ESCROWED", 30, "escrow")
    fine = us.send("RHNLDEFF", "USD", "500.00", "EUR")
    assert us.wait(fine["id"], timeout_s=30)["status"] == "FINAL"
    assert {us.transfer(t["id"])["review"]["state"] for t in held} == {"pending"}


def test_freezing_and_pausing_reach_the_vault(node_factory: NodeFactory) -> None:
    node = node_factory()
    vault = node.chain.network.vault
    address = node.chain.network.banks()[2].address
    try:
        frozen = _admin(node, "/v1/admin/banks/THMSGB2L/frozen", {"value": True}, "f1")
        assert (frozen["frozen"], frozen["frozen_on_chain"]) == (True, False)
        node.wait_for(lambda: vault.contract.functions.participantOf(address).call()[2], 30, "setFrozen")
        node.wait_for(lambda: _frozen_on_chain(node, "THMSGB2L"), 30, "frozen_on_chain in the store")
        paused = _admin(node, "/v1/admin/paused", {"value": True}, "p1")
        assert paused == {"paused": True, "paused_on_chain": False}
        node.wait_for(lambda: vault.contract.functions.config().call()[3], 30, "setPaused")
        with pytest.raises(NodeError) as err:
            node.client("FATLUS33").send("RHNLDEFF", "USD", "1.00", "EUR")
        assert err.value.code == "network_paused"
    finally:
        _admin(node, "/v1/admin/paused", {"value": False}, "p2")
        _admin(node, "/v1/admin/banks/THMSGB2L/frozen", {"value": False}, "f2")
        node.wait_for(lambda: not vault.contract.functions.config().call()[3], 30, "setPaused(false)")
        node.wait_for(lambda: not vault.contract.functions.participantOf(address).call()[2], 30, "setFrozen(false)")


def _frozen_on_chain(node: LocalNode, bic: str) -> bool:
    with node.svc.store.engine.connect() as c:
        return bool(c.execute(text("SELECT frozen_on_chain FROM banks WHERE bic = :b"), {"b": bic}).scalar_one())


def test_reconciliation_catches_a_store_edit_and_a_vault_edit(node_factory: NodeFactory) -> None:
    node = node_factory(reconcile_interval_s=0)
    us = node.client("FATLUS33")
    t = us.send("RHNLDEFF", "USD", "700.00", "EUR")
    final = us.wait(t["id"])
    assert final["status"] == "FINAL"
    clean = _operator(node).request("POST", "/v1/admin/reconciliation")
    assert clean["last_run"]["mismatches"] == 0 and clean["open_mismatches"] == []
    assert clean["last_run"]["checked"]["transfers"] >= 1

    with node.svc.store.engine.begin() as c:  # the store, behind the node's back
        c.execute(text("UPDATE transfers SET buy_amount = '1' WHERE id = :id"), {"id": t["id"]})
    found = _operator(node).request("POST", "/v1/admin/reconciliation")["open_mismatches"]
    assert [(m["kind"], m["subject"], m["found"]) for m in found] == [
        ("transfer", f"transfer {t['id']}", f"buy amount 1, fee {final['fee']}")
    ]
    with node.svc.store.transaction(write=False) as s:
        alerts = [d.body for d in s.scalars(select(WebhookDelivery).where(WebhookDelivery.bank_id.is_(None)))]
    assert [a["type"] for a in alerts] == ["reconciliation.mismatch"] and alerts[0]["data"]["kind"] == "transfer"
    assert "corridor_reconciliation_mismatches 1.0" in httpx.get(node.url + "/metrics").text
    cli = _reconcile_cli(node)
    assert cli.returncode == 1 and f"MISMATCH transfer      transfer {t['id']}" in cli.stdout, cli.stdout + cli.stderr

    with node.svc.store.transaction() as s:  # put right by hand: the next run finds it no more and closes it
        row = s.get(Transfer, t["id"])
        assert row is not None and row.buy_amount == 1, "the node corrected nothing"
        row.buy_amount = final["buy_amount"]
    assert _operator(node).request("POST", "/v1/admin/reconciliation")["open_mismatches"] == []
    bank = node.chain.network.banks()[1]
    rpc = rpc_of(node.chain.network.w3)
    slot, original = add_available(rpc, node.chain.network.vault, bank.address, "EUR", 5_00)
    try:
        # A run reads the chain at the watcher's checkpoint: the edit shows once a block after it is checked.
        edited_at = node.chain.network.w3.eth.block_number
        node.wait_for(lambda: _checkpoint(node) > edited_at, 30, "the watcher to pass the edit")
        run = _operator(node).request("POST", "/v1/admin/reconciliation")
    finally:
        rpc("anvil_setStorageAt", [node.chain.network.manifest.vault, slot, original])
    kinds = {(m["kind"], m["subject"]) for m in run["open_mismatches"]}
    assert ("chain_balance", f"{bank.bic} {bank.address} EUR available") in kinds, run


def _checkpoint(node: LocalNode) -> int:
    with node.svc.store.transaction(write=False) as s:
        return int(s.scalar(select(func.max(SeenBlock.number))) or 0)


def _reconcile_cli(node: LocalNode) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "CORRIDOR_NODE_DATABASE_URL": node.store_url,
        "CORRIDOR_RPC_URL": node.settings.rpc_url,
        "CORRIDOR_MANIFEST": str(node.settings.manifest),
        "CORRIDOR_NODE_DATA_DIR": str(node.settings.data_dir),
    }
    return subprocess.run(
        [sys.executable, "-m", "scripts.corridor", "reconcile"], capture_output=True, text=True, env=env, timeout=120
    )
