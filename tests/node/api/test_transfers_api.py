"""Submitting, reading, listing and cancelling transfers; every bad input a 4xx that stores nothing."""

from __future__ import annotations

import datetime as dt
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.node.api.conftest import Api


def test_submit_answers_202_received_and_the_transfer_is_stored(api: Api) -> None:
    body = api.signed(api.instruction())
    r = api.post("/v1/transfers", "FATLUS33", body)
    assert r.status_code == 202, r.text
    t = r.json()
    assert t["id"] == body["instruction"]["id"] and t["status"] == "RECEIVED"
    assert t["sell_amount"] == 250_000_00 and t["history"][0]["status"] == "RECEIVED"
    got = api.get(f"/v1/transfers/{t['id']}", "FATLUS33").json()
    assert got["id"] == t["id"] and got["history"][0]["reason"] == "accepted: signature verified"
    assert api.transfer_count() == 1


def test_amounts_as_digit_strings_are_accepted(api: Api) -> None:
    body = api.signed(api.instruction(sell_amount="2500000", nonce="99"))
    assert api.post("/v1/transfers", "FATLUS33", body).status_code == 202


def _error(r: Any) -> dict[str, Any]:
    data = r.json()
    assert set(data) == {"error"} and set(data["error"]) == {"code", "message", "details"}, data
    return dict(data["error"])


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        (lambda a, b: b["instruction"].update(sell_currency="XYZ"), 422, "unknown_currency"),
        (lambda a, b: b["instruction"].update(sell_currency="usd"), 422, "invalid_request"),
        (lambda a, b: b["instruction"].update(buy_currency="USD"), 422, "same_currency"),
        (lambda a, b: b["instruction"].update(creditor="0x" + "12" * 20), 422, "unknown_bank"),
        (lambda a, b: b["instruction"].update(sell_amount=0), 422, "invalid_request"),
        (lambda a, b: b["instruction"].update(sell_amount=-5), 422, "invalid_request"),
        (lambda a, b: b["instruction"].update(sell_amount=100.5), 422, "invalid_request"),
        (lambda a, b: b["instruction"].update(sell_amount="1.001"), 422, "invalid_request"),
        (lambda a, b: b["instruction"].update(sell_amount=2**112), 422, "invalid_request"),
        (lambda a, b: b["instruction"].pop("deadline"), 422, "invalid_request"),
        (lambda a, b: b.pop("signature"), 422, "invalid_request"),
        (lambda a, b: b.update(extra=1), 422, "invalid_request"),
        (lambda a, b: b["instruction"].update(id="not-a-uuid"), 422, "invalid_request"),
    ],
)
def test_bad_fields_are_refused_and_nothing_is_stored(api: Api, change: Any, status: int, code: str) -> None:
    body = api.signed(api.instruction())
    change(api, body)
    r = api.post("/v1/transfers", "FATLUS33", body, key="k-" + str(uuid.uuid4()))
    assert r.status_code == status, r.text
    assert _error(r)["code"] == code
    assert api.transfer_count() == 0


def test_deadline_in_the_past_or_too_far(api: Api) -> None:
    now = int(dt.datetime.now(dt.UTC).timestamp())
    past = api.post("/v1/transfers", "FATLUS33", api.signed(api.instruction(deadline=now - 10)))
    far = api.post("/v1/transfers", "FATLUS33", api.signed(api.instruction(deadline=now + 30 * 86400)))
    assert (past.status_code, _error(past)["code"]) == (422, "deadline_too_soon")
    assert (far.status_code, _error(far)["code"]) == (422, "deadline_too_far")
    assert api.transfer_count() == 0


def test_signature_by_another_key_is_422(api: Api) -> None:
    r = api.post("/v1/transfers", "FATLUS33", api.signed(api.instruction(), signer="RHNLDEFF"))
    assert (r.status_code, _error(r)["code"]) == (422, "bad_signature")
    assert _error(r)["details"]["expected"] == api.addresses["FATLUS33"]


def test_a_tampered_amount_breaks_the_signature(api: Api) -> None:
    body = api.signed(api.instruction())
    body["instruction"]["sell_amount"] += 1
    assert _error(api.post("/v1/transfers", "FATLUS33", body))["code"] == "bad_signature"


