"""The ISO 20022 layer without a node: the vendored schemas are the ones named, a pacs.008 maps as
the README's table says, and every pacs.002 Corridor writes is valid against its schema."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import re

import pytest
from eth_utils.crypto import keccak
from hypothesis import given
from hypothesis import strategies as st

from node.bank.iso20022 import pacs008
from node.errors import Refused
from node.iso20022 import pacs002
from node.iso20022 import pacs008 as inbound
from node.iso20022.schemas import PACS002, XSD_DIR, check
from settlement.lifecycle import ReasonCode, TransferStatus
from tests.node.iso20022.samples import credit_transfer

T = credit_transfer()


def test_vendored_schemas_are_the_ones_sources_names() -> None:
    listed = dict(re.findall(r"\| (\S+\.xsd) \| ([0-9a-f]{64}) \|", (XSD_DIR / "SOURCES.md").read_text()))
    on_disk = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in XSD_DIR.glob("*.xsd")}
    assert listed == on_disk


def test_a_document_maps_field_by_field() -> None:
    doc = inbound.parse(pacs008(T))
    assert (doc.uetr, doc.msg_id, doc.end_to_end_id, doc.debtor_bic, doc.creditor_bic) == (
        T.uetr,
        T.msg_id,
        T.end_to_end_id,
        "FATLUS33",
        "RHNLDEFF",
    )
    terms = doc.terms
    assert (terms.nonce, terms.sell_currency, terms.sell_amount, terms.buy_currency) == (7, "USD", 250000, "EUR")
    assert terms.min_buy_amount == 212500
    assert terms.deadline == int(T.settle_by.replace(microsecond=0).timestamp())
    assert terms.details_hash == "0x" + keccak(doc.details.encode()).hex()
    details = json.loads(doc.details)
    assert details["beneficiary"] == {"name": "Erika Mustermann", "country": "DE", "account": "DE89370400440532013000"}
    assert details["ordering_customer"] == {"name": "John Smith", "country": "US", "account": "000123456789"}
    assert details["iso20022"]["msg_id"] == T.msg_id
    # The details are the document's: another remittance text is another hash, and another signature.
    other = inbound.parse(pacs008(dataclasses.replace(T, remittance="invoice 43")))
    assert other.terms.details_hash != terms.details_hash


def test_minimum_rounds_down_in_the_buy_currencys_minor_unit() -> None:
    jpy = inbound.parse(pacs008(dataclasses.replace(T, creditor_currency="JPY", rate="151.2345")))
    assert jpy.terms.min_buy_amount == 378086  # 2,500.00 × 151.2345 = 378,086.25 -> 378,086 yen
    from_jpy = inbound.parse(pacs008(dataclasses.replace(T, currency="JPY", amount="1000", rate="0.0066")))
    assert (from_jpy.terms.sell_amount, from_jpy.terms.min_buy_amount) == (1000, 660)  # 6.60 EUR


@given(
    amount_minor=st.integers(1, 10**15),
    rate_digits=st.integers(1, 10**10),
    scale=st.integers(0, 10),
)
def test_minimum_is_exact_integer_arithmetic(amount_minor: int, rate_digits: int, scale: int) -> None:
    rate = f"{rate_digits // 10**scale}.{rate_digits % 10**scale:0{scale}d}" if scale else str(rate_digits)
    minimum = inbound._min_buy(amount_minor, "USD", "JPY", rate)
    # USD 2 decimals, JPY none: floor(amount / 100 × rate) yen, by fractions.
    from fractions import Fraction

    assert minimum == int(Fraction(amount_minor, 100) * Fraction(rate))


def test_deadline_from_settlement_date_and_till_time() -> None:
    assert inbound._deadline("2026-12-02", None) == int(dt.datetime(2026, 12, 2, 23, 59, 59, tzinfo=dt.UTC).timestamp())
    assert inbound._deadline("2026-12-02", "14:30:00Z") == int(
        dt.datetime(2026, 12, 2, 14, 30, tzinfo=dt.UTC).timestamp()
    )
    assert inbound._deadline("2026-12-02", "14:30:00+01:00") == int(
        dt.datetime(2026, 12, 2, 13, 30, tzinfo=dt.UTC).timestamp()
    )
    with pytest.raises(Refused) as refused:
        inbound._deadline(None, None)
    assert refused.value.details["element"] == "IntrBkSttlmDt"


def test_bics_compare_by_institution_and_branch() -> None:
    assert inbound.same_bic("FATLUS33", "FATLUS33XXX")
    assert not inbound.same_bic("FATLUS33", "FATLUS33NYC")
    assert not inbound.same_bic("FATLUS33", "RHNLDEFF")


def _step(status: TransferStatus, code: str = "", **over: object) -> pacs002.Step:
    step = pacs002.Step(
        uetr=T.uetr,
        debtor_bic="FATLUS33",
        status=status,
        code=code,
        reason="why " * 40,
        at=dt.datetime(2026, 12, 2, 12, tzinfo=dt.UTC),
    )
    return dataclasses.replace(step, **over)  # type: ignore[arg-type]


@pytest.mark.parametrize("status", list(TransferStatus))
def test_every_state_has_a_valid_report(status: TransferStatus) -> None:
    xml = pacs002.report(_step(status, tx_hash="0x" + "ab" * 32, block_number=123))
    assert check(xml, PACS002) == []
    assert f"<TxSts>{pacs002.STATUS[status]}</TxSts>".encode() in xml


def test_acsc_only_when_final() -> None:
    assert [s for s, iso in pacs002.STATUS.items() if iso == "ACSC"] == [TransferStatus.FINAL]


@pytest.mark.parametrize(
    ("code", "iso"),
    [
        (ReasonCode.INSUFFICIENT_COVER, "AM04"),
        ("InsufficientAvailable", "AM04"),
        (ReasonCode.SANCTIONS_NAME, "RR04"),
        (ReasonCode.CORRIDOR_PAIR, "AG01"),
        (ReasonCode.DEADLINE_PASSED, "AB05"),
        ("InstructionNonceUsed", "DUPL"),
        (ReasonCode.REVIEW_REJECTED, "NARR"),
    ],
)
def test_rejections_carry_the_iso_reason_code(code: str, iso: str) -> None:
    xml = pacs002.report(_step(TransferStatus.REJECTED, code))
    assert f"<Cd>{iso}</Cd>".encode() in xml
    assert check(xml, PACS002) == []


def test_a_report_is_the_same_message_each_time_and_differs_per_step() -> None:
    assert pacs002.report(_step(TransferStatus.QUEUED)) == pacs002.report(_step(TransferStatus.QUEUED))
    later = _step(TransferStatus.QUEUED, at=dt.datetime(2026, 12, 2, 12, 0, 1, tzinfo=dt.UTC))
    assert pacs002.report_id(_step(TransferStatus.QUEUED)) != pacs002.report_id(later)
    assert pacs002.report_id(_step(TransferStatus.QUEUED)) != pacs002.report_id(_step(TransferStatus.SETTLED))
    assert len(pacs002.report_id(_step(TransferStatus.QUEUED))) <= 35


def test_camt_and_pacs004_documents_are_valid() -> None:
    from node.iso20022 import camt, pacs004
    from node.iso20022.schemas import CAMT053, CAMT054, PACS004

    at = dt.datetime(2026, 12, 2, 12, tzinfo=dt.UTC)
    debit = camt.Entry(250000, "USD", False, at, "0x" + "ab" * 32, 12, "settlement", T.uetr, "E2E-1", "RHNLDEFF")
    credit = dataclasses.replace(debit, amount_minor=21250, currency="JPY", credit=True, uetr="0x" + "cd" * 32)
    note = camt.notification("FATLUS33", debit)
    assert check(note, CAMT054) == [] and b"<CdtDbtInd>DBIT</CdtDbtInd>" in note and b"2500.00" in note
    day = camt.statement(
        "FATLUS33", "USD", at.date(), camt.Balances(10, 10), camt.Balances(-5, -5), [debit, credit], at
    )
    assert check(day, CAMT053) == [] and b"<NbOfNtries>2</NbOfNtries>" in day
    assert b"<UETR>" + T.uetr.encode() in day and day.count(b"<UETR>") == 1  # a hex id is not a UETR
    long_ago = camt.statement("FATLUS33", "USD", dt.date(477, 10, 23), camt.Balances(0, 0), camt.Balances(0, 0), [], at)
    assert check(long_ago, CAMT053) == [] and b"0477-10-23T00:00:00.000Z" in long_ago  # a year in four digits
    back = pacs004.Returned(T.uetr, "FATLUS33", 1000, "JPY", "deadline_passed", "deadline passed", at, "m", None, None)
    returned = pacs004.payment_return(back)
    assert check(returned, PACS004) == [] and b"<Cd>TM01</Cd>" in returned and b'Ccy="JPY">1000<' in returned
