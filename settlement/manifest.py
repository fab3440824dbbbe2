"""The deployment manifest: what was deployed where, and with which compiler and sources."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from settlement.errors import ManifestError

DEFAULT_PATH = Path(os.environ.get("CORRIDOR_MANIFEST", ".data/manifest.json"))


@dataclass
class AssetEntry:
    address: str
    decimals: int


@dataclass
class Manifest:
    chain_id: int
    vault: str = ""
    deployment_block: int = 0
    assets: dict[str, AssetEntry] = field(default_factory=dict)
    roles: dict[str, str] = field(default_factory=dict)
    compiler_version: str = ""
    compiler_settings: dict[str, Any] = field(default_factory=dict)
    build_id: str = ""
    source_hash: str = ""
    band_bps: int = 0
    rate_max_age_s: int = 0

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=False) + "\n"

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(self.to_json())
        tmp.replace(path)

    def asset(self, code: str) -> AssetEntry:
        entry = self.assets.get(code)
        if entry is None:
            raise ManifestError(
                f"currency {code} is not deployed on chain {self.chain_id}; "
                f"deployed: {', '.join(sorted(self.assets)) or 'none'}"
            )
        return entry

    @classmethod
    def load(cls, path: Path, chain_id: int | None = None) -> Manifest:
        if not path.exists():
            raise ManifestError(f"no deployment manifest at {path}: run scripts/deploy.py first")
        try:
            data = json.loads(path.read_text())
            data["assets"] = {k: AssetEntry(**v) for k, v in data.get("assets", {}).items()}
            manifest = cls(**data)
        except (ValueError, TypeError) as exc:
            raise ManifestError(f"{path} is not a deployment manifest: {exc}") from None
        if chain_id is not None and manifest.chain_id != chain_id:
            raise ManifestError(f"{path} is for chain {manifest.chain_id}, but the endpoint is chain {chain_id}")
        return manifest