def test_instruction_for_another_debtor_is_refused(api: Api) -> None:
    body = api.signed(
        api.instruction(debtor="RHNLDEFF", creditor="FATLUS33", sell_currency="EUR", buy_currency="USD"),
        signer="RHNLDEFF",
    )
    r = api.post("/v1/transfers", "FATLUS33", body)
    assert (r.status_code, _error(r)["code"]) == (422, "debtor_mismatch")


def test_malformed_json_is_400(api: Api) -> None:
    r = api.client.post(
        "/v1/transfers", content=b"{not json", headers=api.auth("FATLUS33") | {"Content-Type": "application/json"}
    )
    assert (r.status_code, _error(r)["code"]) == (400, "malformed_json")


def test_replayed_uetr_and_reused_nonce_are_409(api: Api) -> None:
    first = api.instruction()
    assert api.post("/v1/transfers", "FATLUS33", api.signed(first)).status_code == 202
    again = api.post("/v1/transfers", "FATLUS33", api.signed(first | {"nonce": 777}))
    assert (again.status_code, _error(again)["code"]) == (409, "duplicate_uetr")
    same_nonce = api.post("/v1/transfers", "FATLUS33", api.signed(api.instruction(nonce=first["nonce"])))
    assert (same_nonce.status_code, _error(same_nonce)["code"]) == (409, "nonce_used")
    assert api.transfer_count() == 1


def test_auth_wrong_key_401_other_banks_transfer_404(api: Api) -> None:
    r = api.client.get("/v1/transfers", headers={"Authorization": "Bearer nope"})
    assert (r.status_code, _error(r)["code"]) == (401, "unauthorized")
    assert api.client.get("/v1/transfers").status_code == 401
    t = api.post("/v1/transfers", "FATLUS33", api.signed(api.instruction())).json()
    other = api.get(f"/v1/transfers/{t['id']}", "RHNLDEFF")
    assert (other.status_code, _error(other)["code"]) == (404, "not_found")
    assert api.get(f"/v1/transfers/{t['id']}", "auditor").status_code == 200
    assert api.get("/v1/transfers/not-a-uuid", "FATLUS33").status_code == 404
    assert api.post("/v1/transfers", "operator", api.signed(api.instruction())).status_code == 403


def test_frozen_bank_403_and_paused_network_409(api: Api) -> None:
    assert api.post("/v1/admin/banks/FATLUS33/frozen", "operator", {"value": True}).status_code == 200
    r = api.post("/v1/transfers", "FATLUS33", api.signed(api.instruction()))
    assert (r.status_code, _error(r)["code"]) == (403, "bank_frozen")
    api.post("/v1/admin/banks/FATLUS33/frozen", "operator", {"value": False})
    paused = api.post("/v1/admin/paused", "operator", {"value": True}).json()
    assert paused == {"paused": True, "paused_on_chain": False}, "the worker carries it to the vault"
    r = api.post("/v1/transfers", "FATLUS33", api.signed(api.instruction()))
    assert (r.status_code, _error(r)["code"]) == (409, "network_paused")
    assert api.post("/v1/admin/paused", "FATLUS33", {"value": False}).status_code == 403
    api.post("/v1/admin/paused", "operator", {"value": False})
    assert api.post("/v1/transfers", "FATLUS33", api.signed(api.instruction())).status_code == 202
    assert api.transfer_count() == 1


def test_cancel_before_escrow_then_not_again(api: Api) -> None:
    t = api.post("/v1/transfers", "FATLUS33", api.signed(api.instruction())).json()
    r = api.post(f"/v1/transfers/{t['id']}/cancel", "FATLUS33", None)
    assert r.status_code == 200 and r.json()["status"] == "REJECTED"
    assert [h["status"] for h in r.json()["history"]] == ["RECEIVED", "REJECTED"]
    again = api.post(f"/v1/transfers/{t['id']}/cancel", "FATLUS33", None)
    assert (again.status_code, _error(again)["code"]) == (409, "not_cancellable")
    assert api.post(f"/v1/transfers/{t['id']}/cancel", "RHNLDEFF", None).status_code == 404


