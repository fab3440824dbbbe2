"""Console sessions: what a cookie proves, and every way one is refused."""

from __future__ import annotations

from node.auth import Role
from node.console.session import ConsoleSession, SessionKeys, csrf_matches

OPERATOR, AUDITOR = "operator-key-1", "auditor-key-1"


def test_sign_in_gives_the_role_of_the_key_and_the_cookie_reads_back() -> None:
    keys = SessionKeys(OPERATOR, AUDITOR, lifetime_s=60)
    op = keys.sign_in(OPERATOR, now_s=1_000)
    au = keys.sign_in(AUDITOR, now_s=1_000)
    assert op is not None and au is not None
    assert (op.role, op.can_act, au.role, au.can_act) == (Role.OPERATOR, True, Role.AUDITOR, False)
    assert keys.read(keys.cookie(op), now_s=1_059) == op
    assert op.csrf != au.csrf and len(op.csrf) >= 32


def test_sign_in_refuses_any_other_key() -> None:
    keys = SessionKeys(OPERATOR, AUDITOR)
    for key in ("", "cor_bank-key", OPERATOR + " ", OPERATOR[:-1], AUDITOR.upper()):
        assert keys.sign_in(key) is None, key


def test_a_cookie_tampered_with_expired_or_signed_under_other_credentials_is_refused() -> None:
    keys = SessionKeys(OPERATOR, AUDITOR, lifetime_s=60)
    session = keys.sign_in(AUDITOR, now_s=1_000)
    assert session is not None
    cookie = keys.cookie(session)
    payload, _, mac = cookie.rpartition(".")
    promoted = cookie.replace("auditor.", "operator.", 1)
    assert keys.read(promoted, now_s=1_000) is None, "the role is signed"
    assert keys.read(payload + "." + mac[:-1] + ("A" if mac[-1] != "A" else "B"), now_s=1_000) is None
    assert keys.read(cookie, now_s=1_060) is None, "expired"
    assert SessionKeys(OPERATOR, "auditor-key-2").read(cookie, now_s=1_000) is None, "rotated credentials"
    for junk in (None, "", ".", "a.b.c.d", "x" * 300, cookie + "x"):
        assert keys.read(junk, now_s=1_000) is None, junk


def test_the_csrf_token_must_be_the_sessions_own() -> None:
    session = ConsoleSession(Role.OPERATOR, "token-1", 2_000)
    assert csrf_matches(session, "token-1")
    assert not csrf_matches(session, None) and not csrf_matches(session, "") and not csrf_matches(session, "token-2")
