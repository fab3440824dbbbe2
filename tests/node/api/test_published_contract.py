"""A bank's engineer builds a client from what the node publishes, and nothing of Corridor's code.

Only the bank's API key and signing key, the published documents (``/openapi.json``,
``/v1/network``, ``/v1/network/typed-data``, ``/v1/network/abi``) and eth-account are used to
sign and submit an instruction the node accepts.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils.crypto import keccak

from tests.conftest import ROOT
from tests.node.api.conftest import KEYS, Api

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def _signed_by_the_book(guide: dict[str, Any], instruction: dict[str, Any], key: str) -> dict[str, str]:
    """Encode each field as ``instruction_fields`` says, sign with eth-account, send as ``signature`` says."""
    encoders = {
        "bytes32:instruction.id": lambda v: "0x" + uuid.UUID(v).bytes.hex() + "00" * 16,
        "bytes3": lambda v: "0x" + v.encode("ascii").hex(),
        "bytes32": lambda v: v,
        "address": lambda v: v,
    }
    message = {}
    for field in guide["instruction_fields"]:
        value = instruction[field["api_field"].removeprefix("instruction.")]
        kind = f"{field['type']}:{field['api_field']}"
        encode = encoders.get(kind) or encoders.get(field["type"]) or int
        message[field["member"]] = encode(value)
    document = {
        "types": {"EIP712Domain": guide["types"]["EIP712Domain"], "Instruction": guide["types"]["Instruction"]},
        "primaryType": "Instruction",
        "domain": guide["domain"],
        "message": message,
    }
    signed = Account.sign_message(encode_typed_data(full_message=document), key)
    assert signed.s <= SECP256K1_N // 2, "eth-account signs low-s, as the guide asks"
    vs = signed.s | ((signed.v - 27) << 255)
    return {"r": "0x" + signed.r.to_bytes(32, "big").hex(), "vs": "0x" + vs.to_bytes(32, "big").hex()}


def test_a_client_built_from_the_published_documents_alone_is_accepted(api: Api) -> None:
    network = api.get("/v1/network", "FATLUS33").json()
    guide = api.get(network["typed_data"], "FATLUS33").json()
    assert guide["domain"] == network["domain"]
    me = api.get("/v1/me", "FATLUS33").json()
    creditor = next(b for b in api.get("/v1/banks", "FATLUS33").json() if b["bic"] == "RHNLDEFF")
    details = json.dumps(
        {"beneficiary": {"name": "Erika Mustermann", "account": "DE89370400440532013000", "country": "DE"}},
        sort_keys=True,
    )
    instruction = {
        "id": str(uuid.uuid4()),
        "nonce": me["next_nonce"],
        "debtor": me["bank"]["address"],
        "creditor": creditor["address"],
        "sell_currency": "USD",
        "sell_amount": 1_000_00,
        "buy_currency": "EUR",
        "min_buy_amount": 0,
        "deadline": 4_000_000_000 // 2,
        "details_hash": "0x" + keccak(text=details).hex(),
    }
    body = {
        "instruction": instruction,
        "signature": _signed_by_the_book(guide, instruction, KEYS["FATLUS33"]),
        "details": details,
    }
    accepted = api.post("/v1/transfers", "FATLUS33", body)
    # The deadline is far off: the node's own bound is what refuses it, not the signature.
    assert accepted.json()["error"]["code"] == "deadline_too_far", accepted.text
    instruction["deadline"] = api.instruction()["deadline"]
    body["signature"] = _signed_by_the_book(guide, instruction, KEYS["FATLUS33"])
    accepted = api.post("/v1/transfers", "FATLUS33", body)
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["status"] == "RECEIVED"


def test_the_worked_example_is_what_eth_account_makes_of_it(api: Api) -> None:
    guide = api.get("/v1/network/typed-data", "FATLUS33").json()
    example = guide["example"]
    signed = Account.sign_message(encode_typed_data(full_message=example["typed_data"]), example["private_key"])
    assert signed.r == int(example["api_body"]["signature"]["r"], 16)
    assert (
        _signed_by_the_book(guide, example["api_body"]["instruction"], example["private_key"])
        == example["api_body"]["signature"]
    )
    assert (
        example["api_body"]["instruction"]["details_hash"] == "0x" + keccak(text=example["api_body"]["details"]).hex()
    )
    assert guide["details_hash"]["no_details_hash"] == "0x" + keccak(text="{}").hex()
    assert Account.from_key(example["private_key"]).address == example["signer"]


def test_the_openapi_bounds_are_the_signed_types_bounds(api: Api) -> None:
    spec = api.client.get("/openapi.json").json()
    properties = spec["components"]["schemas"]["InstructionIn"]["properties"]
    guide = api.get("/v1/network/typed-data", "FATLUS33").json()
    bounded = [f for f in guide["instruction_fields"] if "maximum" in f]
    assert {f["member"] for f in bounded} == {"nonce", "sellAmount", "minBuyAmount", "deadline"}
    for field in bounded:
        schema = properties[field["api_field"].removeprefix("instruction.")]
        number = next(s for s in schema["anyOf"] if s["type"] == "integer")
        assert (number["minimum"], number["maximum"]) == (field["minimum"], field["maximum"]), field["member"]
        assert field["maximum"] <= 2 ** int(field["type"].removeprefix("uint")) - 1
        # The string form admits only numbers within the bounds.
        text = next(s for s in schema["anyOf"] if s["type"] == "string")
        assert 10 ** (int(text["pattern"].split(",")[-1].split("}")[0]) + 1) - 1 <= field["maximum"]


def test_the_vault_interface_is_published(api: Api) -> None:
    abi = api.get("/v1/network/abi", "FATLUS33").json()
    events = {e["name"]: e for e in abi["events"]}
    settled = events["InstructionSettled"]
    assert settled["topic0"] == "0x" + keccak(text=settled["signature"]).hex()
    assert any(i["type"] == "event" and i["name"] == "InstructionSettled" for i in abi["abi"])
    errors = {e["name"]: e for e in abi["errors"]}
    assert (
        errors["InstructionNonceUsed"]["selector"]
        == "0x" + keccak(text="InstructionNonceUsed(address,uint256)")[:4].hex()
    )


def test_the_openapi_document_describes_the_api(api: Api) -> None:
    spec = api.client.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.1")
    scheme = spec["components"]["securitySchemes"]["apiKey"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    submit = spec["paths"]["/v1/transfers"]["post"]
    assert submit["security"] == [{"apiKey": []}]
    assert "Authorization" not in {p["name"] for p in submit.get("parameters", [])}
    codes = {code for r in submit["responses"].values() for code in r.get("x-error-codes", [])}
    assert {"unauthorized", "bad_signature", "min_buy_unreachable", "body_too_large", "too_deep"} <= codes
    assert submit["responses"]["422"]["content"]["application/json"]["schema"]["allOf"][0] == {
        "$ref": "#/components/schemas/Error"
    }
    quote = spec["paths"]["/v1/quotes"]["post"]
    assert quote["responses"]["201"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/QuotePublic"
    }
    assert spec["components"]["schemas"]["QuoteCreate"]["oneOf"] == [
        {"required": ["sell_amount"]},
        {"required": ["buy_amount"]},
    ]
    assert set(spec["webhooks"]) == {"transfer.status_changed", "reconciliation.mismatch"}
    assert "text/plain" in spec["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert "delete" in spec["paths"]["/v1/webhooks"]


def test_every_error_code_the_node_raises_is_documented() -> None:
    """Every refusal code has its status and meaning in the catalogue the OpenAPI document is built from,
    and the node's code raises refusals only by those codes (no free string)."""
    import re

    from node.api.errors import CODES
    from node.errors import Refusal

    assert set(Refusal) - set(CODES) == set()
    free = []
    for path in (ROOT / "node").rglob("*.py"):
        free += [f"{path.name}: {m}" for m in re.findall(r"Refused\(\s*[\"'][a-z_]+", path.read_text())]
    assert free == []


def test_the_openapi_command_needs_no_chain_or_store(tmp_path: Any) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "scripts.corridor", "node", "openapi"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    spec = json.loads(done.stdout)
    assert "/v1/transfers" in spec["paths"] and not list(tmp_path.iterdir())
