"""schemathesis against the node's own OpenAPI document, with a bank's, the operator's and the
auditor's keys: every operation, every check, a bounded number of cases (the full run with at
least 100 cases an operation is ``python -m scripts.fuzz_api``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from node.config import DEVNET_AUDITOR_API_KEY, DEVNET_OPERATOR_API_KEY
from scripts.fuzz_api import fuzz
from tests.node.conftest import LocalNode

pytestmark = [pytest.mark.devnet, pytest.mark.slow]
CASES_PER_OPERATION = 20


@pytest.mark.parametrize("role", ["bank", "operator", "auditor"])
def test_the_api_does_what_its_openapi_document_says(
    node_factory: Callable[..., LocalNode], tmp_path: Path, role: str
) -> None:
    # Rate limits off (tests/node/api/test_rate_limits.py has them): schemathesis's requests without a key
    # must each be a 401, and its bursts of a few hundred a second with one key reach the routes, not a 429.
    node = node_factory(auth_failures_per_s=0, rate_limit_key_per_s=0)
    key = {"bank": node.api_keys["FATLUS33"], "operator": DEVNET_OPERATOR_API_KEY, "auditor": DEVNET_AUDITOR_API_KEY}[
        role
    ]
    run = fuzz(node.url, role, key, CASES_PER_OPERATION, tmp_path, seed=20261202, timeout_s=300)
    log = Path(run.report).read_text()
    assert run.failures == 0, log[-6000:]
    assert run.operations == len(_operations(node.url)), log[-3000:]
    assert run.cases >= run.operations * CASES_PER_OPERATION // 2, log[-3000:]


def _operations(url: str) -> list[tuple[str, str]]:
    spec = httpx.get(url + "/openapi.json", timeout=10).json()
    return [(method, path) for path, ops in spec["paths"].items() for method in ops]
