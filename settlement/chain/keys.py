"""Where the operator's keys come from: environment variables or an encrypted keystore.

A role's key is ``CORRIDOR_<ROLE>_KEY`` (hex), or the keystore file ``<dir>/<role>.json``
(the Ethereum keyfile format, scrypt-encrypted) unlocked with
``CORRIDOR_KEYSTORE_PASSWORD``. Keys never live in code. On a development chain (chain id
31337) the well-known keys of the ``test test ... junk`` mnemonic may be used instead, and
nowhere else.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from eth_account import Account

from settlement.errors import KeyError_

DEVNET_CHAIN_ID = 31337
DEVNET_MNEMONIC = "test test test test test test test test test test test junk"

ROLES = ("admin", "operator", "oracle", "issuer", "relayer", "fee")
"""The operator-side roles, each with its own key. Participants follow them in the devnet."""

_DEVNET_INDEX = {role: i for i, role in enumerate(ROLES)}


def devnet_key(index: int) -> str:
    """Private key ``index`` of the well-known development mnemonic (anvil's accounts)."""
    Account.enable_unaudited_hdwallet_features()
    account = Account.from_mnemonic(DEVNET_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")
    return "0x" + bytes(account.key).hex()


def load_key(role: str, *, keystore: Path | None = None, chain_id: int | None = None, devnet: bool = False) -> str:
    """The private key (hex) for ``role``."""
    env_name = f"CORRIDOR_{role.upper()}_KEY"
    if value := os.environ.get(env_name):
        return value if value.startswith("0x") else "0x" + value
    if keystore is not None:
        path = keystore / f"{role}.json"
        if not path.exists():
            raise KeyError_(f"no keystore file for the {role} key at {path}")
        password = os.environ.get("CORRIDOR_KEYSTORE_PASSWORD")
        if password is None:
            raise KeyError_("set CORRIDOR_KEYSTORE_PASSWORD to unlock the keystore")
        try:
            key = Account.decrypt(json.loads(path.read_text()), password)
        except ValueError:
            raise KeyError_(f"cannot decrypt {path}: wrong password or damaged file") from None
        return "0x" + bytes(key).hex()
    if devnet:
        if chain_id != DEVNET_CHAIN_ID:
            raise KeyError_(
                f"--devnet keys are well known and refused on chain {chain_id}; set {env_name} or use --keystore"
            )
        if role not in _DEVNET_INDEX:
            raise KeyError_(f"no development key for role {role!r}")
        return devnet_key(_DEVNET_INDEX[role])
    raise KeyError_(f"no key for the {role} role: set {env_name} or use --keystore DIR")
