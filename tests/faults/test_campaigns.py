"""Short versions of the fault campaigns of ``scripts/faults.py`` (the full ones print their tables).

failover: two API replicas and two workers on PostgreSQL; the leader is SIGKILLed, then the new
leader SIGSTOPped past its lease and resumed, then the next one, so that the lease returns to a
worker that led before. kill9: the API, the worker or both SIGKILLed at random and restarted.
reorgs: anvil_reorg of depth 1 to 6 under k = 7. rpc: the node's JSON-RPC through a proxy that
drops, resets, delays, truncates, answers 5xx, lags the head and empties logs, and the devnet
stopped and restarted from its state. Each under load: nothing lost, nothing duplicated,
reconciliation and the audit clean, no 5xx.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scripts import faults
from tests.stores import POSTGRES_URL

pytestmark = [pytest.mark.devnet, pytest.mark.slow]
LEASE_S = 4.0


def _run(tmp_path: Path, *argv: str) -> dict[str, object]:
    out = tmp_path / "figures.json"
    status = faults.main([*argv, "--json", str(out), "--keep", str(tmp_path / "data")])
    figures = json.loads(out.read_text())
    assert status == 0, figures
    return dict(figures)


@pytest.mark.skipif(not POSTGRES_URL, reason="CORRIDOR_TEST_POSTGRES_URL not set (.ci/run sets it)")
def test_failover_under_load_takes_over_within_the_lease_and_loses_nothing(tmp_path: Path) -> None:
    figures = _run(
        tmp_path,
        "failover",
        *("--transfers", "600", "--rate", "12", "--faults", "3", "--every-s", "4", "--lease-s", str(LEASE_S)),
    )
    rows = figures["faults"]
    assert isinstance(rows, list) and [r["fault"] for r in rows] == ["SIGKILL", "SIGSTOP", "SIGSTOP"]
    summary = figures["summary"]
    assert isinstance(summary, dict)
    assert summary["lost"] == 0 and summary["duplicated"] == 0 and summary["responses_5xx"] == 0
    assert summary["accepted"] == 600 == summary["terminal"]
    epochs = [r["epoch"] for r in rows]
    assert epochs == sorted(epochs) and len(set(epochs)) == 3  # each takeover a new term
    assert rows[2]["led_before"]  # the lease came back to a worker that had led
    for row in rows:
        assert row["takeover_s"] <= LEASE_S + 2.0, row  # the lease, a round, and this test's polling


def test_kill9_of_the_api_and_the_worker_under_load_loses_nothing(tmp_path: Path) -> None:
    figures = _run(tmp_path, "kill9", *("--transfers", "400", "--rate", "8", "--faults", "4", "--every-s", "4"))
    summary = figures["summary"]
    assert isinstance(summary, dict) and summary["faults"] == 4
    assert summary["lost"] == 0 and summary["duplicated"] == 0 and summary["responses_5xx"] == 0
    assert summary["accepted"] == 400 == summary["terminal"]


def test_reorganisations_under_load_never_undo_a_final_settlement(tmp_path: Path) -> None:
    figures = _run(tmp_path, "reorgs", *("--transfers", "300", "--rate", "10", "--faults", "12", "--every-s", "1"))
    rows, summary = figures["faults"], figures["summary"]
    assert isinstance(rows, list) and isinstance(summary, dict) and summary["faults"] == 12
    assert all(r["final_undone"] == 0 for r in rows)
    assert {r["depth"] for r in rows} <= set(range(1, 7))
    assert summary["lost"] == 0 and summary["duplicated"] == 0 and summary["accepted"] == 300 == summary["terminal"]


def test_rpc_faults_and_a_chain_outage_lose_nothing(tmp_path: Path) -> None:
    figures = _run(tmp_path, "rpc", *("--transfers", "400", "--rate", "10", "--fault-rate", "0.15", "--outage-s", "8"))
    rows, summary = figures["faults"], figures["summary"]
    assert isinstance(rows, list) and isinstance(summary, dict)
    injected = {r["fault"]: r["injected"] for r in rows}
    assert injected.pop("devnet stopped") == 1
    assert sum(injected.values()) >= 10 and len(injected) >= 4, injected
    assert summary["lost"] == 0 and summary["duplicated"] == 0 and summary["responses_5xx"] == 0
    assert summary["accepted"] == 400 == summary["terminal"]
