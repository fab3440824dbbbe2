"""Every event and custom error of the vault's interface says what it means and what each of
its arguments is (NatSpec, as OpenZeppelin's draft-IERC6093.sol does), read from the build."""

from __future__ import annotations

import json
import re
from typing import Any

from settlement.chain import artifact
from settlement.chain.contracts import ROOT, abi_type

INTERFACE = ROOT / "contracts" / "interfaces" / "ISettlementVault.sol"


def _declared(kind: str) -> set[str]:
    return set(re.findall(rf"^\s*{kind} (\w+)\(", INTERFACE.read_text(), re.MULTILINE))


def _docs() -> tuple[dict[str, Any], dict[str, Any]]:
    metadata = artifact("SettlementVault")["metadata"]
    output = (json.loads(metadata) if isinstance(metadata, str) else metadata)["output"]
    return output["devdoc"], output["userdoc"]


def _undocumented(kind: str) -> list[str]:
    devdoc, userdoc = _docs()
    names = _declared(kind)
    section = {"event": "events", "error": "errors"}[kind]
    missing: list[str] = []
    for item in artifact("SettlementVault")["abi"]:
        if item["type"] != kind or item["name"] not in names:
            continue
        signature = f"{item['name']}({','.join(abi_type(i) for i in item['inputs'])})"
        notice = userdoc.get(section, {}).get(signature)
        dev = devdoc.get(section, {}).get(signature)
        # Errors' docs are lists (one per declaration), events' a single entry.
        notice = notice[0] if isinstance(notice, list) else notice
        dev = dev[0] if isinstance(dev, list) else dev
        if not notice or not notice.get("notice"):
            missing.append(f"{signature}: no @notice")
        params = (dev or {}).get("params", {})
        missing += [f"{signature}: no @param {i['name']}" for i in item["inputs"] if not params.get(i["name"])]
    assert names, f"no {kind} found in {INTERFACE}"
    return missing


def test_every_event_of_the_vault_is_documented_per_argument() -> None:
    assert _undocumented("event") == []


def test_every_error_of_the_vault_is_documented_per_argument() -> None:
    assert _undocumented("error") == []
