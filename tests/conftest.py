"""Shared fixtures: a devnet started by the test session on a free port, and a deployed
network with the demo participants on it."""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from web3 import Web3

from fx.config import DEFAULT_MAX_AGE_S
from fx.providers import CompositeProvider, EcbProvider, Preference
from scripts.devnet import Devnet
from scripts.network import Network, build_network
from settlement.chain import connect
from settlement.chain.vault import SignedInstruction, SignedQuote
from settlement.eip712 import Instruction, Quote, new_uetr


@pytest.fixture(scope="session")
def devnet() -> Iterator[Devnet]:
    with Devnet() as d:
        yield d


@pytest.fixture(scope="session")
def w3(devnet: Devnet) -> Web3:
    return connect(devnet.url)


# Tests price from the offline ECB history only, so that they never depend on a live feed.
ECB_RATES = CompositeProvider([Preference(EcbProvider(), DEFAULT_MAX_AGE_S["devnet"]["ecb"])])


@pytest.fixture(scope="session")
def network(w3: Web3, tmp_path_factory: pytest.TempPathFactory) -> Network:
    return build_network(w3, tmp_path_factory.mktemp("net") / "manifest.json", rates=ECB_RATES)


_nonces: dict[str, itertools.count[int]] = {}
_slots = itertools.count(1000)


def next_slot() -> int:
    return next(_slots)


def chain_time(w3: Web3) -> int:
    return int(w3.eth.get_block("latest")["timestamp"])


def make_instruction(
    network: Network,
    debtor: int = 0,
    creditor: int = 1,
    sell: str = "USD",
    buy: str = "EUR",
    amount: int = 1_000_00,
    min_buy: int = 0,
    deadline_s: int = 3600,
) -> SignedInstruction:
    banks = network.banks()
    d, c = banks[debtor], banks[creditor]
    counter = _nonces.setdefault(d.address, itertools.count())
    ins = Instruction(
        id=new_uetr(),
        nonce=next(counter),
        debtor=d.address,
        creditor=c.address,
        sell_currency=sell.encode(),
        sell_amount=amount,
        buy_currency=buy.encode(),
        min_buy_amount=min_buy,
        deadline=chain_time(network.w3) + deadline_s,
        details_hash=os.urandom(32),
    )
    return network.vault.sign_instruction(ins, d.key)


def make_quote(
    network: Network, sell: str = "USD", buy: str = "EUR", fee_bps: int = 5, expiry_s: int = 300
) -> SignedQuote:
    rate = network.vault.contract.functions.referenceRate(sell.encode(), buy.encode()).call()[0]
    quote = Quote(
        sell_currency=sell.encode(),
        buy_currency=buy.encode(),
        rate=rate,
        fee_bps=fee_bps,
        liquidity_provider=network.lps()[0].address,
        expiry=chain_time(network.w3) + expiry_s,
    )
    return network.vault.sign_quote(quote, network.keys["oracle"])


def advance_time(w3: Web3, seconds: int) -> None:
    """Move the devnet's clock (tests only: anvil's evm_increaseTime)."""
    w3.provider.make_request("evm_increaseTime", [seconds])  # type: ignore[arg-type]
    w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    time.sleep(0)


ROOT = Path(__file__).resolve().parent.parent
