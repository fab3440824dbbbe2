"""Net settlement through the bank API, on a devnet of this module's own: a gridlock ring that
no bank could settle gross settles in one cycle; a queued transfer waits with its shortfall and
settles when an incoming payment covers it; one that outlives its deadline in the queue is
rejected without reaching the chain; a bank's queue is bounded."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest
from sqlalchemy import select

from node.bank.client import BankClient, NodeError
from node.store.models import ChainEvent, Transfer
from settlement.chain import Sender
from settlement.conversion import convert
from tests.node.conftest import LocalNode

pytestmark = pytest.mark.devnet
NodeFactory = Callable[..., LocalNode]


def _keep_only(node: LocalNode, bic: str, currency: str, keep_minor: int) -> None:
    """The bank withdraws all but ``keep_minor`` of ``currency`` from the vault."""
    p = next(p for p in node.chain.network.participants if p.bic == bic)
    vault = node.chain.network.vault
    have = vault.balance(p.address, currency).available
    Sender.from_key(vault.w3, p.key).transact(
        vault.contract.functions.withdraw(currency.encode(), have - keep_minor, p.address)
    )


def _converted(node: LocalNode, sell: str, amount: int, buy: str) -> int:
    vault = node.chain.network.vault
    assets = node.chain.network.manifest.assets
    rate = vault.reference_rate(sell, buy)[0]
    return convert(amount, rate, 0, assets[sell].decimals, assets[buy].decimals).buy_amount


def _chain_events(node: LocalNode, transfer_id: str) -> list[str]:
    with node.svc.store.transaction(write=False) as s:
        return list(s.scalars(select(ChainEvent.name).where(ChainEvent.transfer_id == transfer_id)))


def test_a_banks_queue_is_bounded(node_factory: NodeFactory) -> None:
    node = node_factory(worker=False, queue_per_bank_max=2)
    us = node.client("FATLUS33")
    for _ in range(2):
        us.send("RHNLDEFF", "USD", "10.00", "EUR")
    with pytest.raises(NodeError) as refused:
        us.send("RHNLDEFF", "USD", "10.00", "EUR")
    assert (refused.value.status, refused.value.code) == (429, "queue_full")
    assert refused.value.details == {"waiting": 2, "queue_max": 2}
    assert len(node.transfers()) == 2


def test_a_gridlocked_ring_settles_in_one_cycle(node_factory: NodeFactory) -> None:
    """Each bank holds a tenth of what it owes the next: gross none could pay; net all three settle at once."""
    node = node_factory(poll_interval_s=0.1)
    usd = 10_000_00
    eur = _converted(node, "USD", usd, "EUR")
    gbp = _converted(node, "EUR", eur, "GBP")
    ring = (("FATLUS33", "USD", usd, "RHNLDEFF", "EUR"), ("RHNLDEFF", "EUR", eur, "THMSGB2L", "GBP"))
    ring += (("THMSGB2L", "GBP", gbp, "FATLUS33", "USD"),)
    for debtor, sell, amount, _, _ in ring:
        _keep_only(node, debtor, sell, amount // 10)
    first, *rest = ring
    debtor, sell, amount, creditor, buy = first
    sent = [node.client(debtor).send(creditor, sell, amount, buy)]
    waiting = node.wait_for(
        lambda: (t := node.client(debtor).transfer(sent[0]["id"]))["status_code"] == "insufficient_cover" and t,
        30,
        "the first to wait for cover",
    )
    assert waiting["status"] == "QUEUED" and "short" in waiting["status_reason"]
    for debtor, sell, amount, creditor, buy in rest:
        sent.append(node.client(debtor).send(creditor, sell, amount, buy))
    finals = [node.client(leg[0]).wait(t["id"], timeout_s=90, poll_s=0.2) for leg, t in zip(ring, sent, strict=True)]
    for t in finals:
        assert [h["status"] for h in t["history"]][-3:] == ["QUEUED", "SETTLED", "FINAL"]
    settled_in = {t["history"][-2]["chain"]["tx_hash"] for t in finals}
    assert len(settled_in) == 1, "one cycle, one transaction"
    assert all(_chain_events(node, t["id"]) == ["InstructionNetted"] for t in finals)


def test_a_queued_transfer_settles_when_an_incoming_payment_covers_it(node_factory: NodeFactory) -> None:
    node = node_factory(poll_interval_s=0.1)
    sg, gb = node.client("LNCTSGSG"), node.client("THMSGB2L")
    _keep_only(node, "LNCTSGSG", "SGD", 0)
    out = sg.send("FATLUS33", "SGD", "1000.00", "JPY")
    waiting = node.wait_for(
        lambda: (t := sg.transfer(out["id"]))["status_code"] == "insufficient_cover" and t, 30, "insufficient_cover"
    )
    assert waiting["status"] == "QUEUED"
    assert "LNCTSGSG has 0 SGD" in waiting["status_reason"] and "100000 short" in waiting["status_reason"]
    incoming = _converted(node, "SGD", 1_200_00, "USD")
    paid_in = gb.send("LNCTSGSG", "USD", Decimal(incoming) / 100, "SGD")
    assert sg.wait(out["id"], timeout_s=90, poll_s=0.2)["status"] == "FINAL"
    assert gb.wait(paid_in["id"], timeout_s=90, poll_s=0.2)["status"] == "FINAL"


def test_a_transfer_that_outlives_its_deadline_in_the_queue_is_rejected_off_chain(node_factory: NodeFactory) -> None:
    node = node_factory(poll_interval_s=0.1, deadline_min_s=0)
    de = node.client("RHNLDEFF")
    t = de.send("FATLUS33", "EUR", "9000000.00", "USD", deadline_s=20)  # more than it holds
    with pytest.raises(NodeError) as ended:
        de.wait(t["id"], timeout_s=90, poll_s=0.5)
    assert ended.value.code == "deadline_passed"
    got = de.transfer(t["id"])
    assert [h["status"] for h in got["history"]] == ["RECEIVED", "QUEUED", "REJECTED"]
    assert _chain_events(node, t["id"]) == []


def test_the_operator_sees_every_queue(node_factory: NodeFactory) -> None:
    node = node_factory(worker=False)
    us, de = node.client("FATLUS33"), node.client("RHNLDEFF")
    us.send("RHNLDEFF", "USD", "10.00", "EUR")
    us.send("THMSGB2L", "USD", "5.00", "GBP")
    de.send("FATLUS33", "EUR", "7.00", "USD")
    with node.svc.store.transaction() as s:  # as the escrow stage would, without a chain round
        for t in s.scalars(select(Transfer)):
            t.status = "QUEUED"
    operator = BankClient(node.url, node.settings.operator_api_key)
    page = operator.request("GET", "/v1/admin/queues")["data"]
    assert [(q["bic"], q["queued"]) for q in page] == [("FATLUS33", 2), ("RHNLDEFF", 1)]
    assert page[0]["by_currency"] == [{"currency": "USD", "amount": "1500", "transfers": 2}]
    with pytest.raises(NodeError) as refused:
        us.request("GET", "/v1/admin/queues")
    assert refused.value.status == 403
