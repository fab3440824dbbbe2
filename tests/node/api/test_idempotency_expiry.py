"""Idempotency keys are kept 24 hours (the node's ``idempotency_ttl_s``), then forgotten and purged."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select, update

from node.idempotency import purge_expired
from node.store.models import IdempotencyRecord
from tests.node.api.conftest import Api


def _age(api: Api, hours: float) -> None:
    with api.store.transaction() as s:
        s.execute(update(IdempotencyRecord).values(created_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=hours)))


def _keys(api: Api) -> int:
    with api.store.transaction(write=False) as s:
        return int(s.execute(select(func.count()).select_from(IdempotencyRecord)).scalar_one())


def test_a_key_replays_within_a_day_and_is_forgotten_after(api: Api) -> None:
    first = api.signed(api.instruction())
    assert api.post("/v1/transfers", "FATLUS33", first, key="k-1").status_code == 202
    _age(api, 23)
    again = api.post("/v1/transfers", "FATLUS33", first, key="k-1")
    assert again.status_code == 202 and again.headers.get("Idempotent-Replayed") == "true"
    other = api.signed(api.instruction())
    assert api.post("/v1/transfers", "FATLUS33", other, key="k-1").status_code == 409  # still the first's
    _age(api, 25)
    fresh = api.post("/v1/transfers", "FATLUS33", other, key="k-1")
    assert fresh.status_code == 202 and "Idempotent-Replayed" not in fresh.headers
    assert api.transfer_count() == 2


def test_expired_keys_are_purged_and_live_ones_kept(api: Api) -> None:
    for n in range(3):
        assert api.post("/v1/transfers", "FATLUS33", api.signed(api.instruction()), key=f"old-{n}").status_code == 202
    _age(api, 30)
    assert api.post("/v1/transfers", "FATLUS33", api.signed(api.instruction()), key="live").status_code == 202
    with api.store.transaction() as s:
        assert purge_expired(s, 86_400) == 3
    assert _keys(api) == 1


def test_the_openapi_document_says_how_long_a_key_lives(api: Api) -> None:
    spec = api.client.get("/openapi.json").json()
    header = next(p for p in spec["paths"]["/v1/transfers"]["post"]["parameters"] if p["name"] == "Idempotency-Key")
    assert "24 hours" in header["description"]
