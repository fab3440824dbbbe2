"""Headless Chromium from Debian's packages, driven by Playwright (its own browser download cannot
work on machines without the internet), and the node fixtures of the node's tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Playwright, sync_playwright

from tests.node.conftest import chain, node_factory  # noqa: F401 - fixtures, used by name

CHROMIUM = Path(os.environ.get("CORRIDOR_CHROMIUM", "/usr/bin/chromium"))
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(
    os.environ.get("CORRIDOR_TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / ".data" / "test-artifacts")
)


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: `./run test` installs Debian's chromium"
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
    yield browser
    browser.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where the browser tests save their screenshots."""
    path = ARTIFACTS / "console"
    path.mkdir(parents=True, exist_ok=True)
    return path
