"""What the console's routes share: the router, the templates and session keys (:class:`Console`),
the security headers, and the checks every page and form goes through."""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.orm import Session

from node.console import fmt
from node.console.session import COOKIE, ConsoleSession, SessionKeys
from node.errors import Refusal, Refused
from node.ops.rules import RulesInForce
from node.services import Services
from settlement.chain.rpc import Rpc
from settlement.lifecycle import TransferStatus

HERE = Path(__file__).resolve().parent
PREFIX = "/console"
LIVE_REFRESH_S = 2
"""How often the overview's figures are read again by the page's script."""
FORM_FIELDS_MAX = 20
REASON_CHARS_MAX = 1000
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

router = APIRouter(prefix=PREFIX, include_in_schema=False)


class SignInNeeded(Exception):
    """A page was asked for without a valid session: the reader is sent to sign in."""


class Console:
    """What the console's routes share: templates, session keys, a chain client."""

    def __init__(self, svc: Services) -> None:
        s = svc.settings
        self.svc = svc
        self.keys = SessionKeys(s.operator_api_key, s.auditor_api_key, s.console_session_s)
        self.rpc = Rpc(s.rpc_url) if svc.vault is not None else None
        self.rules = RulesInForce(svc.store, svc.manifest.assets, s.risk_rules.parent if s.risk_rules else s.data_dir)
        self.env = Environment(
            loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True), auto_reload=False
        )
        self.env.filters.update(
            amount=fmt.amount,
            utc=fmt.utc,
            unix=fmt.unix,
            short=fmt.short,
            state=fmt.state,
            seconds=fmt.seconds,
            rate=fmt.rate,
        )
        self.env.globals.update(
            prefix=PREFIX, statuses=[s.value for s in TransferStatus], bars=fmt.bars, paired_bars=fmt.paired_bars
        )

    def render(
        self, name: str, request: Request, who: ConsoleSession | None, status: int = 200, **context: Any
    ) -> HTMLResponse:
        page = self.env.get_template(name).render(who=who, path=request.url.path, refresh_s=LIVE_REFRESH_S, **context)
        return HTMLResponse(page, status_code=status, headers=HEADERS)


def console_of(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


def signed_in(request: Request) -> ConsoleSession:
    who = console_of(request).keys.read(request.cookies.get(COOKIE))
    if who is None:
        raise SignInNeeded
    return who


def read_store(request: Request, work: Callable[[Session], Any]) -> Any:
    with console_of(request).svc.store.transaction(write=False) as session:
        return work(session)


async def form_of(request: Request) -> dict[str, str]:
    """A url-encoded form (the guard has bounded its size): one value per field, at most a few fields."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
        raise Refused(Refusal.INVALID_REQUEST, "a console form is sent url-encoded")
    pairs = urllib.parse.parse_qsl((await request.body()).decode("utf-8", "replace"), max_num_fields=FORM_FIELDS_MAX)
    return dict(pairs)


def forbidden(request: Request, who: ConsoleSession | None, message: str) -> HTMLResponse:
    return console_of(request).render("message.html", request, who, 403, title="Not allowed", message=message)


def local_path(target: str) -> str:
    """Only a path of the console itself is followed after sign-in (no open redirect)."""
    return target if target.startswith(PREFIX) and not target.startswith("//") and "\\" not in target else PREFIX