def test_list_filters_and_pages_by_cursor(api: Api) -> None:
    ids = [api.post("/v1/transfers", "FATLUS33", api.signed(api.instruction())).json()["id"] for _ in range(5)]
    api.post(f"/v1/transfers/{ids[0]}/cancel", "FATLUS33", None)
    seen: list[str] = []
    cursor = None
    while True:
        page = api.get("/v1/transfers", "FATLUS33", limit=2, **({"cursor": cursor} if cursor else {})).json()
        seen += [t["id"] for t in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(ids) and len(seen) == 5
    rejected = api.get("/v1/transfers", "FATLUS33", status="REJECTED").json()["data"]
    assert [t["id"] for t in rejected] == [ids[0]]
    assert api.get("/v1/transfers", "RHNLDEFF").json()["data"] == []
    assert len(api.get("/v1/transfers", "auditor").json()["data"]) == 5
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
    assert api.get("/v1/transfers", "FATLUS33", created_from=future).json()["data"] == []
    bad = api.get("/v1/transfers", "FATLUS33", cursor="garbage")
    assert (bad.status_code, _error(bad)["code"]) == (422, "bad_cursor")


# ------------------------------------------------------------------------------------ idempotency


def test_same_key_same_body_replays_the_first_response(api: Api) -> None:
    body = api.signed(api.instruction())
    first = api.post("/v1/transfers", "FATLUS33", body, key="pay-1")
    second = api.post("/v1/transfers", "FATLUS33", body, key="pay-1")
    assert first.status_code == second.status_code == 202
    assert first.json() == second.json() and second.headers["Idempotent-Replayed"] == "true"
    assert api.transfer_count() == 1


def test_same_key_other_body_is_409(api: Api) -> None:
    api.post("/v1/transfers", "FATLUS33", api.signed(api.instruction()), key="pay-2")
    r = api.post("/v1/transfers", "FATLUS33", api.signed(api.instruction()), key="pay-2")
    assert (r.status_code, _error(r)["code"]) == (409, "idempotency_key_reused")
    assert api.transfer_count() == 1


def test_a_failed_validation_stores_nothing_so_the_key_can_be_retried(api: Api) -> None:
    body = api.signed(api.instruction(), signer="RHNLDEFF")
    assert api.post("/v1/transfers", "FATLUS33", body, key="pay-3").status_code == 422
    good = api.signed(api.instruction())
    assert api.post("/v1/transfers", "FATLUS33", good, key="pay-3").status_code == 202


def test_keys_belong_to_their_bank(api: Api) -> None:
    api.post("/v1/transfers", "FATLUS33", api.signed(api.instruction()), key="shared")
    body = api.signed(
        api.instruction(debtor="RHNLDEFF", creditor="FATLUS33", sell_currency="EUR", buy_currency="USD"),
        signer="RHNLDEFF",
    )
    assert api.post("/v1/transfers", "RHNLDEFF", body, key="shared").status_code == 202


def test_one_key_fired_100_times_concurrently_makes_one_transfer(api: Api) -> None:
    body = api.signed(api.instruction())
    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(lambda _: api.post("/v1/transfers", "FATLUS33", body, key="burst"), range(100)))
    assert {r.status_code for r in answers} == {202}, {r.status_code: r.text for r in answers}
    assert len({r.text for r in answers}) == 1
    assert api.transfer_count() == 1


# ------------------------------------------------------------------------------------------ quotes


