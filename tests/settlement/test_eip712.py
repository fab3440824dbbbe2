import os
from dataclasses import replace

import pytest
from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_typed_data

from settlement.eip712 import (
    CompactSignature,
    Domain,
    Instruction,
    Quote,
    digest,
    id_to_uuid,
    new_uetr,
    recover,
    sign,
    typed_data,
)

DOMAIN = Domain(31337, "0x5615dEB798BB3E4dFa0139dFa1b3D433Cc23b72f")
KEY = "0x" + "11" * 32


def _instruction() -> Instruction:
    return Instruction(
        id=new_uetr(),
        nonce=7,
        debtor=Account.from_key(KEY).address,
        creditor="0xbF89b3b1FcBB2c7484b50938C50bD32F0a164725",
        sell_currency=b"USD",
        sell_amount=250_000_00,
        buy_currency=b"EUR",
        min_buy_amount=229_000_00,
        deadline=1_800_000_000,
        details_hash=os.urandom(32),
    )


def _quote() -> Quote:
    return Quote(b"USD", b"EUR", 920_000_000_000_000_000, 5, DOMAIN.verifying_contract, 1_800_000_000)


@pytest.mark.parametrize("item", [_instruction(), _quote()])
def test_digest_matches_eth_account_encoder(item: Instruction | Quote) -> None:
    generic = _hash_eip191_message(encode_typed_data(full_message=typed_data(DOMAIN, item)))
    assert generic == digest(DOMAIN, item.struct_hash())


def test_sign_and_recover_round_trip() -> None:
    ins = _instruction()
    assert recover(DOMAIN, ins, sign(DOMAIN, ins, KEY)) == Account.from_key(KEY).address


def test_signature_does_not_carry_to_another_domain() -> None:
    ins = _instruction()
    sig = sign(DOMAIN, ins, KEY)
    other_chain = Domain(1, DOMAIN.verifying_contract)
    other_vault = Domain(31337, "0x" + "22" * 20)
    assert recover(other_chain, ins, sig) != ins.debtor
    assert recover(other_vault, ins, sig) != ins.debtor


def test_high_s_is_refused() -> None:
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    with pytest.raises(ValueError, match="high-s"):
        CompactSignature.from_rsv(1, n - 1, 27)


def test_terms_leaf_commits_to_escrowed_fields() -> None:
    ins = _instruction()
    # The nonce and the details hash are spent and signed at escrow; settlement does not need them.
    assert replace(ins, nonce=8, details_hash=bytes(32)).terms().leaf() == ins.terms().leaf()
    assert replace(ins, sell_amount=1).terms().leaf() != ins.terms().leaf()
    assert ins.terms().leaf() != ins.struct_hash()


def test_uetr_round_trip() -> None:
    uetr = new_uetr()
    assert len(uetr) == 32 and uetr[16:] == bytes(16)
    assert id_to_uuid(uetr).version == 4
    with pytest.raises(ValueError):
        id_to_uuid(b"\x01" * 32)


def test_keccak_runs_on_the_c_backend() -> None:
    """``settlement`` selects safe-pysha3 for eth-hash (pycryptodome, its first choice, is ~7x slower)."""
    from eth_hash.auto import keccak as auto
    from eth_hash.backends.pysha3 import PySha3Backend

    assert auto(b"") == bytes.fromhex("c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470")
    assert isinstance(auto.hasher.__self__, PySha3Backend)  # type: ignore[attr-defined]
