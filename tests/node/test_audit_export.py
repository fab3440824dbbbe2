"""``corridor audit --against``: the node's export agrees with the chain, and an export that
claims what the chain does not hold (or lacks what it holds) is reported."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from node.config import DEVNET_AUDITOR_API_KEY
from settlement.audit import run_audit
from settlement.audit.export import load_export
from settlement.errors import ConfigurationError
from tests.node.conftest import LocalNode

pytestmark = pytest.mark.devnet


def test_the_export_agrees_with_the_chain_and_a_doctored_one_is_reported(
    node_factory: Callable[..., LocalNode], tmp_path: Path
) -> None:
    node = node_factory()
    us = node.client("FATLUS33")
    sent = [us.send("RHNLDEFF", "USD", f"{100 + i}.00", "EUR") for i in range(3)]
    finals = [us.wait(t["id"]) for t in sent]
    chain = node.chain
    report = run_audit(chain.devnet.url, chain.manifest_path, against=node.url, api_key=DEVNET_AUDITOR_API_KEY).report
    assert report.passed, report.to_json()
    assert report.check("export").checked == 3

    rows = load_export(node.url, DEVNET_AUDITOR_API_KEY)
    dropped, altered, kept = rows
    invented = dict(kept, id=str(uuid.uuid4()))
    altered = dict(altered, buy_amount=str(int(altered["buy_amount"]) + 1))
    doctored = tmp_path / "export.jsonl"
    doctored.write_text("".join(json.dumps(r) + "\n" for r in (altered, kept, invented)))
    report = run_audit(chain.devnet.url, chain.manifest_path, against=str(doctored)).report
    assert [c.key for c in report.checks if not c.passed] == ["export"]
    found = {(f.message, f.fields["uetr"]) for f in report.check("export").findings}
    assert found == {
        ("export says FINAL, the chain holds no settlement", invented["id"]),
        ("settlement on chain missing from the export", dropped["id"]),
        ("export's figure differs from the chain's", altered["id"]),
    }
    assert {t["id"] for t in finals} == {dropped["id"], altered["id"], kept["id"]}

    with pytest.raises(ConfigurationError, match="HTTP 403"):
        load_export(node.url, node.api_keys["FATLUS33"])
    with pytest.raises(ConfigurationError, match="needs the auditor's API key"):
        load_export(node.url, None)
    (tmp_path / "bad.jsonl").write_text('{"id": "not a uuid"}\n')
    with pytest.raises(ConfigurationError, match="export line 1 is not a transfer"):
        load_export(str(tmp_path / "bad.jsonl"), None)