def test_quote_then_transfer_naming_it(api: Api) -> None:
    q = api.post("/v1/quotes", "FATLUS33", {"sell_currency": "USD", "buy_currency": "EUR", "sell_amount": "250000.00"})
    assert q.status_code == 201, q.text
    quote = q.json()
    assert quote["sell_amount_minor"] == 250_000_00 and quote["signature"] is not None
    ins = api.instruction(min_buy_amount=quote["buy_amount_minor"])
    r = api.post("/v1/transfers", "FATLUS33", api.signed(ins, quote_id=quote["id"]))
    assert r.status_code == 202 and r.json()["quote_id"] == quote["id"]
    mismatch = api.post("/v1/transfers", "FATLUS33", api.signed(api.instruction(sell_amount=1), quote_id=quote["id"]))
    assert _error(mismatch)["code"] == "quote_mismatch"
    unknown = api.post("/v1/transfers", "FATLUS33", api.signed(api.instruction(), quote_id="0x" + "00" * 32))
    assert _error(unknown)["code"] == "unknown_quote"
    other_bank = api.post(
        "/v1/transfers",
        "RHNLDEFF",
        api.signed(api.instruction(debtor="RHNLDEFF", creditor="FATLUS33"), signer="RHNLDEFF", quote_id=quote["id"]),
    )
    assert other_bank.status_code == 422


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"sell_currency": "USD", "buy_currency": "EUR", "sell_amount": "1.001"}, "invalid_fx_request"),
        ({"sell_currency": "USD", "buy_currency": "EUR", "sell_amount": "NaN"}, "invalid_request"),
        ({"sell_currency": "USD", "buy_currency": "USD", "sell_amount": "1.00"}, "invalid_fx_request"),
        ({"sell_currency": "USD", "buy_currency": "EUR"}, "invalid_request"),
        ({"sell_currency": "USD", "buy_currency": "XYZ", "sell_amount": "1.00"}, "invalid_fx_request"),
        ({"sell_currency": "US", "buy_currency": "EUR", "sell_amount": "1.00"}, "invalid_request"),
    ],
)
def test_bad_quote_requests(api: Api, body: dict[str, Any], code: str) -> None:
    r = api.post("/v1/quotes", "FATLUS33", body)
    assert (r.status_code, _error(r)["code"]) == (422, code), r.text


# ---------------------------------------------------------------------------------------- directory


def test_directory_lists_banks(api: Api) -> None:
    banks = api.get("/v1/banks", "RHNLDEFF").json()
    assert [b["bic"] for b in banks] == ["FATLUS33", "RHNLDEFF", "THMSGB2L"]
    assert banks[0] == {
        "name": "First Atlantic Bank",
        "bic": "FATLUS33",
        "country": "US",
        "address": api.addresses["FATLUS33"],
        "kind": "bank",
        "currencies": ["USD", "EUR", "GBP"],
    }


def test_onboarding_errors_and_key_shown_once(api: Api) -> None:
    base = {"name": "X", "bic": "XBNKFRPP", "country": "FR", "address": "0x" + "34" * 20, "currencies": ["EUR"]}
    assert (
        _error(api.post("/v1/admin/banks", "operator", base | {"bic": "FATLUS33", "country": "US"}))["code"]
        == "bank_exists"
    )
    assert _error(api.post("/v1/admin/banks", "operator", base | {"currencies": ["XYZ"]}))["code"] == "unknown_currency"
    assert _error(api.post("/v1/admin/banks", "operator", base | {"country": "DE"}))["code"] == "bic_country_mismatch"
    unknown_country = _error(api.post("/v1/admin/banks", "operator", base | {"bic": "XBNKQQPP", "country": "QQ"}))
    assert unknown_country["code"] == "invalid_bic" and "country code" in unknown_country["message"]
    assert api.post("/v1/admin/banks", "FATLUS33", base).status_code == 403
    created = api.post("/v1/admin/banks", "operator", base)
    assert created.status_code == 201 and created.json()["api_key"].startswith("cor_")
    assert "api_key" not in api.get("/v1/banks", "FATLUS33").json()[-1]


def test_health_and_metrics(api: Api) -> None:
    assert api.client.get("/healthz").json() == {"status": "ok"}
    ready = api.client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["checks"]["store_writable"] is True
    assert ready.json()["checks"]["chain_reachable"] is False
    assert api.client.get("/metrics").status_code == 200
    assert api.client.get("/docs").status_code == 200
    spec = api.client.get("/openapi.json").json()
    assert "/v1/transfers" in spec["paths"] and spec["paths"]["/v1/transfers"]["post"]["description"]


def test_unknown_route_is_a_json_404(api: Api) -> None:
    r = api.get("/v1/nothing", "FATLUS33")
    assert (r.status_code, _error(r)["code"]) == (404, "not_found")
    # Under /v1 the key is checked before anything else: a caller without one learns nothing of the routes.
    anonymous = api.client.get("/v1/nothing")
    assert (anonymous.status_code, _error(anonymous)["code"]) == (401, "unauthorized")
