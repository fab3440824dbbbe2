"""Every entry point runs with the interpreter's recursion limit restored after its imports.

py_ecc (under eth-account and web3) raises the limit to 100,000 when imported; recursive
parsers then overflow the C stack on deep input and the process dies instead of raising. Each
entry point is imported in a process of its own (the order of imports is what matters), the
libraries that raise the limit after it, and then deeply nested input is parsed.
"""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from settlement import RECURSION_LIMIT
from tests.conftest import ROOT

ENTRY_POINTS = [
    "scripts.corridor",
    "scripts.up",
    "scripts.devnet",
    "scripts.deploy",
    "scripts.onboard",
    "scripts.fund",
    "scripts.demo",
    "scripts.audit",
    "scripts.publish_rates",
    "scripts.bench_node",
    "scripts.bench_gas",
    "scripts.bench_audit",
    "scripts.fuzz_api",
    "settlement.audit.cli",
    "node.cli",
    "node.api.app",
    "node.pipeline.worker",
]

PROBE = """
import sys, json, yaml
import {module}
import web3, eth_account, eth_keys, py_ecc.bls  # what raises the limit, imported after
print(sys.getrecursionlimit())
for parse, text in ((json.loads, "[" * 100_000 + "]" * 100_000), (yaml.safe_load, "[" * 100_000 + "]" * 100_000)):
    try:
        parse(text)
    except RecursionError:
        print("RecursionError")
"""


def _probe(module: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", PROBE.format(module=module)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_every_entry_point_restores_the_recursion_limit() -> None:
    with ThreadPoolExecutor(2) as pool:
        results = dict(zip(ENTRY_POINTS, pool.map(_probe, ENTRY_POINTS), strict=True))
    for module, done in results.items():
        # A segmentation fault shows as -11 here; a raised RecursionError is printed and the process ends well.
        assert done.returncode == 0, f"{module}: exit {done.returncode}: {done.stderr[-1500:]}"
        assert done.stdout.split() == [str(RECURSION_LIMIT), "RecursionError", "RecursionError"], (module, done.stdout)


def test_the_build_imports_nothing_that_raises_the_limit() -> None:
    """``python -m contracts.build`` is the one entry point below the settlement package."""
    probe = "import sys, contracts.build; print(sys.getrecursionlimit(), 'py_ecc' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == [str(RECURSION_LIMIT), "False"], done.stderr[-1500:]
