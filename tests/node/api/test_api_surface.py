"""What the API promises around its routes: methods, content types, quotes' one amount, webhooks' removal."""

from __future__ import annotations

from typing import Any

import pytest

from tests.node.api.conftest import Api


def _code(r: Any) -> str:
    return str(r.json()["error"]["code"])


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/v1/transfers", "GET, POST"),
        ("PUT", "/v1/webhooks", "DELETE, GET, POST"),
        ("POST", "/v1/banks", "GET"),
        ("PATCH", "/v1/admin/reconciliation", "GET, POST"),
        ("OPTIONS", "/v1/transfers/batch", "POST"),
    ],
)
def test_a_method_a_path_does_not_take_is_a_405_naming_every_one_it_does(
    api: Api, method: str, path: str, allowed: str
) -> None:
    r = api.client.request(method, path, headers=api.auth("FATLUS33"))
    assert (r.status_code, _code(r)) == (405, "method_not_allowed")
    assert r.headers["allow"] == allowed


def test_metrics_are_plain_text(api: Api) -> None:
    r = api.client.get("/metrics")
    assert r.headers["content-type"].startswith("text/plain") and "corridor_" in r.text


@pytest.mark.parametrize(
    "body",
    [
        {"sell_currency": "USD", "buy_currency": "EUR"},
        {"sell_currency": "USD", "buy_currency": "EUR", "sell_amount": "10.00", "buy_amount": "9.00"},
        {"sell_currency": "USD", "buy_currency": "EUR", "sell_amount": None, "buy_amount": "9.00"},
        {"sell_currency": "USD", "buy_currency": "EUR", "sell_amount": "1e3"},
    ],
)
def test_a_quote_takes_exactly_one_amount(api: Api, body: dict[str, Any]) -> None:
    r = api.post("/v1/quotes", "FATLUS33", body)
    assert (r.status_code, _code(r)) == (422, "invalid_request"), r.text


def test_a_quote_answer_has_its_published_shape(api: Api) -> None:
    r = api.post("/v1/quotes", "FATLUS33", {"sell_currency": "USD", "buy_currency": "EUR", "buy_amount": "900.00"})
    assert r.status_code == 201, r.text
    q = r.json()
    assert q["kind"] == "buy_fixed" and q["buy_amount_minor"] == 900_00 and q["signature"]["r"].startswith("0x")


def test_a_webhook_can_be_removed(api: Api) -> None:
    assert _code(api.client.delete("/v1/webhooks", headers=api.auth("FATLUS33"))) == "not_found"
    created = api.post("/v1/webhooks", "FATLUS33", {"url": "https://bank.example/hook"})
    assert created.status_code == 201
    # A transfer accepted now owes the hook its RECEIVED delivery; removing the hook drops it.
    assert api.post("/v1/transfers", "FATLUS33", api.signed(api.instruction())).status_code == 202
    assert api.get("/v1/webhooks", "FATLUS33").json()["deliveries"] == {"pending": 1}
    removed = api.client.delete("/v1/webhooks", headers=api.auth("FATLUS33"))
    assert removed.status_code == 204 and removed.content == b""
    assert _code(api.get("/v1/webhooks", "FATLUS33")) == "not_found"
    # The other banks' hooks are theirs: the operator's key cannot remove one.
    assert _code(api.client.delete("/v1/webhooks", headers=api.auth("operator"))) == "forbidden"
    log = api.client.get("/v1/audit/log", headers=api.auth("auditor")).text
    assert '"action":"webhook.removed"' in log


def test_the_bad_content_length_check_of_the_guard(api: Api) -> None:
    """uvicorn refuses such a header itself; an ASGI server that passes it on meets the guard's check."""
    r = api.client.post("/v1/transfers", content=b"{}", headers=api.auth("FATLUS33") | {"Content-Length": "x"})
    assert r.status_code == 400
