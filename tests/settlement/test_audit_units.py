"""The auditor's pieces that need no chain: call decoding, amounts, statement periods."""

from __future__ import annotations

import os
from datetime import date

import pytest

from contracts.build import compile_sources
from settlement.audit.decoding import decode_call
from settlement.audit.report import major
from settlement.audit.statement import Period
from settlement.chain.vault import (
    Action,
    SignedInstruction,
    SignedQuote,
    escrow_batch_calldata,
    resolve_batch_calldata,
    selectors,
)
from settlement.eip712 import CompactSignature, Instruction, Quote, new_uetr

DEBTOR = "0x976EA74026E726554dB657fA54763abd0C3a0aa9"
CREDITOR = "0x14dC79964da2C08b23698B3D3cc7Ca32193d9955"
LP = "0xBcd4042DE499D14e55001CcbB24a551F3b954096"
SIG = CompactSignature(b"\x01" * 32, b"\x02" * 32)


def _instruction(nonce: int) -> Instruction:
    return Instruction(
        new_uetr(), nonce, DEBTOR, CREDITOR, b"USD", 100_00 + nonce, b"EUR", 0, 2_000_000_000, os.urandom(32)
    )


def test_the_selectors_are_the_contracts_own() -> None:
    output = compile_sources()[3]
    identifiers = output["contracts"]["contracts/SettlementVault.sol"]["SettlementVault"]["evm"]["methodIdentifiers"]
    by_name = {signature.split("(")[0]: bytes.fromhex(selector) for signature, selector in identifiers.items()}
    for name, selector in selectors().items():
        assert by_name[name] == selector, name


def test_escrow_and_resolution_calldata_decode_to_what_was_encoded() -> None:
    batch = [SignedInstruction(_instruction(n), SIG) for n in range(3)]
    call = decode_call(escrow_batch_calldata(7, batch))
    assert call is not None and call.function == "escrowBatch"
    assert [(e.instruction, e.signature) for e in call.escrows] == [(s.instruction, s.signature) for s in batch]

    quote = SignedQuote(Quote(b"USD", b"EUR", 9 * 10**17, 5, LP, 2_000_000_000), SIG)
    items = [
        (batch[0].instruction.terms(), Action.SETTLE, 0),
        (batch[1].instruction.terms(), Action.KEEP, 0),
        (batch[2].instruction.terms(), Action.REFUND, 0),
    ]
    call = decode_call(resolve_batch_calldata(DEBTOR, 7, items, [quote]))
    assert call is not None and call.function == "resolveBatch"
    # Kept positions emit nothing, so they are not among the resolutions.
    assert [(r.action, r.terms) for r in call.resolutions] == [
        (Action.SETTLE, batch[0].instruction.terms()),
        (Action.REFUND, batch[2].instruction.terms()),
    ]
    assert call.resolutions[0].quote is not None and call.resolutions[0].quote.quote == quote.quote
    assert call.resolutions[1].quote is None
    assert decode_call(bytes.fromhex("a9059cbb") + bytes(64)) is None  # an ERC-20 transfer is not a vault call


def test_amounts_are_printed_in_major_units_without_floats() -> None:
    assert major(123456, 2) == "1234.56"
    assert major(-5, 2) == "-0.05"
    assert major(61368706, 0) == "61368706"
    assert major(1, 18) == "0.000000000000000001"


def test_a_statement_period_is_bounded_and_ordered() -> None:
    assert len(Period(date(2026, 11, 1), date(2026, 11, 30)).days()) == 30
    with pytest.raises(ValueError, match="ends"):
        Period(date(2026, 11, 2), date(2026, 11, 1))
    with pytest.raises(ValueError, match="at most"):
        Period(date(2000, 1, 1), date(2026, 1, 1))
