"""``/console``: the operator's and the auditor's pages, rendered on the server.

Signing in takes the operator's or the auditor's API key and gives a session cookie
(``HttpOnly``, ``SameSite=Strict``, ``Secure`` over HTTPS; :mod:`node.console.session`). Every
page needs a session; every action is a POST that needs the session's CSRF token and the
operator's role (an auditor's session gets 403) and runs the same code as the admin API
(:mod:`node.ops.actions`), recorded in the audit log. Pages carry a Content-Security-Policy that
allows scripts and styles from the node only; nothing is fetched from anywhere else.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.orm import Session

from node.auth import hash_key
from node.console import fmt, read
from node.console.session import COOKIE, ConsoleSession, SessionKeys, csrf_matches
from node.errors import Refusal, Refused
from node.ops import actions, audit_log
from node.ops.export import transfer_rows
from node.ops.reconcile import reconcile
from node.ops.rules import RulesInForce
from node.services import Services
from settlement.audit_log import as_dict
from settlement.audit_log import verify as verify_log
from settlement.chain.rpc import Rpc
from settlement.errors import CorridorError
from settlement.lifecycle import ReviewState, TransferStatus

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
_HEADERS = {
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
        return HTMLResponse(page, status_code=status, headers=_HEADERS)


def install(app: FastAPI, svc: Services) -> None:
    """Mount the console on ``app``: its routes, its static files and the sign-in redirect."""
    app.state.console = Console(svc)
    app.include_router(router)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=HERE / "static"), name="console-static")

    async def sign_in_first(request: Request, _: Exception) -> Response:
        target = urllib.parse.quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
        return RedirectResponse(f"{PREFIX}/login?next={target}", status_code=303, headers=_HEADERS)

    app.add_exception_handler(SignInNeeded, sign_in_first)


def _console(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


def _who(request: Request) -> ConsoleSession:
    who = _console(request).keys.read(request.cookies.get(COOKIE))
    if who is None:
        raise SignInNeeded
    return who


def _read(request: Request, work: Callable[[Session], Any]) -> Any:
    with _console(request).svc.store.transaction(write=False) as session:
        return work(session)


async def _form(request: Request) -> dict[str, str]:
    """A url-encoded form (the guard has bounded its size): one value per field, at most a few fields."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
        raise Refused(Refusal.INVALID_REQUEST, "a console form is sent url-encoded")
    pairs = urllib.parse.parse_qsl((await request.body()).decode("utf-8", "replace"), max_num_fields=FORM_FIELDS_MAX)
    return dict(pairs)


def _forbidden(request: Request, who: ConsoleSession | None, message: str) -> HTMLResponse:
    return _console(request).render("message.html", request, who, 403, title="Not allowed", message=message)


def _same_origin(request: Request) -> bool:
    """A browser names the page a POST came from: it must be the node's own (no header: not a browser's form)."""
    origin = request.headers.get("origin")
    return origin is None or urllib.parse.urlsplit(origin).netloc == request.headers.get("host", "")


async def _action(request: Request) -> tuple[ConsoleSession, dict[str, str]] | HTMLResponse:
    """An action's session and form, or the refusal: no session, a foreign origin, no CSRF token, not the operator."""
    who = _who(request)
    try:
        form = await _form(request)
    except Refused as refused:
        return _console(request).render("message.html", request, who, 415, title="Not a form", message=refused.message)
    if not _same_origin(request) or not csrf_matches(who, form.get("csrf")):
        return _forbidden(request, who, "the form's CSRF token is missing or not this session's: reload the page")
    if not who.can_act:
        return _forbidden(request, who, "the auditor's session reads; only the operator acts")
    return who, form


# ----------------------------------------------------------------------------- sign-in


@router.get("/login")
def login_page(request: Request, next: str = PREFIX) -> HTMLResponse:  # noqa: A002 - the conventional name
    return _console(request).render("login.html", request, None, next=_local(next), error="")


