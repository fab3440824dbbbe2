"""Fuzz the node's API from its own OpenAPI document with schemathesis, and print what it found.

Starts its own devnet, deploys, onboards and funds the demo banks, and serves a node (API and
pipeline, ``corridor node serve`` in a child process); then runs ``schemathesis run`` once
with a bank's API key, once with the operator's and once with the auditor's, on every
operation, with every check on (no 5xx, documented status codes and content types, response
schemas, schema-invalid data refused, schema-valid data not refused as malformed, methods and
authentication enforced). ``--max-examples`` bounds the cases per operation and phase.

Prints one line per key (operations, cases sent, failures) and exits 1 on any failure; the
reports (JSON, and a pytest file that replays each failure) are kept with ``--report-dir``.
The test suite runs the same with few examples (tests/node/api/test_api_fuzz.py).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from node.config import DEVNET_AUDITOR_API_KEY, DEVNET_OPERATOR_API_KEY
from scripts._serve import ROOT, serve_demo_network, stop
from scripts.devnet import Devnet

CONFIG = ROOT / "scripts" / "schemathesis.toml"
HOOKS = "scripts._fuzz_checks"
"""Corridor's own checks, loaded into schemathesis (see that module)."""


@dataclass(frozen=True)
class FuzzRun:
    key: str
    operations: int
    cases: int
    failures: int
    seconds: float
    report: str


def fuzz(
    url: str,
    key_name: str,
    key: str,
    max_examples: int,
    report_dir: Path,
    seed: int | None = None,
    timeout_s: float = 1800.0,
) -> FuzzRun:
    """One ``schemathesis run`` against ``url`` with ``key``; its figures from its JSON report."""
    report = report_dir / f"{key_name}.json"
    options = {
        "--checks": "all",
        "--header": f"Authorization: Bearer {key}",
        "--max-examples": str(max_examples),
        "--workers": "1",
        "--phases": "examples,coverage,fuzzing",
        "--suppress-health-check": "all",
        "--request-timeout": "30",
        "--report": "json,pytest",
        "--report-json-path": str(report),
        "--report-pytest-path": str(report_dir / f"{key_name}_failures.py"),
        "--output-truncate": "true",
        "--generation-database": "none",
        **({"--seed": str(seed)} if seed is not None else {}),
    }
    schemathesis = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG), "--no-color"]
    command = [*schemathesis, "run", f"{url}/openapi.json", *(part for pair in options.items() for part in pair)]
    started = time.monotonic()
    env = {"SCHEMATHESIS_HOOKS": HOOKS, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(command, cwd=ROOT, env=os.environ | env, capture_output=True, text=True, timeout=timeout_s)
    seconds = time.monotonic() - started
    (report_dir / f"{key_name}.log").write_text(done.stdout + done.stderr)
    operations, cases, failures = _figures(report, done.returncode)
    return FuzzRun(key_name, operations, cases, failures, round(seconds, 1), str(report_dir / f"{key_name}.log"))


def _figures(report: Path, returncode: int) -> tuple[int, int, int]:
    """Operations tested, cases sent and failures (distinct, and errors), from schemathesis's JSON report."""
    if not report.exists():
        return 0, 0, max(1, returncode)
    data = json.loads(report.read_text())
    cases = data["test_cases"]
    failures = int(cases["unique_failures"]) + sum(int(e["count"]) for e in data["errors"])
    return int(data["operations"]["tested"]), int(cases["generated"]), failures or (1 if returncode else 0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=100, help="cases per operation and phase (default 100)")
    parser.add_argument("--seed", type=int, help="schemathesis's random seed (default: a new one)")
    parser.add_argument("--report-dir", type=Path, help="keep the reports here (default: a temporary directory)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, Devnet(block_time_s=1) as devnet:
        data = Path(tmp)
        report_dir = args.report_dir or data / "reports"
        report_dir.mkdir(parents=True, exist_ok=True)
        # Schemathesis sends requests without a key on purpose (each must be a 401), and bursts of a few
        # hundred a second with one key: both rate limits are off (tests/node/api/test_rate_limits.py has
        # them), or their 429s would stand in for the answers under test.
        limits_off = {"CORRIDOR_NODE_AUTH_FAILURES_PER_S": "0", "CORRIDOR_NODE_RATE_LIMIT_KEY_PER_S": "0"}
        node = serve_demo_network(data, devnet, env=limits_off)
        try:
            keys = {
                "bank": node.api_keys["FATLUS33"],
                "operator": DEVNET_OPERATOR_API_KEY,
                "auditor": DEVNET_AUDITOR_API_KEY,
            }
            runs = [fuzz(node.url, name, key, args.max_examples, report_dir, args.seed) for name, key in keys.items()]
        finally:
            stop(node.procs)
        for run in runs:
            print(
                f"{run.key:<9} operations {run.operations:>3}  cases {run.cases:>6}  failures {run.failures:>3}  "
                f"{run.seconds:>7.1f} s  ({run.report})"
            )
        if args.json:
            args.json.write_text(json.dumps([asdict(r) for r in runs], indent=2) + "\n")
        return 1 if any(r.failures for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
