"""Store URLs for tests: SQLite always; PostgreSQL when ``CORRIDOR_TEST_POSTGRES_URL`` names a
server (``.ci/run`` starts one), each test on a database of its own, dropped afterwards."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from scripts._cluster import postgres_database

POSTGRES_URL = os.environ.get("CORRIDOR_TEST_POSTGRES_URL", "")
BACKENDS = [
    "sqlite",
    pytest.param(
        "postgresql",
        marks=pytest.mark.skipif(not POSTGRES_URL, reason="CORRIDOR_TEST_POSTGRES_URL not set (.ci/run sets it)"),
    ),
]


@contextmanager
def store_url(backend: str, tmp_path: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / f'node-{uuid.uuid4().hex[:8]}.db'}"
        return
    with postgres_database(POSTGRES_URL, "corridor_test") as url:
        yield url
