"""The console's HTTP surface against a node, without a browser: every refusal is a clear 4xx
page or a redirect to sign in, changes nothing, and never a 5xx."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import httpx
import pytest
from sqlalchemy import select

from node.config import DEVNET_AUDITOR_API_KEY, DEVNET_OPERATOR_API_KEY
from node.store.models import AuditEntry, Bank, NetworkState, ReconciliationRun
from tests.node.conftest import LocalNode

pytestmark = pytest.mark.devnet
NodeFactory = Callable[..., LocalNode]


@pytest.fixture
def node(node_factory: NodeFactory) -> LocalNode:
    return node_factory(worker=False)


def _client(node: LocalNode) -> httpx.Client:
    return httpx.Client(base_url=node.url, follow_redirects=False, timeout=10)


def _signed_in(node: LocalNode, key: str) -> tuple[httpx.Client, str]:
    """A client holding a session, and the session's CSRF token as the pages render it."""
    http = _client(node)
    answer = http.post("/console/login", data={"key": key, "next": "/console"})
    assert answer.status_code == 303 and answer.headers["location"] == "/console"
    page = http.get("/console").text
    csrf = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    return http, csrf


def _audit(node: LocalNode) -> list[tuple[str, str, dict[str, object]]]:
    with node.svc.store.transaction(write=False) as s:
        return [(e.actor, e.action, e.data) for e in s.scalars(select(AuditEntry).order_by(AuditEntry.seq))]


@pytest.fixture
def operator(node: LocalNode) -> Iterator[tuple[httpx.Client, str]]:
    http, csrf = _signed_in(node, DEVNET_OPERATOR_API_KEY)
    yield http, csrf
    http.close()


def test_pages_without_a_session_send_the_reader_to_sign_in(node: LocalNode) -> None:
    with _client(node) as http:
        for path in ("/console", "/console/transfers?status=FINAL", "/console/audit/log.jsonl"):
            answer = http.get(path)
            assert answer.status_code == 303 and answer.headers["location"].startswith("/console/login?next=")
        http.cookies.set("corridor_console", "operator.9999999999.token.forged", path="/console")
        assert http.get("/console").status_code == 303
        assert http.post("/console/act/pause", data={"csrf": "token"}).status_code == 303


def test_sign_in_refuses_a_banks_key_a_non_form_and_foreign_redirects_and_limits_failures(node: LocalNode) -> None:
    with _client(node) as http:
        answer = http.post("/console/login", data={"key": node.api_keys["FATLUS33"]})
        assert answer.status_code == 401 and "set-cookie" not in answer.headers
        answer = http.post("/console/login", json={"key": DEVNET_OPERATOR_API_KEY})
        assert answer.status_code == 415 and "set-cookie" not in answer.headers
        for target in ("//evil.example/", "https://evil.example/console", "/v1/admin/banks", "/console\\@evil"):
            answer = http.post("/console/login", data={"key": DEVNET_AUDITOR_API_KEY, "next": target})
            assert answer.headers["location"] == "/console", target
        cookie = answer.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "path=/console" in cookie
    with _client(node) as http:
        codes = [http.post("/console/login", data={"key": f"wrong-{i}"}).status_code for i in range(30)]
        # The address's burst of 20 failures (one spent above with the bank's key), then 429.
        assert codes[:19] == [401] * 19 and set(codes[19:]) == {429}, codes
        limited = http.post("/console/login", data={"key": "wrong"})
        assert "too many requests" in limited.text


def test_every_page_carries_the_security_headers_and_bad_filters_are_answered(
    node: LocalNode, operator: tuple[httpx.Client, str]
) -> None:
    http, _ = operator
    for path in (
        "/console",
        "/console/live",
        "/console/transfers?since=yesterday&until=%00&status=BOGUS&pair=%27%3B--&bank=NOPE",
        "/console/transfers?before=2026-01-01T00:00:00",
        "/console/reviews",
        "/console/liquidity",
        "/console/chain",
        "/console/audit?verify=1",
    ):
        answer = http.get(path)
        assert answer.status_code == 200, path
        assert "'unsafe-inline'" not in answer.headers["content-security-policy"]
        assert answer.headers["x-content-type-options"] == "nosniff" and answer.headers["cache-control"] == "no-store"
        assert DEVNET_OPERATOR_API_KEY not in answer.text and DEVNET_AUDITOR_API_KEY not in answer.text
    assert http.get("/console/transfers/" + "f" * 500).status_code == 404
    for number in ("99999999", "-1", "abc", "9" * 40):
        assert http.get(f"/console/chain/blocks/{number}").status_code == 404, number
    assert http.get("/console/chain/blocks/1").status_code == 200
    assert http.get("/console/act/launch").status_code == 404
    log = http.get("/console/audit/log.jsonl")
    assert log.status_code == 200 and "attachment" in log.headers["content-disposition"]
    assert all(json.loads(line)["hash"] for line in log.text.splitlines())


def test_actions_refused_change_nothing(node: LocalNode, operator: tuple[httpx.Client, str]) -> None:
    http, csrf = operator
    before = _audit(node)
    refusals = [
        (http.post("/console/act/pause", data={"reason": "no token"}), 403),
        (http.post("/console/act/pause", data={"csrf": csrf + "x"}), 403),
        (http.post("/console/act/pause", data={"csrf": csrf}, headers={"Origin": "https://evil.example"}), 403),
        (http.post("/console/act/pause", json={"csrf": csrf}), 415),
        (http.post("/console/act/launch", data={"csrf": csrf}), 404),
        (http.post("/console/act/freeze", data={"csrf": csrf, "subject": "NOBANKXX"}), 404),
        (http.post("/console/act/approve", data={"csrf": csrf, "subject": "0" * 36}), 404),
    ]
    for answer, status in refusals:
        assert answer.status_code == status, (answer.request.url, answer.text[:300])
    assert _audit(node) == before
    auditor, auditor_csrf = _signed_in(node, DEVNET_AUDITOR_API_KEY)
    assert auditor.get("/console/act/pause").status_code == 403
    assert auditor.post("/console/act/pause", data={"csrf": auditor_csrf}).status_code == 403
    auditor.close()
    assert _audit(node) == before


def test_an_operators_action_is_the_admin_apis_and_is_in_the_audit_log(
    node: LocalNode, operator: tuple[httpx.Client, str]
) -> None:
    http, csrf = operator
    answer = http.post("/console/act/freeze", data={"csrf": csrf, "subject": "RHNLDEFF", "reason": "test"})
    assert answer.status_code == 303 and answer.headers["location"] == "/console/liquidity"
    assert http.post("/console/act/pause", data={"csrf": csrf}).status_code == 303
    with node.svc.store.transaction(write=False) as s:
        assert s.scalar(select(Bank.frozen).where(Bank.bic == "RHNLDEFF")) is True
        state = s.get(NetworkState, 1)
        assert state is not None and state.paused
    assert _audit(node)[-2:] == [
        ("operator", "bank.frozen", {"via": "console", "reason": "test"}),
        ("operator", "network.paused", {"via": "console"}),
    ]
    answer = http.post("/console/act/reconcile", data={"csrf": csrf})
    assert answer.status_code == 303 and answer.headers["location"] == "/console/audit"
    with node.svc.store.transaction(write=False) as s:
        run = s.scalars(select(ReconciliationRun).order_by(ReconciliationRun.id.desc())).first()
        assert run is not None and run.trigger == "console" and run.finished_at is not None
    answer = http.post("/console/logout", data={"csrf": csrf})
    assert answer.status_code == 303 and 'corridor_console=""' in answer.headers["set-cookie"]
