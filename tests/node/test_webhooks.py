"""Webhook deliveries to a local receiver: signed as Standard Webhooks (verified by the
``standardwebhooks`` package a bank would use), retried with back-off, one id per delivery, in
JSON or as pacs.002, and sent again on request."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import select
from standardwebhooks import Webhook, WebhookVerificationError

from node.api.routes.callbacks import TransferStatusChanged
from node.iso20022.schemas import CAMT054, PACS002, check
from node.notify.webhooks import ID_HEADER, TIMESTAMP_HEADER, verify
from node.store.models import WebhookDelivery
from tests.node.conftest import LocalNode
from tests.node.receiver import Receiver, serve

pytestmark = pytest.mark.devnet
FAILS_BEFORE_SUCCESS = 2


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """Answers 500 to the first two attempts of each delivery, then 200."""
    yield from serve(FAILS_BEFORE_SUCCESS)


def test_every_status_change_is_delivered_signed_and_retried(
    receiver: Receiver, node_factory: Callable[..., LocalNode]
) -> None:
    # The receiver is asked for first, so it is torn down last: after the node has stopped.
    node = node_factory(webhook_backoff_base_s=0.2)
    us, de = node.client("FATLUS33"), node.client("RHNLDEFF")
    secrets = {
        bic: c.request("POST", "/v1/webhooks", {"url": receiver.url + "/" + bic}, idempotency_key=f"wh-{bic}")["secret"]
        for bic, c in (("FATLUS33", us), ("RHNLDEFF", de))
    }
    t = us.send("RHNLDEFF", "USD", "250.00", "EUR")
    us.wait(t["id"])

    def delivered() -> list[dict[str, Any]]:
        with receiver.lock:
            bodies = [json.loads(raw) for _, _, raw in receiver.got]
        return bodies if len(bodies) >= 5 else []

    bodies = node.wait_for(delivered, 30, "five deliveries")
    for body in bodies:  # each as the OpenAPI document's webhooks describe it
        TransferStatusChanged.model_validate(body)
    mine = [b["data"] for b in sorted(bodies, key=lambda b: b["created_at"]) if b["data"]["role"] == "debtor"]
    theirs = [b["data"] for b in bodies if b["data"]["role"] == "creditor"]
    assert [d["status"] for d in mine] == ["RECEIVED", "QUEUED", "SETTLED", "FINAL"]
    assert [d["status"] for d in theirs] == ["FINAL"] and theirs[0]["buy_amount"] == us.transfer(t["id"])["buy_amount"]
    assert mine[-1]["chain"]["tx_hash"] == us.transfer(t["id"])["history"][-1]["chain"]["tx_hash"]
    with receiver.lock:
        got = list(receiver.got)
        attempts = dict(receiver.attempts)
    for _, headers, raw in got:
        delivery = headers[ID_HEADER]
        body = json.loads(raw)
        assert body["id"] == delivery
        bic = "FATLUS33" if body["data"]["role"] == "debtor" else "RHNLDEFF"
        assert Webhook(secrets[bic]).verify(raw, headers) == body  # as a bank verifies, with the library
        assert verify(secrets[bic], headers, raw)
        with pytest.raises(WebhookVerificationError):
            Webhook(secrets[bic]).verify(raw.replace(b"250", b"251"), headers)
        replayed_later = int(headers[TIMESTAMP_HEADER]) + 600
        assert not verify(secrets[bic], headers, raw, now_s=replayed_later)
        other = "FATLUS33" if bic == "RHNLDEFF" else "RHNLDEFF"
        assert not verify(secrets[other], headers, raw)
        assert attempts[delivery] == FAILS_BEFORE_SUCCESS + 1
    assert len({headers[ID_HEADER] for _, headers, _ in got}) == len(got) == 5
    with node.svc.store.transaction(write=False) as s:
        rows = list(s.scalars(select(WebhookDelivery)))
    assert {(r.status, r.attempts) for r in rows} == {("delivered", 3)}


def test_a_receiver_that_never_answers_is_given_up_after_the_bound(node_factory: Callable[..., LocalNode]) -> None:
    node = node_factory(webhook_backoff_base_s=0.1, webhook_attempts_max=3, webhook_timeout_s=0.5)
    us = node.client("FATLUS33")
    us.request("POST", "/v1/webhooks", {"url": "http://127.0.0.1:9/nobody"}, idempotency_key="wh")
    t = us.send("RHNLDEFF", "USD", "10.00", "EUR")
    us.wait(t["id"])

    def given_up() -> bool:
        with node.svc.store.transaction(write=False) as s:
            rows = list(s.scalars(select(WebhookDelivery)))
        return len(rows) == 4 and all(r.status == "failed" and r.attempts == 3 for r in rows)

    assert node.wait_for(given_up, 30, "the deliveries to be given up")
    shown = us.request("GET", "/v1/webhooks")
    assert shown["deliveries"] == {"failed": 4}


def test_iso20022_format_delivers_each_status_as_a_valid_pacs002_and_redelivers_on_request(
    receiver: Receiver, node_factory: Callable[..., LocalNode]
) -> None:
    node = node_factory(webhook_backoff_base_s=0.1)
    us = node.client("FATLUS33")
    hook = {"url": receiver.url, "format": "iso20022"}
    secret = us.request("POST", "/v1/webhooks", hook, idempotency_key="wh-iso")["secret"]
    t = us.send("RHNLDEFF", "USD", "250.00", "EUR")
    us.wait(t["id"])

    got = node.wait_for(lambda: receiver.received(5), 30, "four pacs.002 deliveries and a camt.054")
    statuses = []
    for _, headers, raw in got:
        assert headers["Content-Type"] == "application/xml"
        Webhook(secret).verify(raw, headers, json_parse=False)
        if b"camt.054" in raw:
            assert check(raw, CAMT054) == [] and b"<CdtDbtInd>DBIT</CdtDbtInd>" in raw
            continue
        assert check(raw, PACS002) == []
        statuses.append(raw.split(b"<TxSts>")[1].split(b"<")[0].decode())
    assert sorted(statuses) == sorted(["ACTC", "ACSP", "ACSP", "ACSC"])
    final = next(raw for _, _, raw in got if b"<TxSts>ACSC" in raw)
    assert us.iso_status(t["id"]) == final  # the same message, by webhook or fetched
    # Sent again on request: the same id and body, a new signature.
    [latest] = us.request("GET", "/v1/webhooks/deliveries?limit=1")
    again = us.request("POST", f"/v1/webhooks/deliveries/{latest['id']}/redeliver", {}, idempotency_key="re-1")
    assert again["status"] == "pending" and again["attempts"] == 0

    def redelivered() -> bool:
        with receiver.lock:
            return sum(1 for _, h, _ in receiver.got if h[ID_HEADER] == latest["id"]) == 2

    assert node.wait_for(redelivered, 30, "the redelivery")
