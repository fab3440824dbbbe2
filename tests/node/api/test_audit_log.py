"""The hash-chained audit log: what is written, the export, and verification catching an
edited, a deleted and a reordered entry (the CLI naming the first bad one); the details a
bank sends with an instruction, checked against its signed hash."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from eth_utils.crypto import keccak
from sqlalchemy import func, select, text

from node.ops import audit_log
from node.store.models import AuditEntry, Transfer
from settlement.audit_log import ExportedEntry, as_dict, verify
from tests.node.api.conftest import Api


def _details_body(api: Api, details: str, hashed: str | None = None) -> dict[str, Any]:
    instruction = api.instruction(details_hash="0x" + keccak((hashed or details).encode()).hex())
    return api.signed(instruction, details=details)


def _verify_cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CORRIDOR_NODE_DATABASE_URL": url}
    return subprocess.run(
        [sys.executable, "-m", "scripts.corridor", "audit-log", "verify", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def _activity(api: Api) -> str:
    """Operator actions and transfer state changes; returns a transfer's UETR."""
    details = json.dumps({"beneficiary": {"name": "Anna Weber", "account": "DE89370400440532013000"}}, sort_keys=True)
    r = api.post("/v1/transfers", "FATLUS33", _details_body(api, details))
    assert r.status_code == 202, r.text
    uetr = str(r.json()["id"])
    assert api.post(f"/v1/transfers/{uetr}/cancel", "FATLUS33", {}).status_code == 200
    assert api.post("/v1/admin/banks/THMSGB2L/frozen", "operator", {"value": True}).status_code == 200
    assert api.post("/v1/admin/paused", "operator", {"value": True}).status_code == 200
    assert api.post("/v1/admin/paused", "operator", {"value": False}).status_code == 200
    return uetr


def test_operator_actions_and_state_changes_are_chained_and_exported(api: Api) -> None:
    uetr = _activity(api)
    entries = list(audit_log.entries(api.store))
    verdict = verify(entries)
    rows = [(e.actor, e.action, e.subject, e.data.get("to")) for e in entries]
    assert verdict.ok and verdict.entries == len(entries) == 3 + 2 + 3, verdict
    assert rows[:3] == [("operator", "bank.onboarded", f"bank:{b}", None) for b in ("FATLUS33", "RHNLDEFF", "THMSGB2L")]
    assert rows[3:] == [
        ("bank:FATLUS33", "transfer.status", f"transfer:{uetr}", "RECEIVED"),
        ("bank:FATLUS33", "transfer.status", f"transfer:{uetr}", "REJECTED"),
        ("operator", "bank.frozen", "bank:THMSGB2L", None),
        ("operator", "network.paused", "network", None),
        ("operator", "network.resumed", "network", None),
    ]
    r = api.get("/v1/audit/log", "auditor")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
    exported = [ExportedEntry.of(json.loads(line)) for line in r.text.splitlines()]
    assert verify(exported) == verdict, "the export verifies to the same head hash"
    assert api.get("/v1/audit/log", "operator").status_code == 200
    assert api.get("/v1/audit/log", "FATLUS33").status_code == 403


def test_verify_names_the_first_edited_deleted_or_reordered_entry(api: Api, tmp_path: Path) -> None:
    _activity(api)
    url = str(api.store.engine.url.render_as_string(hide_password=False))
    ok = _verify_cli(url)
    assert ok.returncode == 0 and ok.stdout.startswith("OK: 8 entries, unbroken"), ok.stdout + ok.stderr
    export = tmp_path / "log.jsonl"
    export.write_text(api.get("/v1/audit/log", "auditor").text)
    assert _verify_cli(url, "--file", str(export)).returncode == 0

    def broken(expected_seq: int, words: str) -> None:
        result = _verify_cli(url)
        assert result.returncode == 1, result.stdout + result.stderr
        assert result.stdout.startswith(f"BROKEN at entry {expected_seq}:") and words in result.stdout, result.stdout

    with api.store.engine.begin() as c:
        original = c.execute(text("SELECT data FROM audit_log WHERE seq = 5")).scalar_one()
        c.execute(text("UPDATE audit_log SET actor = 'operator' WHERE seq = 5"))  # the bank's cancel, re-attributed
    broken(5, "it was edited")
    with api.store.engine.begin() as c:
        c.execute(text("UPDATE audit_log SET actor = 'bank:FATLUS33' WHERE seq = 5"))
        c.execute(text("UPDATE audit_log SET data = :d WHERE seq = 5"), {"d": json.dumps({"to": "FINAL"})})
    broken(5, "it was edited")
    with api.store.engine.begin() as c:
        c.execute(
            text("UPDATE audit_log SET data = :d WHERE seq = 5"),
            {"d": original if isinstance(original, str) else json.dumps(original)},
        )
    assert _verify_cli(url).returncode == 0, "restored"

    with api.store.transaction() as s:
        kept = s.get(AuditEntry, 6)
        assert kept is not None
        saved = {c.name: getattr(kept, c.name) for c in AuditEntry.__table__.columns}
        s.delete(kept)
    broken(7, "an entry is missing")
    with api.store.transaction() as s:
        s.add(AuditEntry(**saved))
    assert _verify_cli(url).returncode == 0, "restored"

    with api.store.engine.begin() as c:  # entries 6 and 7 swap places
        c.execute(text("UPDATE audit_log SET seq = 1000 WHERE seq = 6"))
        c.execute(text("UPDATE audit_log SET seq = 6 WHERE seq = 7"))
        c.execute(text("UPDATE audit_log SET seq = 7 WHERE seq = 1000"))
    broken(6, "does not link to entry 5")
    exported = [ExportedEntry.of(json.loads(line)) for line in export.read_text().splitlines()]
    exported[5], exported[6] = exported[6], exported[5]
    export.write_text("".join(json.dumps(as_dict(e)) + "\n" for e in exported))
    result = _verify_cli(url, "--file", str(export))
    assert result.returncode == 1 and "BROKEN at entry 7: entry 7 comes where entry 6 should" in result.stdout


def test_details_are_checked_against_the_signed_hash_and_kept_off_chain(api: Api) -> None:
    details = json.dumps({"beneficiary": {"name": "Anna Weber", "account": "DE89370400440532013000"}})
    r = api.post("/v1/transfers", "FATLUS33", _details_body(api, details, hashed=details + " "))
    assert (r.status_code, r.json()["error"]["code"]) == (422, "details_mismatch"), r.text
    for bad in ("[1, 2]", "not json", json.dumps({"beneficiary": "Anna Weber"})):
        r = api.post("/v1/transfers", "FATLUS33", _details_body(api, bad))
        assert (r.status_code, r.json()["error"]["code"]) == (422, "invalid_details"), (bad, r.text)
    assert api.transfer_count() == 0
    r = api.post("/v1/transfers", "FATLUS33", _details_body(api, details))
    assert r.status_code == 202, r.text
    with api.store.transaction(write=False) as s:
        t = s.scalars(select(Transfer)).one()
        assert t.details == json.loads(details) and t.beneficiary_key and len(t.beneficiary_key) == 64
        assert s.scalar(select(func.count()).select_from(AuditEntry)) == 4
