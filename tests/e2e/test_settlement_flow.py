"""Escrow, settle and refund through web3.py on a devnet, with every figure checked."""

from __future__ import annotations

from pathlib import Path

import pytest
from web3 import Web3

from scripts.devnet import Devnet
from scripts.network import Network, build_network
from settlement.chain import connect
from settlement.chain.keys import ROLES, devnet_key
from settlement.chain.vault import Action
from settlement.conversion import convert
from settlement.errors import ContractError, contract_error_class
from tests.conftest import ECB_RATES, advance_time, make_instruction, make_quote, next_slot

pytestmark = pytest.mark.devnet


def _events(network: Network, receipt: object, name: str) -> list[dict[str, object]]:
    event = getattr(network.vault.contract.events, name)()
    return [dict(e["args"]) for e in event.process_receipt(receipt)]


def test_escrow_then_settle_books_every_leg(network: Network) -> None:
    vault, relayer = network.vault, network.sender("relayer")
    debtor, creditor = network.banks()[0], network.banks()[1]
    lp = network.lps()[0]
    signed = make_instruction(network, amount=250_000_00, min_buy=200_000_00)
    before = {
        "debtor": vault.balance(debtor.address, "USD"),
        "creditor": vault.balance(creditor.address, "EUR"),
        "lp_usd": vault.balance(lp.address, "USD"),
        "lp_eur": vault.balance(lp.address, "EUR"),
    }
    slot = next_slot()
    receipt = vault.escrow(relayer, slot, signed)
    (escrowed,) = _events(network, receipt, "InstructionEscrowed")
    assert escrowed["id"] == signed.instruction.id and escrowed["sellAmount"] == 250_000_00
    assert vault.balance(debtor.address, "USD").escrowed == before["debtor"].escrowed + 250_000_00

    quote = make_quote(network)
    receipt = vault.settle(relayer, slot, signed.instruction.terms(), quote)
    buy, fee = convert(250_000_00, quote.quote.rate, 5, 2, 2)
    (settled,) = _events(network, receipt, "InstructionSettled")
    assert (settled["buyAmount"], settled["fee"], settled["creditor"]) == (
        buy,
        fee,
        creditor.address,
    )
    assert vault.balance(debtor.address, "USD").available == before["debtor"].available - 250_000_00
    assert vault.balance(debtor.address, "USD").escrowed == before["debtor"].escrowed
    assert vault.balance(creditor.address, "EUR").available == before["creditor"].available + buy
    assert vault.balance(lp.address, "USD").available == before["lp_usd"].available + 250_000_00 - fee
    assert vault.balance(lp.address, "EUR").available == before["lp_eur"].available - buy
    assert vault.slot_root(relayer.address, slot) == (1).to_bytes(32, "big")


def test_refund_by_operator_and_after_deadline_by_anyone(network: Network) -> None:
    vault, relayer = network.vault, network.sender("relayer")
    debtor = network.banks()[0]
    start = vault.balance(debtor.address, "USD")

    first, second = make_instruction(network), make_instruction(network, deadline_s=60)
    slot1, slot2 = next_slot(), next_slot()
    vault.escrow(relayer, slot1, first)
    vault.escrow(relayer, slot2, second)

    stranger = network.sender(network.participants[-1].key)
    with pytest.raises(contract_error_class("RefundNotAllowed")) as info:
        vault.refund(stranger, relayer.address, slot2, second.instruction.terms())
    assert info.value.fields["caller"] == stranger.address

    receipt = vault.refund(network.sender("operator"), relayer.address, slot1, first.instruction.terms())
    assert _events(network, receipt, "InstructionRefunded")[0]["by"] == network.sender("operator").address
    advance_time(network.w3, 120)
    vault.refund(stranger, relayer.address, slot2, second.instruction.terms())
    assert vault.balance(debtor.address, "USD") == start

    with pytest.raises(contract_error_class("SlotMismatch")):
        vault.settle(relayer, slot1, first.instruction.terms(), make_quote(network))


def test_batch_escrow_and_resolve(network: Network) -> None:
    vault, relayer = network.vault, network.sender("relayer")
    batch = [make_instruction(network, debtor=i % 3, creditor=(i + 1) % 3) for i in range(6)]
    slot = next_slot()
    vault.escrow_batch(relayer, slot, batch)
    items = [(s.instruction.terms(), Action.SETTLE, 0) for s in batch]
    items[2] = (batch[2].instruction.terms(), Action.REFUND, 0)
    with pytest.raises(contract_error_class("RefundNotAllowed")):
        vault.resolve_batch(relayer, relayer.address, slot, items, [make_quote(network)])
    items[2] = (batch[2].instruction.terms(), Action.KEEP, 0)
    receipt = vault.resolve_batch(relayer, relayer.address, slot, items, [make_quote(network)])
    assert len(_events(network, receipt, "InstructionSettled")) == 5
    rest = [(s.instruction.terms(), Action.RESOLVED, 0) for s in batch]
    rest[2] = (batch[2].instruction.terms(), Action.REFUND, 0)
    vault.resolve_batch(network.sender("operator"), relayer.address, slot, rest, [])
    assert vault.slot_root(relayer.address, slot) == (1).to_bytes(32, "big")


def test_errors_are_decoded_with_their_fields(network: Network) -> None:
    vault, relayer = network.vault, network.sender("relayer")
    signed = make_instruction(network, min_buy=10**12)
    slot = next_slot()
    vault.escrow(relayer, slot, signed)
    with pytest.raises(contract_error_class("BuyAmountBelowMinimum")) as info:
        vault.settle(relayer, slot, signed.instruction.terms(), make_quote(network))
    assert isinstance(info.value, ContractError)
    assert info.value.fields["minBuyAmount"] == 10**12
    with pytest.raises(contract_error_class("InstructionNonceUsed")):
        vault.escrow(relayer, next_slot(), signed)


def test_replay_on_second_deployment_is_rejected(network: Network, tmp_path: Path) -> None:
    signed = make_instruction(network)
    second = build_network(network.w3, tmp_path / "second.json", rates=ECB_RATES)
    assert second.manifest.vault != network.manifest.vault
    with pytest.raises(contract_error_class("InstructionSignerMismatch")) as info:
        second.vault.escrow(second.sender("relayer"), next_slot(), signed)
    assert info.value.fields["debtor"] == signed.instruction.debtor


def test_replay_on_another_chain_id_is_rejected(
    network: Network, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    signed = make_instruction(network)
    with Devnet(chain_id=31338) as other:
        w3 = connect(other.url)
        # The well-known keys are refused off chain 31337 unless given explicitly, as here.
        for i, role in enumerate(ROLES):
            monkeypatch.setenv(f"CORRIDOR_{role.upper()}_KEY", devnet_key(i))
        net = build_network(w3, tmp_path / "other.json", rates=ECB_RATES)
        # Same deployer and nonce, so the same vault address: only the chain id differs.
        assert net.manifest.vault == network.manifest.vault
        with pytest.raises(contract_error_class("InstructionSignerMismatch")):
            net.vault.escrow(net.sender("relayer"), next_slot(), signed)


def test_balances_are_web3_readable(w3: Web3, network: Network) -> None:
    assert network.vault.balance(network.lps()[0].address, "JPY").available > 0
