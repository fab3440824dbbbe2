"""Compile the Solidity sources with the pinned compiler and write artifacts.

The compiler is a native ``solc`` of the pinned version when one is on ``PATH``, and
otherwise ``contracts/tools/solc``: solcjs from ``node_modules`` behind a native-solc face.
Both are driven through py-solc-x's standard-JSON interface.

Outputs, under ``artifacts/``:

* ``<Contract>.json``: ``abi``, ``bytecode``, ``deployedBytecode``, ``metadata``;
* ``build-info/<id>.json``: a Hardhat-style build-info file (the whole standard-JSON input
  and output), which slither reads with ``--hardhat-ignore-compile``.

A build is cached by the hash of its standard-JSON input and the compiler version: when
nothing changed, ``build()`` reads the artifacts back without calling the compiler.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import solcx

ROOT = Path(__file__).resolve().parent.parent
CONTRACTS_DIR = ROOT / "contracts"
ARTIFACTS_DIR = ROOT / "artifacts"
NODE_MODULES = ROOT / "node_modules"
WRAPPER = CONTRACTS_DIR / "tools" / "solc"

SOLC_VERSION = "0.8.30"
REMAPPINGS = {"@openzeppelin/contracts/": "node_modules/@openzeppelin/contracts/"}
DEPLOYABLE = ("SettlementVault", "SettlementAsset")

# The same settings as foundry.toml, so that forge and this build produce the same bytecode.
SETTINGS: dict[str, Any] = {
    "optimizer": {"enabled": True, "runs": 600},
    "evmVersion": "prague",
    "viaIR": True,
    "metadata": {"bytecodeHash": "none", "appendCBOR": False},
    "remappings": [f"{k}={v}" for k, v in REMAPPINGS.items()],
    "outputSelection": {
        "*": {
            "*": [
                "abi",
                "evm.bytecode",
                "evm.deployedBytecode",
                "evm.methodIdentifiers",
                "metadata",
            ],
            "": ["ast"],
        }
    },
}

_IMPORT = re.compile(r"""^\s*import\s+(?:[^"']*from\s+)?["']([^"']+)["']""", re.MULTILINE)


class BuildError(RuntimeError):
    """The compiler could not be found or reported errors."""


@dataclass(frozen=True, slots=True)
class Artifact:
    name: str
    abi: list[dict[str, Any]]
    bytecode: str
    deployed_bytecode: str


@dataclass(frozen=True, slots=True)
class Build:
    build_id: str
    compiler_version: str
    source_hash: str
    settings: dict[str, Any]
    artifacts: dict[str, Artifact]

    def artifact(self, name: str) -> Artifact:
        return self.artifacts[name]


def compiler_binary() -> Path:
    """A native solc of the pinned version if one is on PATH, else the solcjs wrapper."""
    native = shutil.which("solc")
    if native:
        probe = subprocess.run([native, "--version"], capture_output=True, text=True, timeout=30)
        if f"Version: {SOLC_VERSION}+" in probe.stdout:
            return Path(native)
    if not (NODE_MODULES / "solc").is_dir():
        raise BuildError("solcjs is missing: run `npm ci` (the README's commands do it for you)")
    return WRAPPER


def compiler_version(binary: Path) -> str:
    probe = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=60)
    match = re.search(r"Version: (\S+)", probe.stdout)
    if probe.returncode != 0 or not match:
        raise BuildError(f"{binary} --version failed: {probe.stderr.strip() or probe.stdout}")
    return match.group(1)


def _resolve(import_path: str, importer: str) -> str:
    if import_path.startswith("."):
        return str((Path(importer).parent / import_path).as_posix()).replace("/./", "/")
    for prefix, target in REMAPPINGS.items():
        if import_path.startswith(prefix):
            return target + import_path[len(prefix) :]
    return import_path


def _normalise(path: str) -> str:
    parts: list[str] = []
    for part in path.split("/"):
        if part == "..":
            parts.pop()
        elif part not in ("", "."):
            parts.append(part)
    return "/".join(parts)


def collect_sources() -> dict[str, dict[str, str]]:
    """Every source the contracts need, keyed by path relative to the repository root."""
    roots = sorted(
        p.relative_to(ROOT).as_posix()
        for p in CONTRACTS_DIR.rglob("*.sol")
        if "tools" not in p.relative_to(CONTRACTS_DIR).parts
    )
    sources: dict[str, dict[str, str]] = {}
    pending = list(roots)
    while pending:
        path = pending.pop()
        if path in sources:
            continue
        content = (ROOT / path).read_text()
        sources[path] = {"content": content}
        for imported in _IMPORT.findall(content):
            pending.append(_normalise(_resolve(imported, path)))
    # Import statements name remapped paths; the compiler must see the same keys.
    return dict(sorted(sources.items()))


