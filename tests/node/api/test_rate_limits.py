"""Rate limits at the door: per API key, and per address for requests without a valid key;
429 ``rate_limited`` with ``Retry-After``, while the other banks' requests go through."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from node.api.ratelimit import RateLimits, RateSettings, TokenBuckets
from node.errors import Refusal, Refused
from tests.node.api.conftest import Api, _api
from tests.stores import store_url


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[Api]:
    with store_url("sqlite", tmp_path) as url:
        yield from _api(tmp_path, url, rate_limit_key_per_s=5, rate_limit_key_burst=10, auth_failures_burst=20)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_gives_its_burst_then_its_rate_and_says_how_long_to_wait() -> None:
    clock = Clock()
    buckets = TokenBuckets(rate_per_s=2.0, burst=3, clock=clock)
    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a") == pytest.approx(0.5)  # nothing taken: half a second to the next token
    assert buckets.take("b") == 0.0  # another name, its own bucket
    clock.now += 0.5
    assert buckets.take("a") == 0.0 and buckets.take("a") == pytest.approx(0.5)
    clock.now += 100
    assert buckets.wait("a") == 0.0 and [buckets.take("a") for _ in range(4)][-1] > 0  # refilled to the burst only


def test_an_address_that_spent_its_failures_is_refused_except_for_keys_known_good() -> None:
    clock = Clock()
    limits = RateLimits(RateSettings(0, 1, auth_failures_per_s=1.0, auth_failures_burst=2), clock)
    limits.succeeded("good")
    for _ in range(2):
        limits.admit("guess", "10.0.0.1")
        limits.failed("10.0.0.1")
    with pytest.raises(Refused) as refused:
        limits.admit("another-guess", "10.0.0.1")
    assert refused.value.code == Refusal.RATE_LIMITED and refused.value.details == {"retry_after_s": 1}
    limits.admit("good", "10.0.0.1")  # a bank behind the same address keeps working
    limits.admit("guess", "10.0.0.2")  # and other addresses are not concerned
    clock.now += 1.0
    limits.admit("guess", "10.0.0.1")  # a token back after a second


def test_a_thousand_wrong_keys_from_one_address_meet_429_while_a_bank_keeps_working(limited: Api) -> None:
    seen: Counter[int] = Counter()
    retry_after: set[str] = set()
    bank_statuses: Counter[int] = Counter()
    for n in range(1000):
        r = limited.client.get("/v1/transfers", headers={"Authorization": f"Bearer cor_wrong{n}"})
        seen[r.status_code] += 1
        if r.status_code == 429:
            assert r.json()["error"]["code"] == "rate_limited"
            retry_after.add(r.headers["Retry-After"])
        if n % 100 == 0:
            bank_statuses[limited.client.get("/v1/transfers", headers=limited.auth("FATLUS33")).status_code] += 1
    assert set(seen) == {401, 429}
    assert 20 <= seen[401] < 60  # the burst, and the trickle the rate lets through meanwhile
    assert seen[429] > 900 and retry_after and all(int(v) >= 1 for v in retry_after)
    assert bank_statuses == Counter({200: 10})


def test_a_key_over_its_rate_is_refused_and_another_banks_key_is_not(limited: Api) -> None:
    statuses = [limited.client.get("/v1/transfers", headers=limited.auth("FATLUS33")).status_code for _ in range(30)]
    assert statuses[:10] == [200] * 10 and 429 in statuses[10:]
    assert limited.client.get("/v1/transfers", headers=limited.auth("RHNLDEFF")).status_code == 200
    refused = limited.client.get("/v1/transfers", headers=limited.auth("FATLUS33"))
    if refused.status_code == 429:
        assert int(refused.headers["Retry-After"]) >= 1 and refused.json()["error"]["details"]["retry_after_s"] >= 1


def test_the_openapi_document_lists_429_rate_limited_for_every_v1_operation(limited: Api) -> None:
    spec = limited.client.get("/openapi.json").json()
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            if path.startswith("/v1"):
                assert "rate_limited" in op["responses"]["429"]["x-error-codes"], (method, path)
