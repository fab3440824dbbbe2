"""End to end on a devnet with interval mining: transfers through the node to FINAL."""

from __future__ import annotations

import pytest

from tests.node.conftest import LocalNode

pytestmark = pytest.mark.devnet


def test_transfers_reach_final_with_the_chain_agreeing(node_factory) -> None:  # type: ignore[no-untyped-def]
    node: LocalNode = node_factory()
    us, de = node.client("FATLUS33"), node.client("RHNLDEFF")
    before = node.chain.network.vault.balance(de.address, "EUR").available
    sent = [us.send("RHNLDEFF", "USD", "1000.00", "EUR") for _ in range(5)]
    sent += [de.send("FATLUS33", "EUR", "500.00", "USD")]
    assert all(t["status"] == "RECEIVED" for t in sent)
    finals = [us.wait(t["id"]) if t["debtor"] == us.address else de.wait(t["id"]) for t in sent]
    for t in finals:
        steps = [h["status"] for h in t["history"]]
        assert steps == ["RECEIVED", "ESCROWED", "SETTLED", "FINAL"], steps
        final = t["history"][-1]["chain"]
        assert final["confirmations"] >= 3 and final["tx_hash"].startswith("0x")
        assert t["buy_amount"] > 0 and t["fee"] >= 0
    received = sum(t["buy_amount"] for t in finals if t["buy_currency"] == "EUR")
    after = node.chain.network.vault.balance(de.address, "EUR").available
    assert after - before == received - 500_00
