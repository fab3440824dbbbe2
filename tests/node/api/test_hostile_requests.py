"""Requests meant to break the node, sent to a node process as `corridor node serve` runs it.

Each is sent without a key and with a bank's key. Every answer is a 4xx with the error shape,
the process keeps serving (the next request succeeds), and nothing is stored. In-process
tests could not show this: a request that overflows the C stack kills the process it runs in.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_utils.crypto import keccak

from scripts.devnet import free_port
from settlement.chain.keys import devnet_key
from settlement.eip712 import Domain, Instruction, sign, uuid_to_id
from settlement.manifest import AssetEntry, Manifest
from tests.conftest import ROOT
from tests.raw_http import Answer, exchange

VAULT = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
UETR = "6f1c8a4e-2b7d-4c1e-9a53-0d3f2e8b7c61"
OPERATOR = "hostile-test-operator-key"
AUDITOR = "hostile-test-auditor-key"
BANK_ADDRESS = "0x976EA74026E726554dB657fA54763abd0C3a0aa9"
BODY_TIMEOUT_S = 1.0
MB = 2**20


@dataclass
class Served:
    url: str
    process: subprocess.Popen[bytes]
    bank_key: str
    log: Path

    def alive(self) -> None:
        assert self.process.poll() is None, f"the node died ({self.process.returncode}): {self.log.read_text()[-2000:]}"
        assert httpx.get(self.url + "/healthz", timeout=10).status_code == 200

    def stored(self) -> tuple[int, int]:
        """Transfers (all banks) and audit-log entries in the store, through the auditor's API."""
        auth = {"Authorization": f"Bearer {AUDITOR}"}
        export = httpx.get(self.url + "/v1/audit/transfers/export", headers=auth, timeout=10).text
        log = httpx.get(self.url + "/v1/audit/log", headers=auth, timeout=10).text
        return len(export.splitlines()), len(log.splitlines())


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A node serving the API alone, with no chain behind it (none is needed to refuse a request)."""
    data = tmp_path_factory.mktemp("served")
    manifest = Manifest(
        chain_id=31337, vault=VAULT, band_bps=200, assets={c: AssetEntry("0x" + "00" * 20, 2) for c in ("USD", "EUR")}
    )
    manifest.save(data / "manifest.json")
    port = free_port()
    env = os.environ | {
        "CORRIDOR_MANIFEST": str(data / "manifest.json"),
        "CORRIDOR_NODE_DATA_DIR": str(data),
        "CORRIDOR_RPC_URL": "http://127.0.0.1:9",
        "CORRIDOR_NODE_OPERATOR_API_KEY": OPERATOR,
        "CORRIDOR_NODE_AUDITOR_API_KEY": AUDITOR,
        "CORRIDOR_NODE_LIQUIDITY_PROVIDER": "0x" + "ab" * 20,
        "CORRIDOR_NODE_BODY_TIMEOUT_S": str(BODY_TIMEOUT_S),
        "CORRIDOR_NODE_AUTH_FAILURES_PER_S": "0",  # each keyless request here must meet its own refusal, not a 429
    }
    env.pop("CORRIDOR_NODE_DATABASE_URL", None)
    log = data / "node.log"
    command = [sys.executable, "-m", "scripts.corridor", "node", "serve", "--no-worker", "--port", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()[-2000:]
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        bank = {
            "name": "First Atlantic Bank",
            "bic": "FATLUS33",
            "country": "US",
            "address": BANK_ADDRESS,
            "currencies": ["USD", "EUR"],
        }
        created = httpx.post(url + "/v1/admin/banks", json=bank, headers={"Authorization": f"Bearer {OPERATOR}"})
        assert created.status_code == 201, created.text
        yield Served(url, process, created.json()["api_key"], log)
    finally:
        process.terminate()
        process.wait(timeout=15)


def _refused(answer: Answer, status: int, code: str) -> None:
    assert answer.status == status, (answer.status, answer.body[:300])
    error = answer.json()["error"]
    assert set(error) == {"code", "message", "details"} and error["code"] == code, error


def _auth(served: Served, keyed: bool) -> dict[str, str]:
    return {"Authorization": f"Bearer {served.bank_key}"} if keyed else {}


def _post(served: Served, keyed: bool, body: bytes, **headers: str) -> Answer:
    headers = {"Content-Type": "application/json"} | _auth(served, keyed) | headers
    return exchange(served.url, "POST", "/v1/transfers", headers=headers, chunks=[body], content_length=len(body))


DEEP = 100_000
HOSTILE: dict[str, tuple[bytes, int, str]] = {
    "deep array": (b"[" * DEEP + b"]" * DEEP, 413, "body_too_large"),
    "deep object": (b'{"a":' * DEEP + b"1" + b"}" * DEEP, 413, "body_too_large"),
    "deep array within the size limit": (b"[" * 30_000 + b"]" * 30_000, 400, "too_deep"),
    "deep object within the size limit": (b'{"a":' * 10_000 + b"1" + b"}" * 10_000, 400, "too_deep"),
    "a 1 MB string field": (json.dumps({"instruction": "x" * MB}).encode(), 413, "body_too_large"),
    "a number beyond a double": (b'{"instruction": 1e999999}', 400, "invalid_number"),
    "NaN": (b'{"instruction": NaN}', 400, "malformed_json"),
    "an integer of 60,000 digits": (b'{"a": ' + b"9" * 60_000 + b"}", 400, "invalid_number"),
    "invalid UTF-8": (b'{"instruction": "\xff\xfe"}', 400, "malformed_json"),
    "a byte order mark": (b'\xef\xbb\xbf{"instruction": {}}', 400, "malformed_json"),
    "a key twice": (b'{"instruction": {}, "instruction": {}}', 400, "duplicate_key"),
    "not JSON": (b"{'instruction': }", 400, "malformed_json"),
}


@pytest.mark.parametrize("keyed", [False, True], ids=["without a key", "with a key"])
@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_bodies_are_refused_and_the_node_keeps_serving(served: Served, keyed: bool, name: str) -> None:
    body, status, code = HOSTILE[name]
    before = served.stored()
    answer = _post(served, keyed, body)
    if keyed:
        _refused(answer, status, code)
    else:
        _refused(answer, 401, "unauthorized")  # before a byte of the body is read
    served.alive()
    assert served.stored() == before


@pytest.mark.parametrize("keyed", [False, True], ids=["without a key", "with a key"])
def test_a_body_that_parses_to_nonsense_is_a_422(served: Served, keyed: bool) -> None:
    before = served.stored()
    for body in (b'{"instruction": -0, "signature": {}}', b"[]", b"1", b'"x"', b"null", b"{}"):
        answer = _post(served, keyed, body)
        if keyed:
            _refused(answer, 422, "invalid_request")
        else:
            _refused(answer, 401, "unauthorized")
    served.alive()
    assert served.stored() == before


@pytest.mark.parametrize("keyed", [False, True], ids=["without a key", "with a key"])
@pytest.mark.parametrize("size", [10 * MB, 100 * MB], ids=["10 MB", "100 MB"])
@pytest.mark.parametrize("declared", [True, False], ids=["Content-Length", "chunked"])
def test_large_bodies_are_cut_off(served: Served, keyed: bool, size: int, declared: bool) -> None:
    before = served.stored()
    piece = b"[" + b"0," * (MB // 2 - 1) + b"0]"
    chunks = (piece for _ in range(size // len(piece)))
    headers = {"Content-Type": "application/json"} | _auth(served, keyed)
    started = time.monotonic()
    answer = exchange(
        served.url,
        "POST",
        "/v1/transfers/batch",
        headers=headers,
        chunks=chunks,
        content_length=size // len(piece) * len(piece) if declared else None,
        chunked=not declared,
    )
    if keyed:
        _refused(answer, 413, "body_too_large")
        assert answer.json()["error"]["details"]["limit_bytes"] == 4 * MB
    else:
        _refused(answer, 401, "unauthorized")
    # Not read to the end: the answer comes long before 100 MB could be parsed.
    assert time.monotonic() - started < 20
    served.alive()
    assert served.stored() == before


@pytest.mark.parametrize("keyed", [False, True], ids=["without a key", "with a key"])
@pytest.mark.parametrize("declared", [True, False], ids=["Content-Length", "chunked"])
def test_a_body_that_stops_arriving_is_cut_off_by_the_timeout(served: Served, keyed: bool, declared: bool) -> None:
    headers = {"Content-Type": "application/json"} | _auth(served, keyed)
    length = 1000 if declared else None
    answer = exchange(
        served.url,
        "POST",
        "/v1/transfers",
        headers=headers,
        chunks=[b'{"instruction": '],
        content_length=length,
        chunked=not declared,
        stall_s=BODY_TIMEOUT_S * 5,
    )
    if keyed:
        _refused(answer, 408, "body_timeout")
    else:
        _refused(answer, 401, "unauthorized")
    served.alive()


def test_a_bad_content_length_is_refused(served: Served) -> None:
    # uvicorn's HTTP parser refuses it before the application sees it (a plain-text 400); the
    # guard's own check (bad_content_length) is for servers that pass it on.
    answer = exchange(served.url, "POST", "/v1/transfers", headers=_auth(served, True) | {"Content-Length": "-5"})
    assert answer.status == 400
    served.alive()


def test_details_nested_past_the_recursion_limit_are_invalid_details(served: Served) -> None:
    """The details are JSON inside a JSON string: the node parses them itself, after the guard."""
    details = "[" * 4000 + "]" * 4000
    instruction = Instruction(
        id=uuid_to_id(UETR),
        nonce=1,
        debtor=BANK_ADDRESS,
        creditor=BANK_ADDRESS,
        sell_currency=b"USD",
        sell_amount=100,
        buy_currency=b"EUR",
        min_buy_amount=0,
        deadline=int(time.time()) + 3600,
        details_hash=keccak(text=details),
    )
    signature = sign(Domain(31337, VAULT), instruction, devnet_key(6))
    body: dict[str, Any] = {
        "instruction": {
            "id": UETR,
            "nonce": 1,
            "debtor": BANK_ADDRESS,
            "creditor": BANK_ADDRESS,
            "sell_currency": "USD",
            "sell_amount": 100,
            "buy_currency": "EUR",
            "min_buy_amount": 0,
            "deadline": instruction.deadline,
            "details_hash": "0x" + instruction.details_hash.hex(),
        },
        "signature": {"r": "0x" + signature.r.hex(), "vs": "0x" + signature.vs.hex()},
        "details": details,
    }
    before = served.stored()
    _refused(_post(served, True, json.dumps(body).encode()), 422, "invalid_details")
    served.alive()
    assert served.stored() == before
