"""FINAL by the chain's finalized block (CORRIDOR_NODE_FINALITY=finalized), as on Besu/QBFT and
post-merge Ethereum; anvil serves the tag (two epochs of 32 blocks behind its head)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.node.conftest import LocalNode

pytestmark = pytest.mark.devnet
K = 2


def _finalized(node: LocalNode) -> int:
    return int(node.chain.network.w3.eth.get_block("finalized")["number"])


def test_with_the_finalized_rule_a_settlement_is_final_only_once_the_chain_finalizes_it(
    node_factory: Callable[..., LocalNode],
) -> None:
    node = node_factory(finality="finalized", confirmations=K, poll_interval_s=0.1)
    us = node.client("FATLUS33")
    w3 = node.chain.network.w3
    t = us.send("RHNLDEFF", "USD", "320.00", "EUR")
    settled = node.wait_for(lambda: (s := us.transfer(t["id"]))["status"] == "SETTLED" and s, 30, "SETTLED")
    block = settled["history"][-1]["chain"]["block_number"]
    node.wait_for(lambda: w3.eth.block_number >= block + K + 2, 30, "blocks past k confirmations")
    time.sleep(0.5)  # a few watcher rounds: under the confirmations rule it would be FINAL now
    assert _finalized(node) < block
    assert us.transfer(t["id"])["status"] == "SETTLED"
    assert w3.provider.make_request("anvil_mine", [hex(block + 70 - w3.eth.block_number)]).get("error") is None  # type: ignore[arg-type]
    assert _finalized(node) >= block
    final = us.wait(t["id"], timeout_s=30, poll_s=0.1)
    assert final["status"] == "FINAL"
    assert "finalized (the chain's finalized block is" in final["history"][-1]["reason"]
    assert "FINAL once the chain finalizes its block" in final["history"][-2]["reason"]


def test_a_chain_without_a_finalized_block_is_a_named_error_and_nothing_becomes_final() -> None:
    from node.chain.finality import Finality
    from settlement.errors import ChainError

    class NoTag:
        def call(self, method: str, params: list[object]) -> object:
            assert (method, params) == ("eth_getBlockByNumber", ["finalized", False])
            return None

    with pytest.raises(ChainError, match="serves no finalized block"):
        Finality("finalized", 3).cutoff(NoTag(), 100)  # type: ignore[arg-type]
    assert Finality("confirmations", 3).cutoff(NoTag(), 100) == 98  # type: ignore[arg-type]
