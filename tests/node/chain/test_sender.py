"""The transaction sender against a devnet: nonces under a lock, fee bumps, lost answers, dropped nonces."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from eth_account import Account
from hexbytes import HexBytes
from web3.exceptions import TransactionNotFound

from node import metrics
from node.chain.sender import SenderSettings, TxSender, bumped
from node.store.db import Store
from node.store.models import ChainTx
from settlement.chain.keys import devnet_key
from tests.node.conftest import Chain

pytestmark = pytest.mark.devnet
KEY = devnet_key(17)  # an account no other test sends from


@pytest.fixture
def sender(chain: Chain, tmp_path: Path) -> Iterator[TxSender]:
    store = Store(f"sqlite:///{tmp_path / 'sender.db'}")
    store.migrate()
    yield TxSender(chain.network.w3, KEY, store, SenderSettings(confirmations=1, stuck_after_s=0.5))
    store.dispose()


def _prepare(sender: TxSender, fees: dict[str, int] | None = None) -> int:
    with sender.store.transaction() as session:
        tx = sender.prepare(session, "test", sender.address, b"", 21_000, {}, fees or sender.fees())
        session.flush()
        return tx.id


def _row(sender: TxSender, tx_id: int) -> ChainTx:
    with sender.store.transaction(write=False) as session:
        row = session.get(ChainTx, tx_id)
        assert row is not None
        return row


def _until(sender: TxSender, tx_id: int, statuses: set[str], timeout_s: float = 20) -> ChainTx:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        sender.poll(sender.w3.eth.block_number)
        row = _row(sender, tx_id)
        if row.status in statuses:
            return row
        time.sleep(0.3)
    raise AssertionError(f"tx {tx_id} is {_row(sender, tx_id).status}, not {statuses}")


def test_bumped_fees_are_at_least_an_eighth_higher_and_capped() -> None:
    fees = {"maxFeePerGas": 1_000, "maxPriorityFeePerGas": 100}
    assert bumped(fees, {}, 10**18) == {"maxFeePerGas": 1_125, "maxPriorityFeePerGas": 113}
    assert bumped(fees, {"maxFeePerGas": 5_000}, 10**18)["maxFeePerGas"] == 5_000
    assert bumped(fees, {}, 1_100) == {"maxFeePerGas": 1_100, "maxPriorityFeePerGas": 113}
    assert bumped({"gasPrice": 7}, {}, 10**18) == {"gasPrice": 8}


def test_nonces_are_handed_out_once_each_under_concurrency(sender: TxSender) -> None:
    start = sender.w3.eth.get_transaction_count(sender.address, "pending")
    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(lambda _: _prepare(sender), range(20)))
    nonces = sorted(_row(sender, i).nonce for i in ids)
    assert nonces == list(range(start, start + 20))
    for i in ids:
        sender.broadcast(i)
    for i in ids:
        _until(sender, i, {"confirmed"})


def test_a_stuck_transaction_is_replaced_with_higher_fees(sender: TxSender) -> None:
    tx_id = _prepare(sender)
    first_fee = _row(sender, tx_id).request["maxFeePerGas"]
    rpc = sender.w3.provider.make_request
    rpc("evm_setIntervalMining", [0])  # type: ignore[arg-type]  # no blocks: the transaction waits in the pool
    try:
        sender.broadcast(tx_id)
        time.sleep(1)
        sender.poll(sender.w3.eth.block_number)  # stuck for longer than stuck_after_s: replaced
        replaced = _row(sender, tx_id)
        assert replaced.status == "sent" and replaced.bumps == 1 and len(replaced.hashes) == 2
    finally:
        rpc("evm_setIntervalMining", [1])  # type: ignore[arg-type]
    done = _until(sender, tx_id, {"confirmed"})
    assert done.bumps >= 1 and len(done.hashes) == done.bumps + 1 and done.tx_hash == done.hashes[-1]
    assert done.request["maxFeePerGas"] * 8 >= first_fee * 9
    receipt = sender.w3.eth.get_transaction_receipt(HexBytes(done.tx_hash))
    assert receipt["status"] == 1
    with pytest.raises(TransactionNotFound):
        sender.w3.eth.get_transaction_receipt(HexBytes(done.hashes[0]))


def test_a_transaction_the_node_dropped_is_sent_again_as_it_was(sender: TxSender) -> None:
    # anvil drops a transaction that did not fit a full block; waiting for stuck_after_s stalled
    # every later nonce behind it.
    sender.settings = SenderSettings(confirmations=1, stuck_after_s=60, lookup_after_s=0.2)
    rpc = sender.w3.provider.make_request
    rpc("evm_setIntervalMining", [0])  # type: ignore[arg-type]  # no blocks: it waits in the pool
    try:
        tx_id = _prepare(sender)
        sender.broadcast(tx_id)
        sender.poll(sender.w3.eth.block_number)  # records it as sent
        row = _row(sender, tx_id)
        assert row.status == "sent"
        time.sleep(0.3)
        sender.poll(sender.w3.eth.block_number)
        assert rpc("eth_getTransactionByHash", [row.tx_hash])["result"] is not None  # type: ignore[arg-type]
        rpc("anvil_dropTransaction", [row.tx_hash])  # type: ignore[arg-type]
        assert rpc("eth_getTransactionByHash", [row.tx_hash])["result"] is None  # type: ignore[arg-type]
        time.sleep(0.3)
        sender.poll(sender.w3.eth.block_number)  # unknown to the node: broadcast again
        assert rpc("eth_getTransactionByHash", [row.tx_hash])["result"] is not None  # type: ignore[arg-type]
    finally:
        rpc("evm_setIntervalMining", [1])  # type: ignore[arg-type]
    done = _until(sender, tx_id, {"confirmed"})
    assert done.hashes == [row.tx_hash] and done.bumps == 0


def test_a_send_whose_answer_was_lost_is_found_by_its_hash_not_sent_twice(sender: TxSender) -> None:
    # Patient here: a replacement (after stuck_after_s) would rightly carry another hash.
    sender.settings = SenderSettings(confirmations=1, stuck_after_s=60)
    before = sender.w3.eth.get_transaction_count(sender.address)
    tx_id = _prepare(sender)
    row = _row(sender, tx_id)
    # The transaction reaches the chain, but the node never hears back (its row stays "signed").
    sender.w3.eth.send_raw_transaction(HexBytes(row.raw))
    done = _until(sender, tx_id, {"confirmed"})
    assert done.tx_hash == row.tx_hash and done.hashes == [row.tx_hash] and done.bumps == 0
    assert sender.w3.eth.get_transaction_count(sender.address) == before + 1


def _spend_nonce(sender: TxSender, nonce: int, wait: bool = True) -> HexBytes:
    """Someone else with the relayer's key (another worker, an operator by hand) uses ``nonce``."""
    other = Account.from_key(KEY).sign_transaction(
        {
            "to": sender.address,
            "value": 1,
            "gas": 21_000,
            "nonce": nonce,
            "chainId": sender.chain_id,
            "maxFeePerGas": 10**12,
            "maxPriorityFeePerGas": 10**10,
        }
    )
    sender.w3.eth.send_raw_transaction(other.raw_transaction)
    if wait:
        sender.w3.eth.wait_for_transaction_receipt(other.hash, timeout=20)
    return HexBytes(other.hash)


