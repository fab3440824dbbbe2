"""pacs.008 in and pacs.002 out through the API: the typed data to sign, the submission, every
refusal (a 4xx naming the element, nothing stored), idempotency by document, the status report."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest
from eth_account import Account
from sqlalchemy import func, select

from node.bank.iso20022 import pacs008
from node.iso20022.schemas import CAMT054, PACS002, PACS004, check
from node.store.models import IsoDocument, Transfer, TransferEvent
from tests.node.api.conftest import KEYS, Api
from tests.node.iso20022.samples import credit_transfer as transfer

XML = {"Content-Type": "application/xml"}


def typed_data(api: Api, xml: bytes, who: str = "FATLUS33") -> Any:
    return api.client.post("/v1/iso20022/pacs.008/instruction", content=xml, headers=api.auth(who) | XML)


def signature(api: Api, xml: bytes, signer: str = "FATLUS33") -> str:
    r = typed_data(api, xml)
    assert r.status_code == 200, r.text
    signed = Account.sign_typed_data(KEYS[signer], full_message=r.json()["typed_data"])
    return "0x" + bytes(signed.signature).hex()


def submit(api: Api, xml: bytes, sig: str | None, who: str = "FATLUS33", **headers: str) -> Any:
    extra = {"Corridor-Signature": sig} if sig is not None else {}
    return api.client.post("/v1/iso20022/pacs.008", content=xml, headers=api.auth(who) | XML | extra | headers)


def iso_documents(api: Api) -> int:
    with api.store.transaction(write=False) as s:
        return int(s.execute(select(func.count()).select_from(IsoDocument)).scalar_one())


def test_typed_data_then_signed_document_makes_a_received_transfer(api: Api) -> None:
    t = transfer()
    xml = pacs008(t)
    r = typed_data(api, xml)
    assert r.status_code == 200, r.text
    message = r.json()["typed_data"]["message"]
    assert message["sellAmount"] == 250000 and message["minBuyAmount"] == 212500  # 2,500.00 USD at 0.85
    assert message["nonce"] == 7 and message["debtor"] == api.addresses["FATLUS33"]
    assert message["creditor"] == api.addresses["RHNLDEFF"]
    r = submit(api, xml, signature(api, xml))
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["id"] == t.uetr and body["status"] == "RECEIVED"
    with api.store.transaction(write=False) as s:
        stored = s.get(Transfer, t.uetr)
        assert stored is not None and stored.details is not None
        assert stored.details["beneficiary"] == {
            "name": "Erika Mustermann",
            "country": "DE",
            "account": "DE89370400440532013000",
        }
        assert stored.details["remittance"] == "invoice 42"
        document = s.get(IsoDocument, t.uetr)
        assert document is not None and document.xml.encode() == xml and document.msg_id == t.msg_id


def test_later_versions_of_pacs008_are_taken(api: Api) -> None:
    for version in (9, 13):
        xml = pacs008(transfer(nonce=20 + version), f"pacs.008.001.{version:02d}")
        assert submit(api, xml, signature(api, xml)).status_code == 202


def test_a_65_byte_signature_is_taken_too(api: Api) -> None:
    xml = pacs008(transfer())
    r = typed_data(api, xml)
    signed = Account.sign_typed_data(KEYS["FATLUS33"], full_message=r.json()["typed_data"])
    rsv = signed.r.to_bytes(32, "big") + signed.s.to_bytes(32, "big") + bytes([signed.v])
    assert submit(api, xml, "0x" + rsv.hex()).status_code == 202


def test_the_same_document_twice_is_one_transfer_another_with_its_uetr_is_409(api: Api) -> None:
    t = transfer()
    xml = pacs008(t)
    sig = signature(api, xml)
    first, again = submit(api, xml, sig), submit(api, xml, sig)
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"]
    assert api.transfer_count() == 1
    other = pacs008(dataclasses.replace(t, amount="2600.00", msg_id="MSG-OTHER"))
    r = submit(api, other, signature(api, other))
    assert r.status_code == 409 and r.json()["error"]["code"] == "iso_document_mismatch"
    assert api.transfer_count() == 1 and iso_documents(api) == 1


def test_a_signature_over_another_mapping_is_refused(api: Api) -> None:
    xml = pacs008(transfer())
    other = pacs008(transfer(amount="9999.00"))
    r = submit(api, xml, signature(api, other))
    assert r.status_code == 422 and r.json()["error"]["code"] == "bad_signature"
    r = submit(api, xml, signature(api, xml, signer="RHNLDEFF"))
    assert r.status_code == 422 and r.json()["error"]["code"] == "bad_signature"
    assert api.transfer_count() == 0 and iso_documents(api) == 0


def _replace(xml: bytes, old: str, new: str) -> bytes:
    assert old.encode() in xml
    return xml.replace(old.encode(), new.encode(), 1)


@pytest.mark.parametrize(
    ("change", "status", "code", "names"),
    [
        (lambda x: _replace(x, "<NbOfTxs>1</NbOfTxs>", "<NbOfTxs>one</NbOfTxs>"), 422, "iso_invalid", "NbOfTxs"),
        (lambda x: _replace(x, "<ChrgBr>SHAR</ChrgBr>", ""), 422, "iso_invalid", "ChrgBr"),
        (lambda x: _replace(x, "pacs.008.001.08", "pacs.009.001.08"), 422, "iso_unsupported", "pacs.009"),
        (lambda x: b"<Document", 422, "iso_invalid", "well-formed"),
        (lambda x: _replace(x, "DE89370400440532013000", "DE89370400440532013001"), 422, "invalid_iban", "CdtrAcct"),
        (lambda x: _replace(x, "<Ctry>DE</Ctry>", "<Ctry>XX</Ctry>"), 422, "invalid_country", "Cdtr"),
        (lambda x: _replace(x, "<Ccy>EUR</Ccy>", ""), 422, "iso_unmappable", "CdtrAcct/Ccy"),
        (lambda x: _replace(x, "<InstrId>7</InstrId>", "<InstrId>REF-7</InstrId>"), 422, "iso_unmappable", "InstrId"),
        (lambda x: _replace(x, "<XchgRate>0.85</XchgRate>", ""), 422, "iso_unmappable", "XchgRate"),
        (lambda x: _replace(x, ">2500.00<", ">2500.005<"), 422, "invalid_amount", "decimals"),
        (lambda x: _replace(x, ">RHNLDEFF<", ">DEUTDEFF<"), 422, "unknown_bank", "DEUTDEFF"),
        (lambda x: _replace(x, ">FATLUS33<", ">THMSGB2L<"), 422, "debtor_mismatch", "THMSGB2L"),
        (lambda x: _replace(x, 'Ccy="USD"', 'Ccy="XYZ"'), 422, "unknown_currency", "XYZ"),
    ],
)
def test_bad_documents_are_refused_by_name_and_store_nothing(
    api: Api, change: Any, status: int, code: str, names: str
) -> None:
    xml = change(pacs008(transfer()))
    for r in (typed_data(api, xml), submit(api, xml, "0x" + "11" * 64)):
        assert r.status_code == status, r.text
        error = r.json()["error"]
        assert error["code"] == code and names in (error["message"] + str(error["details"]))
    assert api.transfer_count() == 0 and iso_documents(api) == 0


def test_hostile_xml_is_refused_before_anything_reads_it(api: Api) -> None:
    document = '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pacs.008.001.08">'
    for body in (
        f'<!DOCTYPE d [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>{document}&b;</Document>',
        f'<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>{document}&x;</Document>',
        "<a>" * 5000 + "</a>" * 5000,
        document + "<FIToFICstmrCdtTrf>" * 1500 + "</FIToFICstmrCdtTrf>" * 1500 + "</Document>",
    ):
        r = submit(api, body.encode(), "0x" + "11" * 64)
        assert r.status_code == 422 and r.json()["error"]["code"] in ("iso_invalid", "iso_unsupported"), r.text
    assert api.transfer_count() == 0


def test_a_json_body_or_no_signature_is_refused(api: Api) -> None:
    xml = pacs008(transfer())
    r = api.client.post(
        "/v1/iso20022/pacs.008", content=xml, headers=api.auth("FATLUS33") | {"Content-Type": "application/json"}
    )
    assert r.status_code in (400, 415)
    r = api.client.post(
        "/v1/iso20022/pacs.008", content=xml, headers=api.auth("FATLUS33") | {"Content-Type": "text/plain"}
    )
    assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported_media_type"
    r = submit(api, xml, None)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"
    r = submit(api, xml, "0x1234")
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"
    assert api.transfer_count() == 0


def test_intake_refusals_apply_to_documents(api: Api) -> None:
    past = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    xml = pacs008(transfer(settle_by=past))
    r = submit(api, xml, signature(api, xml))
    assert r.status_code == 422 and r.json()["error"]["code"] == "deadline_too_soon"
    xml = pacs008(transfer(currency="JPY", amount="1000"))
    r = submit(api, xml, signature(api, xml))
    assert r.status_code == 422 and r.json()["error"]["code"] == "currency_not_held"
    assert api.transfer_count() == 0


def test_pacs002_reports_each_state_valid_against_the_schema(api: Api) -> None:
    t = transfer()
    xml = pacs008(t)
    assert submit(api, xml, signature(api, xml)).status_code == 202
    r = api.get(f"/v1/iso20022/pacs.002/{t.uetr}", "FATLUS33")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/xml")
    assert check(r.content, PACS002) == []
    report = r.text
    assert "<TxSts>ACTC</TxSts>" in report and f"<OrgnlMsgId>{t.msg_id}</OrgnlMsgId>" in report
    assert f"<OrgnlEndToEndId>{t.end_to_end_id}</OrgnlEndToEndId>" in report
    assert f"<OrgnlTxId>{t.uetr.replace('-', '')}</OrgnlTxId>" in report
    assert api.get(f"/v1/iso20022/pacs.002/{t.uetr}", "FATLUS33").content == r.content  # one message per step
    # Cancelled by the bank: RJCT with the reason code CUST.
    assert api.post(f"/v1/transfers/{t.uetr}/cancel", "FATLUS33", {}).status_code == 200
    report = api.get(f"/v1/iso20022/pacs.002/{t.uetr}", "FATLUS33").text
    assert "<TxSts>RJCT</TxSts>" in report and "<Cd>CUST</Cd>" in report
    assert api.get(f"/v1/iso20022/pacs.002/{t.uetr}", "RHNLDEFF").status_code == 404
    assert api.get("/v1/iso20022/pacs.002/not-a-uetr", "FATLUS33").status_code == 404


def test_pacs002_of_a_json_transfer(api: Api) -> None:
    instruction = api.instruction()
    assert api.post("/v1/transfers", "FATLUS33", api.signed(instruction)).status_code == 202
    r = api.get(f"/v1/iso20022/pacs.002/{instruction['id']}", "FATLUS33")
    assert r.status_code == 200 and check(r.content, PACS002) == []
    assert "<OrgnlMsgNmId>corridor.transfer.v1</OrgnlMsgNmId>" in r.text


def test_history_is_kept_per_step(api: Api) -> None:
    t = transfer()
    xml = pacs008(t)
    submit(api, xml, signature(api, xml))
    with api.store.transaction(write=False) as s:
        assert [e.status for e in s.scalars(select(TransferEvent).where(TransferEvent.transfer_id == t.uetr))] == [
            "RECEIVED"
        ]


def _force(api: Api, uetr: str, status: str, code: str, reason: str, **chain: Any) -> None:
    """Write a state as the pipeline would (this test node has no chain)."""
    now = dt.datetime.now(dt.UTC)
    with api.store.transaction() as s:
        transfer = s.get(Transfer, uetr)
        assert transfer is not None
        transfer.status, transfer.status_code, transfer.status_reason = status, code, reason
        s.add(TransferEvent(transfer_id=uetr, status=status, reason=reason, code=code, at=now, **chain))


def test_pacs004_for_a_refunded_transfer_and_camt054_only_when_final(api: Api) -> None:
    t = transfer()
    xml = pacs008(t)
    assert submit(api, xml, signature(api, xml)).status_code == 202
    assert api.get(f"/v1/iso20022/pacs.004/{t.uetr}", "FATLUS33").status_code == 404
    assert api.get(f"/v1/iso20022/camt.054/{t.uetr}", "FATLUS33").status_code == 404
    _force(api, t.uetr, "ESCROWED", "escrowed", "escrowed", tx_hash="0x" + "12" * 32, block_number=5)
    _force(api, t.uetr, "REFUNDED", "deadline_passed", "the deadline passed before it could settle")
    r = api.get(f"/v1/iso20022/pacs.004/{t.uetr}", "FATLUS33")
    assert r.status_code == 200 and check(r.content, PACS004) == []
    assert b"<Cd>TM01</Cd>" in r.content and b'Ccy="USD">2500.00<' in r.content
    assert f"<OrgnlMsgId>{t.msg_id}</OrgnlMsgId>".encode() in r.content
    assert api.get(f"/v1/iso20022/pacs.004/{t.uetr}", "RHNLDEFF").status_code == 404
    report = api.get(f"/v1/iso20022/pacs.002/{t.uetr}", "FATLUS33").content
    assert b"<TxSts>RJCT</TxSts>" in report and b"<Cd>AB05</Cd>" in report


def test_camt054_for_both_sides_of_a_final_transfer(api: Api) -> None:
    t = transfer()
    xml = pacs008(t)
    assert submit(api, xml, signature(api, xml)).status_code == 202
    with api.store.transaction() as s:
        stored = s.get(Transfer, t.uetr)
        assert stored is not None
        stored.buy_amount, stored.fee = 213000, 250
    _force(api, t.uetr, "SETTLED", "settled", "settled", tx_hash="0x" + "34" * 32, block_number=9)
    _force(api, t.uetr, "FINAL", "final", "final")
    debit = api.get(f"/v1/iso20022/camt.054/{t.uetr}", "FATLUS33")
    credit = api.get(f"/v1/iso20022/camt.054/{t.uetr}", "RHNLDEFF")
    for r in (debit, credit):
        assert r.status_code == 200 and check(r.content, CAMT054) == []
        assert ("0x" + "34" * 32).encode() in r.content
    assert b"<CdtDbtInd>DBIT</CdtDbtInd>" in debit.content and b'Ccy="USD">2500.00<' in debit.content
    assert b"<CdtDbtInd>CRDT</CdtDbtInd>" in credit.content and b'Ccy="EUR">2130.00<' in credit.content
    assert api.get(f"/v1/iso20022/camt.054/{t.uetr}", "THMSGB2L").status_code == 404
    assert api.get("/v1/iso20022/camt.054/not-a-uetr", "FATLUS33").status_code == 404


def test_camt053_needs_a_currency_the_bank_holds_and_a_chain(api: Api) -> None:
    r = api.get("/v1/iso20022/camt.053", "FATLUS33", currency="JPY")
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_currency"
    assert api.get("/v1/iso20022/camt.053", "FATLUS33", currency="usd").status_code == 422
    r = api.get("/v1/iso20022/camt.053", "FATLUS33", currency="USD", date="2999-01-01")
    assert r.status_code == 422 and r.json()["error"]["details"]["problems"][0]["field"] == "query.date"
    r = api.get("/v1/iso20022/camt.053", "FATLUS33", currency="USD")
    assert r.status_code == 503 and r.json()["error"]["code"] == "chain_unavailable"
