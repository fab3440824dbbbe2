"""The FX engine against the deployed vault: its signed quotes settle with the figures they
state, a tampered one is refused, and the publisher sends only what changed."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import subprocess
import sys

import pytest

from fx.pricing import Pricing
from fx.publisher import publish_reference_rates
from fx.quotes import LockedQuote, QuoteEngine, QuoteSigner
from fx.rates import Rate
from scripts.network import Network
from settlement.chain.vault import SignedQuote
from settlement.eip712 import Domain, Instruction, new_uetr
from settlement.errors import contract_error_class
from tests.conftest import ECB_RATES, ROOT, chain_time, next_slot

pytestmark = pytest.mark.devnet

_nonce = iter(range(10_000, 20_000))


def engine(network: Network) -> QuoteEngine:
    signer = QuoteSigner(Domain(network.manifest.chain_id, network.manifest.vault), network.keys["oracle"])
    return QuoteEngine(
        ECB_RATES, Pricing.load(), network.lps()[0].address, signer, clock=lambda: chain_time(network.w3)
    )


def escrow_for(network: Network, q: LockedQuote, debtor: int = 0, creditor: int = 1) -> tuple[int, Instruction]:
    """Escrow an instruction that sells the quote's sell amount and asks for its buy amount."""
    d, c = network.banks()[debtor], network.banks()[creditor]
    ins = Instruction(
        id=new_uetr(),
        nonce=next(_nonce),
        debtor=d.address,
        creditor=c.address,
        sell_currency=q.sell_currency.encode(),
        sell_amount=q.sell_amount,
        buy_currency=q.buy_currency.encode(),
        min_buy_amount=q.buy_amount,
        deadline=chain_time(network.w3) + 3600,
        details_hash=os.urandom(32),
    )
    slot = next_slot()
    network.vault.escrow(network.sender("relayer"), slot, network.vault.sign_instruction(ins, d.key))
    return slot, ins


def settled_event(network: Network, receipt: object) -> dict[str, object]:
    (event,) = network.vault.contract.events.InstructionSettled().process_receipt(receipt)
    return dict(event["args"])


def onchain(q: LockedQuote) -> SignedQuote:
    assert q.signature is not None
    return SignedQuote(q.onchain(), q.signature)


def test_sell_fixed_quote_settles_with_its_figures(network: Network) -> None:
    q = engine(network).quote_sell("USD", "250000.00", "EUR")
    slot, ins = escrow_for(network, q)
    receipt = network.vault.settle(network.sender("relayer"), slot, ins.terms(), onchain(q))
    event = settled_event(network, receipt)
    assert (event["buyAmount"], event["fee"]) == (q.buy_amount, q.fee)


def test_buy_fixed_quote_delivers_exactly_the_amount_on_chain(network: Network) -> None:
    # Lion City Bank (SG) pays First Atlantic (US) exactly 1,000,000 JPY from SGD.
    q = engine(network).quote_buy("SGD", "JPY", "1000000")
    slot, ins = escrow_for(network, q, debtor=3, creditor=0)
    creditor = network.banks()[0].address
    before = network.vault.balance(creditor, "JPY").available
    receipt = network.vault.settle(network.sender("relayer"), slot, ins.terms(), onchain(q))
    assert settled_event(network, receipt)["buyAmount"] == 1_000_000
    assert network.vault.balance(creditor, "JPY").available - before == 1_000_000


def test_tampered_quote_is_refused_by_the_contract(network: Network) -> None:
    q = engine(network).quote_sell("GBP", "100000.00", "SGD")
    better = dataclasses.replace(q, rate=q.rate + q.rate // 1000)  # the bank "improves" its rate by 10 bps
    slot, ins = escrow_for(network, better, debtor=2, creditor=3)
    with pytest.raises(contract_error_class("QuoteSignerInvalid")) as info:
        network.vault.settle(network.sender("relayer"), slot, ins.terms(), onchain(better))
    assert info.value.fields["quoteHash"] == better.quote_hash
    assert info.value.fields["signer"] != network.manifest.roles["oracle"]
    # The untampered quote settles the same escrow.
    network.vault.settle(network.sender("relayer"), slot, ins.terms(), onchain(q))


class OneChanged:
    """ECB rates, except one pair moved by 1%."""

    name = "moved"

    def rate(self, sell: str, buy: str, now: dt.datetime) -> Rate:
        rate = ECB_RATES.rate(sell, buy, now)
        return dataclasses.replace(rate, rate=rate.rate * 101 // 100) if (sell, buy) == ("USD", "CHF") else rate


def test_publisher_sends_only_what_changed_in_one_transaction(network: Network) -> None:
    vault, oracle = network.vault, network.sender("oracle")
    now = dt.datetime.fromtimestamp(chain_time(network.w3), dt.UTC)
    pairs = len(network.manifest.assets) * (len(network.manifest.assets) - 1)

    block = network.w3.eth.block_number
    same = publish_reference_rates(vault, oracle, ECB_RATES, now)
    assert (same.published, same.unchanged, same.tx_hash) == ([], pairs, None)
    assert network.w3.eth.block_number == block, "nothing changed, yet a transaction was sent"
    assert same.summary() == f"no reference rate changed ({pairs} unchanged)"

    moved = publish_reference_rates(vault, oracle, OneChanged(), now)
    assert [(r.sell, r.buy) for r in moved.published] == [("USD", "CHF")] and moved.unchanged == pairs - 1
    receipt = network.w3.eth.get_transaction_receipt(moved.tx_hash)  # type: ignore[arg-type]
    events = vault.contract.events.ReferenceRatePublished().process_receipt(receipt)
    assert [(e["args"]["sellCurrency"], e["args"]["rate"]) for e in events] == [(b"USD", moved.published[0].rate)]
    assert vault.reference_rate("USD", "CHF")[0] == moved.published[0].rate
    assert moved.summary().startswith("published 1 reference rates (ECB reference rate, fixing of ")

    # Back to the ECB figure, and every point refreshed when asked to (one transaction).
    back = publish_reference_rates(vault, oracle, ECB_RATES, now, refresh_after_s=0)
    assert len(back.published) == pairs and back.tx_hash is not None


def test_publish_rates_script_reports_nothing_to_publish(network: Network, tmp_path: object) -> None:
    manifest = tmp_path / "manifest.json"  # type: ignore[operator]
    network.manifest.save(manifest)
    url = network.w3.provider.endpoint_uri  # type: ignore[attr-defined]
    result = subprocess.run(
        [sys.executable, "scripts/publish_rates.py", "--devnet", "--rpc-url", url, "--manifest", str(manifest)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT), "CORRIDOR_FX_PROVIDERS": "ecb"},
    )
    assert result.returncode == 0, result.stderr
    assert "nothing to publish" in result.stdout
