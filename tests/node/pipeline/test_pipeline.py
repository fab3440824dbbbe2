"""End to end on a devnet with interval mining: transfers through the node, to FINAL or not."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from node.bank.client import BankClient, NodeError
from node.config import DEVNET_OPERATOR_API_KEY
from node.store.models import ChainEvent, ChainTx
from settlement.chain import Sender
from tests.node.conftest import LocalNode
from tests.stores import BACKENDS, store_url

pytestmark = pytest.mark.devnet
NodeFactory = Callable[..., LocalNode]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("settlement", ["net", "gross"])
def test_transfers_reach_final_with_the_chain_agreeing(
    node_factory: NodeFactory, backend: str, settlement: str, tmp_path: Path
) -> None:
    """Net by default (queued, then settled by a cycle); gross on a node set so (escrowed, then settled)."""
    with store_url(backend, tmp_path) as url:
        node = node_factory(url, settlement=settlement)
        us, de = node.client("FATLUS33"), node.client("RHNLDEFF")
        vault = node.chain.network.vault
        before = vault.balance(de.address, "EUR").available
        sent = [us.send("RHNLDEFF", "USD", "1000.00", "EUR") for _ in range(5)]
        sent += [de.send("FATLUS33", "EUR", "500.00", "USD")]
        assert all(t["status"] == "RECEIVED" for t in sent)
        finals = [us.wait(t["id"]) if t["debtor"] == us.address else de.wait(t["id"]) for t in sent]
        for t in finals:
            middle = "QUEUED" if settlement == "net" else "ESCROWED"
            assert [h["status"] for h in t["history"]] == ["RECEIVED", middle, "SETTLED", "FINAL"]
            final = t["history"][-1]["chain"]
            assert final["confirmations"] >= 3 and final["tx_hash"].startswith("0x")
            assert t["buy_amount"] > 0 and t["fee"] > 0
        received = sum(t["buy_amount"] for t in finals if t["buy_currency"] == "EUR")
        assert vault.balance(de.address, "EUR").available - before == received - 500_00
        # Net: one netted event per transfer; gross: one escrow and one settlement, as the watcher applied them.
        with node.svc.store.transaction(write=False) as s:
            names = [e.name for e in s.scalars(select(ChainEvent).where(ChainEvent.transfer_id.is_not(None)))]
        expected = ["InstructionNetted"] if settlement == "net" else ["InstructionEscrowed", "InstructionSettled"]
        assert sorted(names) == sorted(expected * 6)
        node.stop()


def test_what_the_vault_would_refuse_is_rejected_by_its_error_and_the_rest_settles(node_factory: NodeFactory) -> None:
    """Gross: an escrow the vault refuses is rejected at once (net, it waits for cover: see tests/e2e)."""
    node = node_factory(settlement="gross")
    us = node.client("FATLUS33")
    vault = node.chain.network.vault
    # The bank spends nonce 7 on chain itself: an instruction signed with it can never escrow.
    bank_key = next(p.key for p in node.chain.network.participants if p.bic == "FATLUS33")
    Sender.from_key(vault.w3, bank_key).transact(vault.contract.functions.invalidateNonces(0, 1 << 7))
    _, body = us.build("RHNLDEFF", "USD", "10.00", "EUR", nonce=7)
    used = us.submit(body)
    broke = us.send("RHNLDEFF", "USD", "99999999.00", "EUR")  # more than the bank holds
    fine = us.send("RHNLDEFF", "USD", "10.00", "EUR")
    assert us.wait(fine["id"])["status"] == "FINAL"
    for t, code in ((used, "InstructionNonceUsed"), (broke, "insufficient_funds")):
        with pytest.raises(NodeError) as err:
            us.wait(t["id"])
        assert err.value.code == code
        got = us.transfer(t["id"])
        assert got["status"] == "REJECTED" and [h["status"] for h in got["history"]] == ["RECEIVED", "REJECTED"]
    with node.svc.store.transaction(write=False) as s:
        on_chain = set(s.scalars(select(ChainEvent.transfer_id)))
    assert used["id"] not in on_chain and broke["id"] not in on_chain and fine["id"] in on_chain


def test_the_operators_limit_rejects_before_the_chain(node_factory: NodeFactory) -> None:
    node = node_factory()
    operator = BankClient(node.url, DEVNET_OPERATOR_API_KEY)
    operator.request(
        "POST",
        "/v1/admin/banks/FATLUS33/limits",
        {"max_per_transfer": {"USD": "100000.00"}},
        idempotency_key="limits-1",
    )
    us = node.client("FATLUS33")
    big = us.send("RHNLDEFF", "USD", "100000.01", "EUR")
    ok = us.send("RHNLDEFF", "USD", "100000.00", "EUR")
    assert us.wait(ok["id"])["status"] == "FINAL"
    with pytest.raises(NodeError) as err:
        us.wait(big["id"])
    assert err.value.code == "limit_per_transfer"


def test_a_minimum_no_rate_in_the_band_could_meet_is_refused_at_intake(node_factory: NodeFactory) -> None:
    node = node_factory()
    us = node.client("FATLUS33")
    vault = node.chain.network.vault
    before = vault.balance(us.address, "USD")
    with pytest.raises(NodeError) as refused:
        us.send("RHNLDEFF", "USD", "1000.00", "EUR", min_buy_amount="5000.00")
    assert (refused.value.status, refused.value.code) == (422, "min_buy_unreachable")
    reference, _ = vault.reference_rate("USD", "EUR")
    band = vault.band_bps()
    best = (1000_00 * (reference + reference * band // 10_000)) // 10**18
    assert refused.value.details["best_buy_amount"] == best
    # One unit more than the best is refused too; the best itself is taken (and cannot settle: see below).
    with pytest.raises(NodeError, match="min_buy_unreachable"):
        us.send("RHNLDEFF", "USD", "1000.00", "EUR", min_buy_amount=best + 1)
    assert node.transfers() == [] and vault.balance(us.address, "USD") == before


def test_an_escrow_that_cannot_settle_is_refunded_after_its_deadline(node_factory: NodeFactory) -> None:
    node = node_factory(deadline_min_s=0, settlement="gross")
    us = node.client("FATLUS33")
    vault = node.chain.network.vault
    before = vault.balance(us.address, "USD")
    # The bank's minimum is the most a rate at the top of the vault's band would buy, with no fee:
    # the node's quotes (a spread below the mid, a fee) never reach it. It escrows, waits, and is refunded.
    reference, _ = vault.reference_rate("USD", "EUR")
    best = (1000_00 * (reference + reference * vault.band_bps() // 10_000)) // 10**18
    t = us.send("RHNLDEFF", "USD", "1000.00", "EUR", min_buy_amount=best, deadline_s=14)
    escrowed = node.wait_for(lambda: us.transfer(t["id"])["status"] == "ESCROWED", 30, "the escrow")
    assert escrowed
    assert vault.balance(us.address, "USD").escrowed == before.escrowed + 1000_00
    # The reason is written by the pipeline's round after the watcher's: read once it has looked.
    assert node.wait_for(
        lambda: "below the bank's minimum" in us.transfer(t["id"])["status_reason"], 30, "the reason it waits"
    )
    refunded = us.wait(t["id"], status="REFUNDED", timeout_s=60)
    assert [h["status"] for h in refunded["history"]] == ["RECEIVED", "ESCROWED", "REFUNDED"]
    assert refunded["status_code"] == "refunded" and refunded["history"][-1]["chain"]["confirmations"] >= 3
    after = vault.balance(us.address, "USD")
    assert (after.available, after.escrowed) == (before.available, before.escrowed)


def test_with_the_chain_unreachable_transfers_wait_and_are_not_lost(node_factory: NodeFactory, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    down = node_factory(url, rpc_url="http://127.0.0.1:9")  # nothing listens on the discard port
    us = down.client("FATLUS33")
    # With no chain to read the nonce bitmap from, pick a nonce no other test of this chain used.
    t = us.send("RHNLDEFF", "USD", "10.00", "EUR", nonce=time.time_ns())
    import httpx

    ready = httpx.get(down.url + "/readyz")
    assert ready.status_code == 503 and ready.json()["checks"]["chain_reachable"] is False
    assert us.transfer(t["id"])["status"] == "RECEIVED"
    down.stop()
    up = node_factory(url)
    assert up.client("FATLUS33").wait(t["id"])["status"] == "FINAL"
    with up.svc.store.transaction(write=False) as s:
        assert {tx.status for tx in s.scalars(select(ChainTx))} <= {"confirmed", "mined"}
