"""ISO 20022 end to end on a devnet: a pacs.008 in; pacs.002 ACTC, ACSP, ACSC in that order, ACSC
only when FINAL and naming the chain's transaction; camt.054 for both banks; the day's camt.053
balances equal the vault's."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from xml.etree.ElementTree import fromstring

import pytest
from standardwebhooks import Webhook
from typer.testing import CliRunner

from node.bank.cli import app as bank_app
from node.bank.iso20022 import pacs008
from node.iso20022.schemas import CAMT053, CAMT054, PACS002, check
from tests.node.conftest import LocalNode
from tests.node.iso20022.samples import credit_transfer
from tests.node.receiver import Receiver

pytestmark = pytest.mark.devnet
NS = {
    "p2": "urn:iso:std:iso:20022:tech:xsd:pacs.002.001.12",
    "c3": "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08",
    "c4": "urn:iso:std:iso:20022:tech:xsd:camt.054.001.08",
}


def _amount(xml: bytes, path: str) -> str:
    found = fromstring(xml).find(path, NS)
    assert found is not None and found.text is not None, path
    return found.text


def test_pacs008_to_pacs002_trail_camt054_both_sides_and_camt053_balances(
    receiver: Receiver, node_factory: Callable[..., LocalNode]
) -> None:
    node = node_factory(webhook_backoff_base_s=0.2)
    us, de = node.client("FATLUS33"), node.client("RHNLDEFF")
    secrets = {}
    for bic, client in (("FATLUS33", us), ("RHNLDEFF", de)):
        hook = {"url": f"{receiver.url}/{bic}", "format": "iso20022"}
        secrets[bic] = client.request("POST", "/v1/webhooks", hook, idempotency_key=f"wh-{bic}")["secret"]
    nonce = us.request("GET", "/v1/me")["next_nonce"]
    t = credit_transfer(amount="1250.00", rate="0.5", nonce=nonce)
    document = pacs008(t)
    accepted = us.iso_send(document)
    assert accepted["id"] == t.uetr and accepted["status"] == "RECEIVED"
    assert us.iso_send(document)["id"] == t.uetr  # sent again: the same transfer
    final = us.wait(t.uetr)

    status = us.iso_status(t.uetr)
    assert check(status, PACS002) == []
    settled = final["history"][-1]["chain"]
    assert _amount(status, ".//p2:TxSts") == "ACSC" and settled["tx_hash"] in status.decode()

    got = node.wait_for(lambda: receiver.received(6), 30, "six ISO 20022 deliveries")
    reports, debits, credits = [], [], []
    for path, headers, raw in got:
        bic = path.strip("/")
        Webhook(secrets[bic]).verify(raw, headers, json_parse=False)
        if b"pacs.002" in raw:
            assert bic == "FATLUS33" and check(raw, PACS002) == []
            reports.append((_amount(raw, ".//p2:CreDtTm"), _amount(raw, ".//p2:TxSts")))
        else:
            assert check(raw, CAMT054) == []
            (credits if bic == "RHNLDEFF" else debits).append(raw)
    assert [s for _, s in sorted(reports)] == ["ACTC", "ACSP", "ACSP", "ACSC"]
    assert len(debits) == len(credits) == 1
    assert _amount(debits[0], ".//c4:Ntry/c4:Amt") == "1250.00"
    assert _amount(debits[0], ".//c4:Ntry/c4:CdtDbtInd") == "DBIT"
    bought = final["buy_amount"]
    assert _amount(credits[0], ".//c4:Ntry/c4:CdtDbtInd") == "CRDT"
    assert _amount(credits[0], ".//c4:Ntry/c4:Amt") == f"{bought // 100}.{bought % 100:02d}"
    assert us.iso_notification(t.uetr) == debits[0] and de.iso_notification(t.uetr) == credits[0]

    for client, code in ((us, "USD"), (de, "EUR")):
        statement = client.iso_statement(code)
        assert check(statement, CAMT053) == []
        vault = next(b for b in client.balances() if b["currency"] == code)
        closing = fromstring(statement).findall(".//c3:Bal", NS)
        by_type = {b.find("c3:Tp/c3:CdOrPrtry/c3:Cd", NS).text: b for b in closing}  # type: ignore[union-attr]
        clbd = by_type["CLBD"].find("c3:Amt", NS).text  # type: ignore[union-attr]
        total = vault["available"] + vault["escrowed"]
        assert clbd == f"{total // 100}.{total % 100:02d}", (code, clbd, vault)
        assert t.uetr in statement.decode()


def test_the_bank_cli_sends_a_pacs008_file_and_prints_its_trail(
    node_factory: Callable[..., LocalNode], tmp_path: Path
) -> None:
    node = node_factory()
    us = node.client("FATLUS33")
    key = next(p.key for p in node.chain.network.participants if p.bic == "FATLUS33")
    credentials = ["--url", node.url, "--api-key", node.api_keys["FATLUS33"], "--key", key]
    t = credit_transfer(amount="75.00", rate="0.5", nonce=us.request("GET", "/v1/me")["next_nonce"])
    document = tmp_path / "pacs008.xml"
    document.write_bytes(pacs008(t))
    runner = CliRunner()
    sent = runner.invoke(bank_app, ["iso", "send", str(document), "--wait", *credentials])
    assert sent.exit_code == 0, sent.output
    assert "<TxSts>ACSC</TxSts>" in sent.output and check(sent.output.strip().encode(), PACS002) == []
    booked = runner.invoke(bank_app, ["iso", "status", t.uetr, "--message", "camt.054", *credentials])
    assert booked.exit_code == 0 and "<CdtDbtInd>DBIT</CdtDbtInd>" in booked.output
    statement = tmp_path / "camt053.xml"
    day = runner.invoke(bank_app, ["iso", "statement", "--currency", "USD", "-o", str(statement), *credentials])
    assert day.exit_code == 0 and check(statement.read_bytes(), CAMT053) == [] and t.uetr in statement.read_text()
    wrong = runner.invoke(bank_app, ["iso", "status", t.uetr, "--message", "pacs.004", *credentials])
    assert wrong.exit_code == 2 and "not refunded" in wrong.output