def source_hash(input_json: dict[str, Any]) -> str:
    """SHA-256 of the project's own sources (not node_modules), for the deployment manifest."""
    digest = hashlib.sha256()
    for path, source in input_json["sources"].items():
        if path.startswith("contracts/"):
            digest.update(path.encode() + b"\0" + source["content"].encode() + b"\0")
    return "0x" + digest.hexdigest()


def build(force: bool = False) -> Build:
    """Compile (or read the cached build of) the contracts."""
    build_id, version, input_json, output = compile_sources(force=force)
    return Build(
        build_id=build_id,
        compiler_version=version,
        source_hash=source_hash(input_json),
        settings=SETTINGS,
        artifacts=_artifacts(output),
    )


def compile_sources(
    settings: dict[str, Any] | None = None, force: bool = False
) -> tuple[str, str, dict[str, Any], dict[str, Any]]:
    """The repository's sources compiled with ``settings`` (the project's own by default):
    build id, compiler version, standard-JSON input and output.

    The project's build is cached under ``artifacts/`` (and written there as artifacts); a
    build with other settings (an auditor reproducing a deployment made with them) is
    compiled in memory and leaves ``artifacts/`` alone.
    """
    binary = compiler_binary()
    version = compiler_version(binary)
    input_json = {"language": "Solidity", "sources": collect_sources(), "settings": settings or SETTINGS}
    canonical = json.dumps(input_json, sort_keys=True, separators=(",", ":"))
    build_id = hashlib.sha256(f"{version}\n{canonical}".encode()).hexdigest()[:32]
    own = input_json["settings"] == SETTINGS
    info_path = ARTIFACTS_DIR / "build-info" / f"{build_id}.json"
    if own and not force and info_path.exists():
        info = json.loads(info_path.read_text())
        return build_id, version, info["input"], info["output"]
    output = solcx.compile_standard(input_json, solc_binary=str(binary), base_path=str(ROOT), allow_paths=[str(ROOT)])
    errors = [e for e in output.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise BuildError("\n".join(e.get("formattedMessage", str(e)) for e in errors))
    if own:
        _write(build_id, version, input_json, output)
    return build_id, version, input_json, output


def _artifacts(output: dict[str, Any]) -> dict[str, Artifact]:
    found: dict[str, Artifact] = {}
    for path, contracts in output["contracts"].items():
        if not path.startswith("contracts/"):
            continue
        for name, c in contracts.items():
            found[name] = Artifact(
                name=name,
                abi=c["abi"],
                bytecode="0x" + c["evm"]["bytecode"]["object"],
                deployed_bytecode="0x" + c["evm"]["deployedBytecode"]["object"],
            )
    return found


def _write(build_id: str, version: str, input_json: dict[str, Any], output: dict[str, Any]) -> None:
    info_dir = ARTIFACTS_DIR / "build-info"
    if info_dir.exists():
        shutil.rmtree(info_dir)
    info_dir.mkdir(parents=True)
    info = {
        "_format": "hh-sol-build-info-1",
        "id": build_id,
        "solcVersion": version.split("+")[0],
        "solcLongVersion": version,
        "input": input_json,
        "output": output,
    }
    (info_dir / f"{build_id}.json").write_text(json.dumps(info))
    for path, contracts in output["contracts"].items():
        if not path.startswith("contracts/"):
            continue
        for name, c in contracts.items():
            artifact = {
                "contractName": name,
                "sourceName": path,
                "abi": c["abi"],
                "bytecode": "0x" + c["evm"]["bytecode"]["object"],
                "deployedBytecode": "0x" + c["evm"]["deployedBytecode"]["object"],
                "metadata": c.get("metadata", ""),
                "buildInfo": build_id,
            }
            (ARTIFACTS_DIR / f"{name}.json").write_text(json.dumps(artifact, indent=1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Compile the Corridor contracts into artifacts/ (cached by source hash)."
    )
    parser.add_argument("--force", action="store_true", help="compile even if cached")
    args = parser.parse_args(argv)
    result = build(force=args.force)
    names = ", ".join(sorted(n for n in result.artifacts if n in DEPLOYABLE))
    print(  # noqa: T201
        f"built {names} with solc {result.compiler_version} (build {result.build_id})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
