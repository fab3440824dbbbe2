"""The node's API in process, on a fresh SQLite store, with a fixed rate book and no chain."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from fx.pricing import Pricing
from fx.quotes import QuoteEngine, QuoteSigner
from fx.rates import Rate, to_fixed
from node.api.app import create_app
from node.config import NodeSettings
from node.services import Services
from node.store.db import Store
from node.store.models import Transfer
from settlement.chain.keys import devnet_key
from settlement.eip712 import Domain, Instruction, sign, uuid_to_id
from settlement.manifest import AssetEntry, Manifest
from tests.stores import BACKENDS, store_url

OPERATOR = "test-operator-key"
AUDITOR = "test-auditor-key"
VAULT = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
DOMAIN = Domain(31337, VAULT)
KEYS = {"FATLUS33": devnet_key(6), "RHNLDEFF": devnet_key(7), "THMSGB2L": devnet_key(8)}


class Book:
    name = "book"

    def rate(self, sell: str, buy: str, now: dt.datetime) -> Rate:
        mids = {"USD": Decimal(1), "EUR": Decimal("1.1"), "GBP": Decimal("1.25"), "JPY": Decimal("0.0066")}
        return Rate(sell, buy, to_fixed(mids[sell] / mids[buy]), "test book", now, self.name)


class Api:
    """A test client with the demo banks onboarded, and helpers to sign as them."""

    def __init__(self, client: TestClient, store: Store) -> None:
        self.client = client
        self.store = store
        self.keys: dict[str, str] = {}
        self.addresses: dict[str, str] = {}
        self._nonce = iter(range(1, 10**6))

    def auth(self, who: str) -> dict[str, str]:
        key = {"operator": OPERATOR, "auditor": AUDITOR}.get(who) or self.keys[who]
        return {"Authorization": f"Bearer {key}"}

    def post(self, path: str, who: str, body: Any, key: str | None = None) -> Any:
        headers = self.auth(who) | ({"Idempotency-Key": key} if key else {})
        return self.client.post(path, json=body, headers=headers)

    def get(self, path: str, who: str, **params: Any) -> Any:
        return self.client.get(path, headers=self.auth(who), params=params)

    def instruction(self, debtor: str = "FATLUS33", creditor: str = "RHNLDEFF", **over: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "nonce": next(self._nonce),
            "debtor": self.addresses[debtor],
            "creditor": self.addresses[creditor],
            "sell_currency": "USD",
            "sell_amount": 250_000_00,
            "buy_currency": "EUR",
            "min_buy_amount": 0,
            "deadline": int(dt.datetime.now(dt.UTC).timestamp()) + 3600,
            "details_hash": "0x" + os.urandom(32).hex(),
        }
        return body | over

    def signed(self, instruction: dict[str, Any], signer: str = "FATLUS33", **extra: Any) -> dict[str, Any]:
        i = instruction
        typed = Instruction(
            id=uuid_to_id(i["id"]),
            nonce=int(i["nonce"]),
            debtor=i["debtor"],
            creditor=i["creditor"],
            sell_currency=i["sell_currency"].encode(),
            sell_amount=int(i["sell_amount"]),
            buy_currency=i["buy_currency"].encode(),
            min_buy_amount=int(i["min_buy_amount"]),
            deadline=int(i["deadline"]),
            details_hash=bytes.fromhex(i["details_hash"][2:]),
        )
        sig = sign(DOMAIN, typed, KEYS[signer])
        return {"instruction": i, "signature": {"r": "0x" + sig.r.hex(), "vs": "0x" + sig.vs.hex()}} | extra

    def transfer_count(self) -> int:
        with self.store.transaction(write=False) as s:
            return int(s.execute(select(func.count()).select_from(Transfer)).scalar_one())


@pytest.fixture(params=BACKENDS)
def api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Api]:
    with store_url(request.param, tmp_path) as url:
        yield from _api(tmp_path, url)


@pytest.fixture
def api_no_private_webhooks(tmp_path: Path) -> Iterator[Api]:
    """As ``api`` on SQLite, with callback URLs to private addresses refused, as outside the devnet."""
    with store_url("sqlite", tmp_path) as url:
        yield from _api(tmp_path, url, webhook_private_destinations=False)


def _api(tmp_path: Path, url: str, **overrides: Any) -> Iterator[Api]:
    settings = NodeSettings(
        data_dir=tmp_path,
        database_url=url,
        operator_api_key=OPERATOR,
        auditor_api_key=AUDITOR,
        manifest=tmp_path / "m.json",
        rpc_url="http://127.0.0.1:9",  # no chain: nothing listens on the discard port
        **overrides,
    )
    store = Store(settings.store_url)
    store.migrate()
    manifest = Manifest(
        chain_id=31337,
        vault=VAULT,
        assets={c: AssetEntry("0x" + "00" * 20, e) for c, e in (("USD", 2), ("EUR", 2), ("GBP", 2), ("JPY", 0))},
    )
    engine = QuoteEngine(Book(), Pricing.load(), "0x" + "ab" * 20, QuoteSigner(DOMAIN, devnet_key(2)))
    app = create_app(Services(settings, store, manifest, DOMAIN, engine))
    with TestClient(app) as client:
        a = Api(client, store)
        for bic, name, country, ccys in (
            ("FATLUS33", "First Atlantic Bank", "US", ["USD", "EUR", "GBP"]),
            ("RHNLDEFF", "Rheinland Bank", "DE", ["EUR", "USD"]),
            ("THMSGB2L", "Thames Merchant Bank", "GB", ["GBP", "USD"]),
        ):
            address = Account.from_key(KEYS[bic]).address
            body = {"name": name, "bic": bic, "country": country, "address": address, "currencies": ccys}
            r = a.post("/v1/admin/banks", "operator", body)
            assert r.status_code == 201, r.text
            a.keys[bic], a.addresses[bic] = r.json()["api_key"], address
        yield a
    store.dispose()
