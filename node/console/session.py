"""Console sessions: a signed cookie that names the role, carries its CSRF token and expires.

The cookie holds no secret: ``role.expiry.csrf`` and an HMAC of them. The HMAC key is derived from
the operator's and the auditor's API keys, the credentials one signs in with, so rotating either
ends every session signed before, on every replica at once, with nothing stored. The CSRF token
is random per session and must come back in every form (a synchronizer token the server can
check without state: the cookie, which a cross-site page can neither read nor send under
``SameSite=Strict``, holds the expected value).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from node.auth import Role

COOKIE = "corridor_console"
SESSION_S_DEFAULT = 8 * 3600
"""A working day; a session is signed in again after it."""
_ROLES = {Role.OPERATOR.value: Role.OPERATOR, Role.AUDITOR.value: Role.AUDITOR}


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    role: Role
    csrf: str
    expires_s: int

    @property
    def can_act(self) -> bool:
        """Only the operator changes anything; the auditor reads."""
        return self.role is Role.OPERATOR


class SessionKeys:
    """Signs and reads session cookies with a key derived from the sign-in credentials."""

    def __init__(self, operator_api_key: str, auditor_api_key: str, lifetime_s: int = SESSION_S_DEFAULT) -> None:
        material = b"corridor-console-session\0" + operator_api_key.encode() + b"\0" + auditor_api_key.encode()
        self._key = hashlib.sha256(material).digest()
        self._credentials = {Role.OPERATOR: operator_api_key, Role.AUDITOR: auditor_api_key}
        self.lifetime_s = lifetime_s

    def sign_in(self, key: str, now_s: float | None = None) -> ConsoleSession | None:
        """A new session for the role whose API key ``key`` is, or None."""
        for role, expected in self._credentials.items():
            if hmac.compare_digest(hashlib.sha256(key.encode()).digest(), hashlib.sha256(expected.encode()).digest()):
                expires = int((time.time() if now_s is None else now_s) + self.lifetime_s)
                return ConsoleSession(role, secrets.token_urlsafe(24), expires)
        return None

    def cookie(self, session: ConsoleSession) -> str:
        payload = f"{session.role.value}.{session.expires_s}.{session.csrf}"
        return f"{payload}.{self._mac(payload)}"

    def read(self, cookie: str | None, now_s: float | None = None) -> ConsoleSession | None:
        """The session a cookie carries, or None: unsigned, tampered with, expired or of no role."""
        if not cookie or len(cookie) > 256:
            return None
        payload, _, mac = cookie.rpartition(".")
        if not hmac.compare_digest(mac, self._mac(payload)):
            return None
        role, _, rest = payload.partition(".")
        expires, _, csrf = rest.partition(".")
        if role not in _ROLES or not expires.isdigit() or not csrf:
            return None
        if int(expires) <= (time.time() if now_s is None else now_s):
            return None
        return ConsoleSession(_ROLES[role], csrf, int(expires))

    def _mac(self, payload: str) -> str:
        digest = hmac.new(self._key, payload.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def csrf_matches(session: ConsoleSession, token: str | None) -> bool:
    return token is not None and hmac.compare_digest(session.csrf.encode(), token.encode())