def test_a_never_sent_transaction_whose_nonce_was_taken_is_signed_again_with_the_next_nonce(
    sender: TxSender,
) -> None:
    # A stale counter (a worker back for a new term) signed a nonce the chain has used: the
    # node answers "nonce too low", and the transaction, never sent, is signed again at once
    # instead of being dropped with the transfers behind it.
    resigned = metrics.TXS_RESIGNED._value.get()
    tx_id = _prepare(sender)
    row = _row(sender, tx_id)
    _spend_nonce(sender, row.nonce)
    done = _until(sender, tx_id, {"confirmed", "dropped"})
    assert done.status == "confirmed" and done.nonce == row.nonce + 1
    assert row.tx_hash not in done.hashes  # (a fee bump after stuck_after_s may follow the new signature)
    assert metrics.TXS_RESIGNED._value.get() == resigned + 1
    with pytest.raises(TransactionNotFound):
        sender.w3.eth.get_transaction_receipt(HexBytes(row.tx_hash))


def test_a_sent_transaction_whose_nonce_went_to_another_is_dropped(sender: TxSender) -> None:
    # Once the node has accepted it, it is never signed again: its instructions go back to their
    # stage (the pipeline's release) rather than risk two transactions for them.
    rpc = sender.w3.provider.make_request
    rpc("evm_setIntervalMining", [0])  # type: ignore[arg-type]  # no blocks: it waits in the pool
    try:
        tx_id = _prepare(sender)
        sender.broadcast(tx_id)
        sender.poll(sender.w3.eth.block_number)
        row = _row(sender, tx_id)
        assert row.status == "sent"
        other = _spend_nonce(sender, row.nonce, wait=False)  # replaces it in the pool (higher fees)
    finally:
        rpc("evm_setIntervalMining", [1])  # type: ignore[arg-type]
    sender.w3.eth.wait_for_transaction_receipt(other, timeout=20)
    ended = _until(sender, tx_id, {"dropped", "confirmed"})
    assert ended.status == "dropped" and "went to another transaction" in ended.error
    assert ended.nonce == row.nonce and ended.hashes == [row.tx_hash]


def test_a_new_term_reads_the_nonce_again_after_another_worker_signed(sender: TxSender) -> None:
    # Two workers with the relayer's key on one store; the first leads, then the second, then the
    # first again: its counter from the first term is stale.
    other = TxSender(sender.w3, KEY, sender.store, sender.settings)
    first = _until(sender, _prepare(sender), {"confirmed"})
    second = _until(other, _prepare(other), {"confirmed"})
    assert second.nonce == first.nonce + 1
    resigned = metrics.TXS_RESIGNED._value.get()
    sender.new_term()
    again = _row(sender, _prepare(sender))
    assert again.nonce == second.nonce + 1
    assert _until(sender, again.id, {"confirmed"}).nonce == again.nonce
    assert metrics.TXS_RESIGNED._value.get() == resigned  # right the first time: nothing signed again
