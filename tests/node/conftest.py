"""A node on a devnet with interval mining: the chain (one per module), and nodes started per test.

The node runs as it does in production: uvicorn on a free port, the pipeline beside it, a
SQLite store of its own (or PostgreSQL, when ``CORRIDOR_TEST_POSTGRES_URL`` is set and the
test asks for it).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from sqlalchemy import select
from web3 import HTTPProvider, Web3

from fx.config import load_pricing
from fx.quotes import QuoteEngine, QuoteSigner
from node.api.app import create_app
from node.bank.client import BankClient
from node.config import NodeSettings
from node.pipeline.worker import Worker
from node.services import Services, role_key
from node.store.db import Store
from node.store.models import Transfer
from scripts.devnet import Devnet, free_port
from scripts.network import Network, build_network, onboard_node
from settlement.chain import connect
from settlement.chain.vault import Vault
from settlement.eip712 import Domain
from tests.conftest import ECB_RATES
from tests.node.receiver import Receiver, serve

BLOCK_TIME_S = 1


@dataclass
class Chain:
    devnet: Devnet
    network: Network
    manifest_path: Path


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    with Devnet(block_time_s=BLOCK_TIME_S) as devnet:
        devnet.set_fast_mining(True)
        path = tmp_path_factory.mktemp("chain") / "manifest.json"
        network = build_network(connect(devnet.url), path, rates=ECB_RATES)
        devnet.set_fast_mining(False)
        yield Chain(devnet, network, path)


@dataclass
class LocalNode:
    """A node served on 127.0.0.1 in this process, and a client per demo bank."""

    chain: Chain
    store_url: str
    settings: NodeSettings
    api_keys: dict[str, str]
    svc: Services = field(init=False)
    worker: Worker | None = field(init=False, default=None)
    url: str = field(init=False, default="")
    _server: uvicorn.Server | None = field(init=False, default=None)
    _thread: threading.Thread | None = field(init=False, default=None)

    def start(self, worker: bool = True) -> LocalNode:
        manifest = self.chain.network.manifest
        store = Store(self.store_url)
        store.migrate()
        domain = Domain(manifest.chain_id, manifest.vault)
        engine = QuoteEngine(
            ECB_RATES,
            load_pricing(),
            self.chain.network.lps()[0].address,
            QuoteSigner(domain, role_key(self.settings, manifest, "oracle")),
        )
        w3 = Web3(HTTPProvider(self.settings.rpc_url, request_kwargs={"timeout": 5}))
        self.svc = Services(
            settings=self.settings,
            store=store,
            manifest=manifest,
            domain=domain,
            quotes=engine,
            vault=Vault(w3, manifest),
        )
        keys = (role_key(self.settings, manifest, "relayer"), role_key(self.settings, manifest, "operator"))
        self.worker = Worker(self.svc, *keys) if worker else None
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(create_app(self.svc, self.worker), host="127.0.0.1", port=port, log_level="warning")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            assert time.monotonic() < deadline, "the node did not start"
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=15)
        self.svc.store.dispose()

    def client(self, bic: str) -> BankClient:
        p = next(p for p in self.chain.network.participants if p.bic == bic)
        return BankClient(self.url, self.api_keys[bic], p.key, vault=self.chain.network.manifest.vault)

    def transfers(self) -> list[Transfer]:
        with self.svc.store.transaction(write=False) as session:
            return list(session.scalars(select(Transfer)))

    def wait_for(self, check: Callable[[], Any], timeout_s: float = 60, what: str = "condition") -> Any:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            result = check()
            if result:
                return result
            time.sleep(0.2)
        raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


@pytest.fixture
def node_factory(chain: Chain, tmp_path: Path) -> Iterator[Callable[..., LocalNode]]:
    """``make(store_url=None, worker=True, **settings)``: a started node (stopped after the test)."""
    started: list[LocalNode] = []
    keys_of: dict[str, dict[str, str]] = {}

    def make(store_url: str | None = None, worker: bool = True, **overrides: Any) -> LocalNode:
        url = store_url or f"sqlite:///{tmp_path / f'node{len(started)}.db'}"
        keys = keys_of.setdefault(url, {})
        keys |= onboard_node(url, chain.network.manifest, chain.network.participants)
        values = {
            "data_dir": tmp_path,
            "database_url": url,
            "rpc_url": chain.devnet.url,
            "manifest": chain.manifest_path,
        } | overrides
        settings = NodeSettings(**values)
        node = LocalNode(chain, url, settings, keys).start(worker)
        started.append(node)
        return node

    yield make
    for node in started:
        node.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver that answers 200 to everything (see :mod:`tests.node.receiver`)."""
    yield from serve()
