"""Webhook registration, limits, the auditor's export, /v1/network and /v1/me; every bad input a 4xx."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from node.store.models import RiskRulesVersion, Webhook
from tests.node.api.conftest import VAULT, Api


def test_webhook_registration_shows_the_secret_once_and_replaces(api: Api) -> None:
    assert api.get("/v1/webhooks", "FATLUS33").status_code == 404
    first = api.post("/v1/webhooks", "FATLUS33", {"url": "https://bank.example/hook"}, key="wh-1")
    assert first.status_code == 201 and first.json()["secret"].startswith("whsec_")
    shown = api.get("/v1/webhooks", "FATLUS33").json()
    assert shown["url"] == "https://bank.example/hook" and "secret" not in shown
    second = api.post("/v1/webhooks", "FATLUS33", {"url": "http://127.0.0.1:9/x"}, key="wh-2")
    assert second.json()["secret"] != first.json()["secret"]
    with api.store.transaction(write=False) as s:
        assert s.scalar(select(func.count()).select_from(Webhook)) == 1


@pytest.mark.parametrize(
    "body",
    [{"url": "ftp://bank.example/x"}, {"url": "not a url"}, {}, {"url": "https://b.example", "extra": 1}],
)
def test_bad_webhook_urls_are_422_and_nothing_is_stored(api: Api, body: dict[str, object]) -> None:
    r = api.post("/v1/webhooks", "FATLUS33", body)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"
    with api.store.transaction(write=False) as s:
        assert s.scalar(select(func.count()).select_from(Webhook)) == 0


def test_webhooks_are_for_banks_only(api: Api) -> None:
    assert api.post("/v1/webhooks", "operator", {"url": "https://x.example"}).status_code == 403


def test_operator_sets_limits_in_major_units_as_a_new_rules_version(api: Api) -> None:
    r = api.post("/v1/admin/banks/FATLUS33/limits", "operator", {"max_per_transfer": {"USD": "5000000.00"}})
    assert r.status_code == 200, r.text
    assert r.json()["max_per_transfer_minor"] == {"USD": 500_000_000} and r.json()["rules_version"] == 1
    r = api.post("/v1/admin/banks/FATLUS33/limits", "operator", {"daily_outflow": {"EUR": "100.00"}})
    assert r.json()["max_per_transfer_minor"] == {"USD": 500_000_000}, "limits not given are kept"
    assert r.json()["daily_outflow_minor"] == {"EUR": 10_000} and r.json()["rules_version"] == 2
    with api.store.transaction(write=False) as s:
        text = s.scalars(select(RiskRulesVersion.text).order_by(RiskRulesVersion.id.desc())).first()
    assert text is not None and "FATLUS33" in text and "5000000.00" in text


@pytest.mark.parametrize(
    ("who", "path", "body", "status", "code"),
    [
        ("FATLUS33", "/v1/admin/banks/FATLUS33/limits", {"max_per_transfer": {}}, 403, "forbidden"),
        ("operator", "/v1/admin/banks/NOPEXX22/limits", {"max_per_transfer": {}}, 404, "not_found"),
        ("operator", "/v1/admin/banks/FATLUS33/limits", {"max_per_transfer": {"XXX": "1"}}, 422, "unknown_currency"),
        ("operator", "/v1/admin/banks/FATLUS33/limits", {"max_per_transfer": {"USD": "1.001"}}, 422, "invalid_amount"),
        ("operator", "/v1/admin/banks/FATLUS33/limits", {"max_per_transfer": {"USD": "-5"}}, 422, "invalid_amount"),
        ("operator", "/v1/admin/banks/FATLUS33/limits", {"limits": {}}, 422, "invalid_request"),
    ],
)
def test_bad_limits_change_nothing(api: Api, who: str, path: str, body: object, status: int, code: str) -> None:
    r = api.post(path, who, body)
    assert (r.status_code, r.json()["error"]["code"]) == (status, code), r.text
    with api.store.transaction(write=False) as s:
        assert s.scalar(select(func.count()).select_from(RiskRulesVersion)) == 0


def test_auditor_exports_every_transfer_and_banks_cannot(api: Api) -> None:
    ids = []
    for debtor, creditor, ccy in (("FATLUS33", "RHNLDEFF", "USD"), ("RHNLDEFF", "FATLUS33", "EUR")):
        body = api.signed(
            api.instruction(
                debtor=debtor, creditor=creditor, sell_currency=ccy, buy_currency="EUR" if ccy == "USD" else "USD"
            ),
            signer=debtor,
        )
        r = api.post("/v1/transfers", debtor, body)
        assert r.status_code == 202, r.text
        ids.append(r.json()["id"])
    assert api.get("/v1/audit/transfers/export", "FATLUS33").status_code == 403
    assert api.get("/v1/audit/transfers/export", "operator").status_code == 403
    r = api.get("/v1/audit/transfers/export", "auditor")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
    rows = [json.loads(line) for line in r.text.splitlines()]
    assert sorted(row["id"] for row in rows) == sorted(ids)
    assert all(row["status"] == "RECEIVED" and row["settlement"] is None for row in rows)
    assert {row["sell_amount"] for row in rows} == {"25000000"}


def test_network_and_me(api: Api) -> None:
    net = api.get("/v1/network", "FATLUS33").json()
    assert net["chain_id"] == 31337 and net["vault"] == VAULT and net["domain"]["verifyingContract"] == VAULT
    assert net["currencies"]["JPY"] == 0 and net["confirmations"] >= 1
    me = api.get("/v1/me", "FATLUS33").json()
    assert me["bank"]["bic"] == "FATLUS33" and me["next_nonce"] == 0
    api.post("/v1/transfers", "FATLUS33", api.signed(api.instruction(nonce=41)))
    assert api.get("/v1/me", "FATLUS33").json()["next_nonce"] == 42
    assert api.get("/v1/me", "auditor").status_code == 403


def test_a_batch_accepts_the_good_items_and_refuses_each_bad_one_alone(api: Api) -> None:
    good = [api.signed(api.instruction()) for _ in range(3)]
    forged = api.signed(api.instruction(), signer="RHNLDEFF")
    unknown = api.signed(api.instruction(buy_currency="CHF"))
    items = [good[0], forged, good[1], unknown, good[2], good[0]]  # the last repeats a UETR
    r = api.post("/v1/transfers/batch", "FATLUS33", {"transfers": items}, key="batch-1")
    assert r.status_code == 202, r.text
    result = r.json()
    assert (result["accepted"], result["refused"]) == (3, 3)
    codes = [(x["status_code"], (x["error"] or {}).get("code")) for x in result["results"]]
    assert codes == [
        (202, None),
        (422, "bad_signature"),
        (202, None),
        (422, "unknown_currency"),
        (202, None),
        (409, "duplicate_uetr"),
    ]
    assert api.transfer_count() == 3
    again = api.post("/v1/transfers/batch", "FATLUS33", {"transfers": items}, key="batch-1")
    assert again.json() == result and again.headers["Idempotent-Replayed"] == "true"
    assert api.transfer_count() == 3


@pytest.mark.parametrize("body", [{"transfers": []}, {"transfers": "x"}, {}, {"transfers": [{"instruction": {}}]}])
def test_malformed_batches_are_422_and_store_nothing(api: Api, body: object) -> None:
    r = api.post("/v1/transfers/batch", "FATLUS33", body)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"
    assert api.transfer_count() == 0


def test_a_batch_over_the_bound_is_refused(api: Api) -> None:
    item = api.signed(api.instruction())
    r = api.post("/v1/transfers/batch", "FATLUS33", {"transfers": [item] * 201})
    assert r.status_code == 422 and api.transfer_count() == 0
