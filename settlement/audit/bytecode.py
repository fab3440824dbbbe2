"""Reproducible build: the deployed runtime code equals the repository's sources compiled with
the manifest's compiler and settings.

Runtime code holds the constructor's immutables (the fee account, the EIP-712 domain's cached
values, an asset's decimals); their bytes are compared not against the compiler's zero
placeholders but against the values the manifest implies, so they are checked too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from eth_utils.crypto import keccak

from contracts.build import compile_sources
from settlement.audit.report import Check
from settlement.chain.rpc import Rpc
from settlement.eip712 import DOMAIN_NAME, DOMAIN_VERSION, Domain
from settlement.manifest import Manifest

_VERSION = re.compile(r"^(\d+\.\d+\.\d+)\+commit\.([0-9a-f]+)")


def _word(value: int | bytes | str) -> bytes:
    if isinstance(value, str):
        return bytes.fromhex(value.removeprefix("0x")).rjust(32, b"\0")
    if isinstance(value, int):
        return value.to_bytes(32, "big")
    return value


def _short_string(text: str) -> bytes:
    """OpenZeppelin's ``ShortStrings.toShortString``: the bytes left-aligned, the length last."""
    raw = text.encode()
    return raw.ljust(31, b"\0") + bytes([len(raw)])


def expected_immutables(contract: str, manifest: Manifest, address: str, currency: str = "") -> dict[str, bytes]:
    """What each immutable of a deployed contract must hold, by variable name."""
    if contract == "SettlementAsset":
        return {"_decimals": _word(manifest.assets[currency].decimals)}
    return {
        "feeAccount": _word(manifest.roles.get("fee_account", "")),
        "_cachedDomainSeparator": Domain(manifest.chain_id, manifest.vault).separator(),
        "_cachedChainId": _word(manifest.chain_id),
        "_cachedThis": _word(address),
        "_hashedName": keccak(text=DOMAIN_NAME),
        "_hashedVersion": keccak(text=DOMAIN_VERSION),
        "_name": _short_string(DOMAIN_NAME),
        "_version": _short_string(DOMAIN_VERSION),
    }


def _declarations(node: Any) -> Iterator[tuple[int, str]]:
    if isinstance(node, dict):
        if node.get("nodeType") == "VariableDeclaration":
            yield node["id"], node["name"]
        for value in node.values():
            yield from _declarations(value)
    elif isinstance(node, list):
        for value in node:
            yield from _declarations(value)


def _metadata_length(code: bytes) -> int:
    """Bytes of the CBOR metadata trailer (its length is the code's last two bytes)."""
    return int.from_bytes(code[-2:], "big") + 2 if len(code) >= 2 else 0


def check_bytecode(rpc: Rpc, manifest: Manifest, block: int, fresh: bool, check: Check) -> None:
    settings = manifest.compiler_settings
    if not settings:
        check.fail("the manifest records no compiler settings: the build cannot be reproduced")
        return
    build_id, version, _, output = compile_sources(settings, force=fresh)
    check.notes.append(
        f"compiled the repository's sources with solc {version} and the manifest's settings "
        f"({'afresh' if fresh else f'build {build_id}, cached when unchanged; --fresh-build recompiles'})"
    )
    ours, theirs = _VERSION.match(version), _VERSION.match(manifest.compiler_version)
    if not ours or not theirs or ours.groups() != theirs.groups():
        check.fail("compiler differs from the manifest's", manifest=manifest.compiler_version, local=version)
    metadata = settings.get("metadata", {})
    strip_metadata = metadata.get("appendCBOR", True) is not False
    if strip_metadata:
        check.notes.append("the manifest's settings append a metadata hash: it is ignored, the rest compared")
    else:
        check.notes.append("the build appends no metadata: code compared byte for byte, immutables by value")

    names, compiled = _compiled(output)
    targets = [("SettlementVault", "vault", manifest.vault, "")]
    targets += [("SettlementAsset", f"asset {code}", entry.address, code) for code, entry in manifest.assets.items()]
    codes = rpc.batch([("eth_getCode", [address, hex(block)]) for _, _, address, _ in targets])
    for (contract, label, address, currency), code_hex in zip(targets, codes, strict=True):
        check.checked += 1
        deployed = bytes.fromhex(code_hex[2:])
        reference = compiled.get(contract)
        if reference is None:
            check.fail("contract not in the build", contract=contract)
            continue
        built = bytearray(bytes.fromhex(reference["object"]))
        if not deployed:
            check.fail("no code at the address", contract=label, address=address)
            continue
        expected = expected_immutables(contract, manifest, address, currency)
        _check_immutables(check, label, reference, names, expected, deployed, built)
        if strip_metadata:
            deployed = deployed[: len(deployed) - _metadata_length(deployed)]
            built = built[: len(built) - _metadata_length(bytes(built))]
        if bytes(built) != deployed:
            first = next(
                (i for i, (x, y) in enumerate(zip(built, deployed, strict=False)) if x != y),
                min(len(built), len(deployed)),
            )
            check.fail(
                "deployed code differs from the sources",
                contract=label,
                address=address,
                built_bytes=len(built),
                deployed_bytes=len(deployed),
                first_difference_at=first,
            )


def _compiled(output: dict[str, Any]) -> tuple[dict[int, str], dict[str, dict[str, Any]]]:
    """The names of the build's declarations by AST id, and each contract's deployed bytecode."""
    names: dict[int, str] = {}
    compiled: dict[str, dict[str, Any]] = {}
    for source in output["sources"].values():
        names.update(_declarations(source.get("ast", {})))
    for path, contracts in output["contracts"].items():
        for name, c in contracts.items():
            if path.startswith("contracts/"):
                compiled[name] = c["evm"]["deployedBytecode"]
    return names, compiled


def _check_immutables(
    check: Check,
    label: str,
    reference: dict[str, Any],
    names: dict[int, str],
    expected: dict[str, bytes],
    deployed: bytes,
    built: bytearray,
) -> None:
    """Each immutable in the deployed code against the manifest's value; copied into ``built`` so
    that the rest of the code compares byte for byte."""
    for ident, ranges in reference.get("immutableReferences", {}).items():
        name = names.get(int(ident), f"#{ident}")
        value = expected.get(name)
        for r in ranges:
            start, length = r["start"], r["length"]
            found = deployed[start : start + length]
            if value is None:
                check.fail("immutable with no expected value", contract=label, immutable=name)
            elif found != value[-length:]:
                check.fail(
                    "immutable differs from the manifest",
                    contract=label,
                    immutable=name,
                    expected="0x" + value[-length:].hex(),
                    found="0x" + found.hex(),
                )
            built[start : start + length] = found