@router.post("/login")
async def login(request: Request) -> Response:
    console = _console(request)
    try:
        form = await _form(request)
    except Refused as refused:
        return console.render("login.html", request, None, 415, next=PREFIX, error=refused.message)
    after, key = _local(form.get("next", PREFIX)), form.get("key", "")
    address = str(request.client.host if request.client else "unknown")
    limits = request.app.state.rate_limits
    try:  # the API's limits: a key tried too fast, or an address that has spent its failed attempts
        limits.admit(hash_key(key), address)
    except Refused as refused:
        return console.render("login.html", request, None, 429, next=after, error=refused.message)
    who = console.keys.sign_in(key)
    if who is None:
        limits.failed(address)
        error = "that key is not the operator's or the auditor's"
        return console.render("login.html", request, None, 401, next=after, error=error)
    limits.succeeded(hash_key(key))
    response = RedirectResponse(after, status_code=303, headers=_HEADERS)
    response.set_cookie(
        COOKIE,
        console.keys.cookie(who),
        max_age=console.keys.lifetime_s,
        path=PREFIX,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    who = _who(request)
    form = await _form(request)
    if not csrf_matches(who, form.get("csrf")):
        return _forbidden(request, who, "the form's CSRF token is missing or not this session's")
    response = RedirectResponse(f"{PREFIX}/login", status_code=303, headers=_HEADERS)
    response.delete_cookie(COOKIE, path=PREFIX)
    return response


def _local(target: str) -> str:
    """Only a path of the console itself is followed after sign-in (no open redirect)."""
    return target if target.startswith(PREFIX) and not target.startswith("//") and "\\" not in target else PREFIX


# ----------------------------------------------------------------------------- overview


def _overview(request: Request) -> read.Overview:
    settings = _console(request).svc.settings
    rpc = _console(request).rpc
    found: read.Overview = _read(request, lambda s: read.overview(s, rpc, settings.finality, settings.confirmations))
    return found


@router.get("")
def overview(request: Request) -> HTMLResponse:
    who = _who(request)
    return _console(request).render("overview.html", request, who, o=_overview(request))


@router.get("/live")
def overview_live(request: Request) -> HTMLResponse:
    """The overview's figures alone, read again every few seconds by the page."""
    who = _who(request)
    return _console(request).render("_live.html", request, who, o=_overview(request))


# ----------------------------------------------------------------------------- transfers


def _time(value: str) -> dt.datetime | None:
    if not value:
        return None
    try:
        at = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return at if at.tzinfo else at.replace(tzinfo=dt.UTC)


@router.get("/transfers")
def transfers(
    request: Request,
    uetr: str = "",
    bank: str = "",
    status: str = "",
    pair: str = "",
    since: str = "",
    until: str = "",
    before: str = "",
) -> HTMLResponse:
    who = _who(request)
    status = status if status in {s.value for s in TransferStatus} else ""
    s = read.Search(
        uetr.strip()[:36], bank.strip()[:11], status, pair.strip()[:7], _time(since), _time(until), _time(before)
    )
    rows, banks = _read(request, lambda session: read.search(session, s))
    more = None
    if len(rows) == read.PAGE_SIZE:
        more = urllib.parse.urlencode(s.query() | {"before": rows[-1].created_at.isoformat()})
    return _console(request).render("transfers.html", request, who, rows=rows, banks=banks, s=s, more=more)


@router.get("/transfers/{transfer_id}")
def transfer(request: Request, transfer_id: str) -> HTMLResponse:
    who = _who(request)
    page = _read(request, lambda session: read.transfer_page(session, transfer_id[:36]))
    if page is None:
        return _console(request).render(
            "message.html", request, who, 404, title="No such transfer", message=f"no transfer {transfer_id[:36]}"
        )
    return _console(request).render("transfer.html", request, who, p=page, t=page.transfer)


# ----------------------------------------------------------------------------- liquidity and chain


@router.get("/liquidity")
def liquidity(request: Request) -> HTMLResponse:
    who = _who(request)
    console = _console(request)

    def work(session: Session) -> read.Liquidity:
        rules = console.rules.current(session).rules
        result = read.liquidity(session, console.rpc, console.svc.manifest)
        for p in result.positions:
            limits = rules.banks.get(p.bank.bic, rules.default).over(rules.default)
            p.net_debit_cap = limits.net_debit_cap.get(p.currency)
        return result

    return console.render("liquidity.html", request, who, liq=_read(request, work))


@router.get("/chain")
def chain(request: Request) -> HTMLResponse:
    who = _who(request)
    console = _console(request)
    return console.render("chain.html", request, who, c=read.chain_view(console.rpc, console.svc.manifest))


@router.get("/chain/blocks/{number}")
def block(request: Request, number: str) -> HTMLResponse:
    who = _who(request)
    console = _console(request)
    if not number.isdigit() or len(number) > 18:
        return console.render("message.html", request, who, 404, title="No such block", message=number[:30])
    view = read.block_view(console.rpc, console.svc.manifest, int(number))
    status = 404 if view.block is None and view.head is not None else 200
    vault = console.svc.manifest.vault
    return console.render("block.html", request, who, status, v=view, number=int(number), vault=vault)


# ----------------------------------------------------------------------------- audit


@router.get("/audit")
def audit(request: Request, verify: str = "") -> HTMLResponse:
    """The audit log and reconciliation; with ``verify``, the log's hash chain checked from its start."""
    who = _who(request)
    console = _console(request)
    view = _read(request, read.audit_view)
    verdict, verdict_s = None, None
    if verify:
        started = time.perf_counter()
        verdict = verify_log(audit_log.entries(console.svc.store))
        verdict_s = time.perf_counter() - started
    return console.render("audit.html", request, who, a=view, verdict=verdict, verdict_s=verdict_s)


@router.get("/audit/log.jsonl")
def audit_log_export(request: Request) -> StreamingResponse:
    _who(request)
    store = _console(request).svc.store
    lines = (json.dumps(as_dict(e), separators=(",", ":"), sort_keys=True) + "\n" for e in audit_log.entries(store))
    return _download(lines, "corridor-audit-log.jsonl")


@router.get("/audit/transfers.jsonl")
def transfers_export(request: Request) -> StreamingResponse:
    _who(request)
    lines = (json.dumps(row, separators=(",", ":")) + "\n" for row in transfer_rows(_console(request).svc.store))
    return _download(lines, "corridor-transfers.jsonl")


def _download(lines: Iterator[str], name: str) -> StreamingResponse:
    headers = _HEADERS | {"Content-Disposition": f'attachment; filename="{name}"'}
    return StreamingResponse(lines, media_type="application/x-ndjson", headers=headers)


# ----------------------------------------------------------------------------- actions

ACTIONS: dict[str, str] = {
    "approve": "Approve the held transfer: it settles",
    "reject": "Reject the held transfer: refunded if escrowed, else rejected",
    "freeze": "Freeze the bank: its new transfers are refused",
    "unfreeze": "Unfreeze the bank",
    "pause": "Pause the network: new transfers are refused, nothing is sent",
    "resume": "Resume the network",
    "reconcile": "Run a reconciliation of the store against the chain now",
}


@router.get("/act/{action}")
def confirm(request: Request, action: str, subject: str = "") -> HTMLResponse:
    """The confirmation step of an action: what it does, to what, and a reason to give."""
    who = _who(request)
    console = _console(request)
    if action not in ACTIONS:
        return console.render("message.html", request, who, 404, title="No such action", message=action[:40])
    if not who.can_act:
        return _forbidden(request, who, "the auditor's session reads; only the operator acts")
    return console.render("confirm.html", request, who, action=action, what=ACTIONS[action], subject=subject[:36])


@router.post("/act/{action}")
async def act(request: Request, action: str) -> Response:
    checked = await _action(request)
    if isinstance(checked, HTMLResponse):
        return checked
    who, form = checked
    console = _console(request)
    subject, reason = form.get("subject", "")[:36], form.get("reason", "")[:REASON_CHARS_MAX]
    if action not in ACTIONS:
        return console.render("message.html", request, who, 404, title="No such action", message=action[:40])
    try:
        back = _carry_out(console, action, subject, reason)
    except Refused as refused:
        status = 404 if refused.code is Refusal.NOT_FOUND else 409
        return console.render("message.html", request, who, status, title="Not done", message=refused.message)
    except CorridorError as exc:
        return console.render("message.html", request, who, 503, title="Not done", message=str(exc)[:300])
    return RedirectResponse(back, status_code=303, headers=_HEADERS)


def _carry_out(console: Console, action: str, subject: str, reason: str) -> str:
    """Carry ``action`` out through the admin API's own code; the page to show next."""
    svc = console.svc
    if action == "reconcile":
        reconcile(svc.store, svc.settings.rpc_url, svc.manifest, svc.settings.final, "console")
        return f"{PREFIX}/audit"
    with svc.store.transaction() as session:
        if action in ("approve", "reject"):
            decision = ReviewState.APPROVED if action == "approve" else ReviewState.REJECTED
            t = actions.decide_review(session, subject, decision, reason, actions.Via.CONSOLE)
            return f"{PREFIX}/transfers/{t.id}"
        if action in ("freeze", "unfreeze"):
            actions.set_frozen(session, subject, action == "freeze", actions.Via.CONSOLE, reason)
            return f"{PREFIX}/liquidity"
        actions.set_paused(session, action == "pause", actions.Via.CONSOLE, reason)
        return PREFIX


@router.get("/reviews")
def reviews(request: Request) -> HTMLResponse:
    who = _who(request)
    rows, banks = _read(request, lambda session: (read.held(session), read.banks_by_address(session)))
    return _console(request).render("reviews.html", request, who, rows=rows, banks=banks)
