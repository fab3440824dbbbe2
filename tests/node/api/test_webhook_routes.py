"""Registering a callback URL (never one into the node's own network, outside the devnet), its
format, listing deliveries and queueing them again, one or a time range."""

from __future__ import annotations

import datetime as dt
from unittest import mock

import pytest
from sqlalchemy import select, update

from node.notify import destinations
from node.store.models import WebhookDelivery
from tests.node.api.conftest import Api


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://169.254.169.254/latest/meta-data/",  # a cloud metadata service
        "http://10.0.0.5/hook",
        "http://192.168.1.1/hook",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://100.64.0.1/hook",
        "http://0.0.0.0/hook",
    ],
)
def test_callback_urls_into_private_networks_are_refused(api_no_private_webhooks: Api, url: str) -> None:
    api = api_no_private_webhooks
    r = api.post("/v1/webhooks", "FATLUS33", {"url": url})
    assert r.status_code == 422 and r.json()["error"]["code"] == "callback_url_forbidden", r.text
    assert api.get("/v1/webhooks", "FATLUS33").status_code == 404


def test_a_public_callback_url_is_taken(api_no_private_webhooks: Api) -> None:
    public = [(2, 1, 6, "", ("93.184.215.14", 443))]
    with mock.patch("socket.getaddrinfo", return_value=public):
        r = api_no_private_webhooks.post("/v1/webhooks", "FATLUS33", {"url": "https://bank.example/hook"})
    assert r.status_code == 201, r.text
    assert r.json()["secret"].startswith("whsec_") and r.json()["format"] == "json"


def test_a_name_resolving_to_a_private_address_is_refused_at_send_time_too() -> None:
    private = [(2, 1, 6, "", ("10.1.2.3", 443))]
    with mock.patch("socket.getaddrinfo", return_value=private):
        assert destinations.problem("https://rebound.example/hook", allow_private=False) is not None
        assert destinations.problem("https://rebound.example/hook", allow_private=True) is None
    assert destinations.problem("ftp://bank.example/x", allow_private=True) is not None


def test_the_devnet_allows_local_receivers(api: Api) -> None:
    r = api.post("/v1/webhooks", "FATLUS33", {"url": "http://127.0.0.1:9/hook", "format": "iso20022"})
    assert r.status_code == 201 and r.json()["format"] == "iso20022"
    assert api.get("/v1/webhooks", "FATLUS33").json()["format"] == "iso20022"
    r = api.post("/v1/webhooks", "FATLUS33", {"url": "http://127.0.0.1:9/hook", "format": "xml"})
    assert r.status_code == 422


def _deliveries(api: Api) -> list[WebhookDelivery]:
    with api.store.transaction(write=False) as s:
        return list(s.scalars(select(WebhookDelivery).order_by(WebhookDelivery.created_at)))


def test_deliveries_are_listed_and_sent_again_one_or_by_range(api: Api) -> None:
    assert api.post("/v1/webhooks", "FATLUS33", {"url": "http://127.0.0.1:9/hook"}).status_code == 201
    for _ in range(3):
        assert api.post("/v1/transfers", "FATLUS33", api.signed(api.instruction())).status_code == 202
    with api.store.transaction() as s:
        s.execute(update(WebhookDelivery).values(status="failed", attempts=8, last_error="HTTP 500"))
    listed = api.get("/v1/webhooks/deliveries", "FATLUS33", status="failed").json()
    assert len(listed) == 3 and all(d["attempts"] == 8 for d in listed)
    assert api.get("/v1/webhooks/deliveries", "RHNLDEFF").json() == []

    one = listed[0]["id"]
    r = api.post(f"/v1/webhooks/deliveries/{one}/redeliver", "FATLUS33", {})
    assert r.status_code == 202 and r.json()["status"] == "pending" and r.json()["attempts"] == 0
    assert api.post(f"/v1/webhooks/deliveries/{one}/redeliver", "RHNLDEFF", {}).status_code == 404

    now = dt.datetime.now(dt.UTC)
    window = {"since": (now - dt.timedelta(hours=1)).isoformat(), "until": (now + dt.timedelta(minutes=1)).isoformat()}
    r = api.post("/v1/webhooks/redeliver", "FATLUS33", window)
    assert r.status_code == 202 and len(r.json()["deliveries"]) == 2  # the failed ones; one is pending again
    assert {d.status for d in _deliveries(api)} == {"pending"}


@pytest.mark.parametrize(
    ("since", "until"),
    [
        ("2026-12-02T10:00:00Z", "2026-12-02T09:00:00Z"),  # backwards
        ("2026-12-01T00:00:00Z", "2026-12-02T00:00:01Z"),  # longer than a day
        ("2026-12-02T10:00:00", "2026-12-02T11:00:00"),  # no offset
    ],
)
def test_a_bad_redelivery_range_is_refused(api: Api, since: str, until: str) -> None:
    assert api.post("/v1/webhooks", "FATLUS33", {"url": "http://127.0.0.1:9/hook"}).status_code == 201
    r = api.post("/v1/webhooks/redeliver", "FATLUS33", {"since": since, "until": until})
    assert r.status_code == 422 and r.json()["error"]["code"] == "redelivery_range"
