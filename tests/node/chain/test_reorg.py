"""A chain reorganisation undoes a settlement: the transfer is not FINAL before k confirmations,
steps back, is sent again and ends FINAL once, on the chain that won."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hexbytes import HexBytes

from settlement.chain.events import topic
from settlement.eip712 import uuid_to_id
from tests.node.conftest import LocalNode

pytestmark = pytest.mark.devnet
K = 4
SETTLED_TOPICS = [topic("InstructionSettled"), topic("InstructionNetted")]


def test_a_reorg_before_k_confirmations_is_followed_and_recovered(node_factory: Callable[..., LocalNode]) -> None:
    node = node_factory(confirmations=K, poll_interval_s=0.1)
    us = node.client("FATLUS33")
    w3 = node.chain.network.w3
    t = us.send("RHNLDEFF", "USD", "750.00", "EUR")
    settled = node.wait_for(lambda: (s := us.transfer(t["id"]))["status"] == "SETTLED" and s, 30, "SETTLED")
    first = settled["history"][-1]["chain"]
    assert first["confirmations"] < K
    depth = w3.eth.block_number - first["block_number"] + 1
    # anvil_reorg replaces the last `depth` blocks with empty ones: the settlement is gone.
    node.chain.devnet.reorg(depth)
    assert us.transfer(t["id"])["status"] != "FINAL"
    final = us.wait(t["id"], timeout_s=60, poll_s=0.1)
    steps = [(h["status"], h["code"]) for h in final["history"]]
    assert steps.count(("FINAL", "final")) == 1 and steps[-1] == ("FINAL", "final")
    assert any(code == "reorg" for _, code in steps), steps
    assert steps.index(next(s for s in steps if s[1] == "reorg")) > steps.index(("SETTLED", "settled"))
    # The settlement the node calls final (a net cycle's, by default) is in the chain that won, exactly once.
    chain_ref = final["history"][-1]["chain"]
    receipt = w3.eth.get_transaction_receipt(HexBytes(chain_ref["tx_hash"]))
    assert receipt["blockNumber"] == chain_ref["block_number"]
    logs = w3.eth.get_logs(
        {
            "address": node.chain.network.manifest.vault,
            "fromBlock": 0,
            "toBlock": "latest",
            "topics": [SETTLED_TOPICS, "0x" + uuid_to_id(t["id"]).hex()],
        }
    )  # type: ignore[typeddict-item]
    assert len(logs) == 1


def test_events_a_log_read_missed_are_read_again_once_the_transaction_is_deep(
    node_factory: Callable[..., LocalNode], caplog: pytest.LogCaptureFixture
) -> None:
    """A node may answer eth_getLogs at its head before it has indexed the block: the watcher's
    first read of the settlement comes back without it, and the transfer still ends FINAL."""
    node = node_factory(poll_interval_s=0.1)
    assert node.worker is not None
    rpc = node.worker.watcher.rpc
    real = rpc.call
    dropped: list[str] = []
    target: list[str] = []  # the transfer's id topic, once sent

    def call(method: str, params: Any) -> Any:
        result = real(method, params)
        if method == "eth_getLogs" and target and not dropped:
            kept = [e for e in result if not (e["topics"][0] in SETTLED_TOPICS and e["topics"][1] == target[0])]
            if len(kept) < len(result):
                dropped.extend(e["transactionHash"] for e in result if e not in kept)
                result = kept
        return result

    rpc.call = call  # type: ignore[method-assign]
    us = node.client("FATLUS33")
    t = us.send("RHNLDEFF", "USD", "640.00", "EUR")
    target.append("0x" + uuid_to_id(t["id"]).hex())
    final = us.wait(t["id"], timeout_s=60, poll_s=0.1)
    assert dropped, "the settlement's log was never read"
    steps = [(h["status"], h["code"]) for h in final["history"]]
    assert steps == [("RECEIVED", ""), ("QUEUED", "queued"), ("SETTLED", "settled"), ("FINAL", "final")]
    assert final["history"][2]["chain"]["tx_hash"] == dropped[0]
    assert any("reading again from block" in r.getMessage() for r in caplog.records)
