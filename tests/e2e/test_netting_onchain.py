"""Net settlement cycles on a devnet: the gridlock ring that gross cannot settle, and a short
realistic day whose cycles the chain books exactly as the gridlock resolution's ledger says
(short versions of scripts/bench_netting.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.bench_netting import Bench, gridlock_ring, realistic_day
from scripts.devnet import Devnet
from scripts.network import build_network
from settlement.chain import connect
from tests.conftest import ECB_RATES

pytestmark = pytest.mark.devnet


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bench]:
    with Devnet() as devnet:
        manifest = tmp_path_factory.mktemp("netting") / "manifest.json"
        yield Bench(build_network(connect(devnet.url), Path(manifest), rates=ECB_RATES))


def test_a_gridlocked_ring_settles_in_one_cycle_and_not_gross(bench: Bench) -> None:
    ring = gridlock_ring(bench, 4, "T")
    assert ring["gross_settled"] == 0 and ring["gross_refusals"] == ["InsufficientAvailable"]
    assert ring["net_settled"] == 4 and ring["transactions"] == 1
    assert ring["liquidity_held_over_owed"] == pytest.approx(0.1, abs=0.001)


def test_a_short_day_nets_and_the_chain_matches_the_ledger(bench: Bench) -> None:
    day = realistic_day(bench, 240, funded=0.2, seed=5)
    assert day["chain_matches_ledger"] is True
    net = day["net"]
    assert isinstance(net, dict) and net["settled"] > 0 and net["transactions"] < net["settled"]
    saving = day["liquidity_saving"]
    assert isinstance(saving, float) and 0 < saving < 1
