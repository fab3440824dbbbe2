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
from collections.abc import Iterator

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.orm import Session

from node.auth import hash_key
from node.console import acts, chain, liquidity, read
from node.console.core import (
    HEADERS,
    HERE,
    PREFIX,
    Console,
    SignInNeeded,
    console_of,
    forbidden,
    form_of,
    local_path,
    read_store,
    router,
    signed_in,
)
from node.console.session import COOKIE, csrf_matches
from node.errors import Refused
from node.ops import audit_log
from node.ops.export import transfer_rows
from node.services import Services
from settlement.audit_log import as_dict
from settlement.audit_log import verify as verify_log
from settlement.lifecycle import TransferStatus


def install(app: FastAPI, svc: Services) -> None:
    """Mount the console on ``app``: its pages, its actions (:mod:`node.console.acts`), its static files
    and the sign-in redirect."""
    assert acts.ACTIONS, "the actions' routes are registered on the router by importing them"
    app.state.console = Console(svc)
    app.include_router(router)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=HERE / "static"), name="console-static")

    async def sign_in_first(request: Request, _: Exception) -> Response:
        target = urllib.parse.quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
        return RedirectResponse(f"{PREFIX}/login?next={target}", status_code=303, headers=HEADERS)

    app.add_exception_handler(SignInNeeded, sign_in_first)


# ----------------------------------------------------------------------------- sign-in


@router.get("/login")
def login_page(request: Request, next: str = PREFIX) -> HTMLResponse:  # noqa: A002 - the conventional name
    return console_of(request).render("login.html", request, None, next=local_path(next), error="")


@router.post("/login")
async def login(request: Request) -> Response:
    console = console_of(request)
    try:
        form = await form_of(request)
    except Refused as refused:
        return console.render("login.html", request, None, 415, next=PREFIX, error=refused.message)
    after, key = local_path(form.get("next", PREFIX)), form.get("key", "")
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
    response = RedirectResponse(after, status_code=303, headers=HEADERS)
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
    who = signed_in(request)
    form = await form_of(request)
    if not csrf_matches(who, form.get("csrf")):
        return forbidden(request, who, "the form's CSRF token is missing or not this session's")
    response = RedirectResponse(f"{PREFIX}/login", status_code=303, headers=HEADERS)
    response.delete_cookie(COOKIE, path=PREFIX)
    return response


# ----------------------------------------------------------------------------- overview


def _overview(request: Request) -> read.Overview:
    settings = console_of(request).svc.settings
    rpc = console_of(request).rpc
    found: read.Overview = read_store(
        request, lambda s: read.overview(s, rpc, settings.finality, settings.confirmations)
    )
    return found


@router.get("")
def overview(request: Request) -> HTMLResponse:
    who = signed_in(request)
    return console_of(request).render("overview.html", request, who, o=_overview(request))


@router.get("/live")
def overview_live(request: Request) -> HTMLResponse:
    """The overview's figures alone, read again every few seconds by the page."""
    who = signed_in(request)
    return console_of(request).render("_live.html", request, who, o=_overview(request))


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
    who = signed_in(request)
    status = status if status in {s.value for s in TransferStatus} else ""
    s = read.Search(
        uetr.strip()[:36], bank.strip()[:11], status, pair.strip()[:7], _time(since), _time(until), _time(before)
    )
    rows, banks = read_store(request, lambda session: read.search(session, s))
    more = None
    if len(rows) == read.PAGE_SIZE:
        more = urllib.parse.urlencode(s.query() | {"before": rows[-1].created_at.isoformat()})
    return console_of(request).render("transfers.html", request, who, rows=rows, banks=banks, s=s, more=more)


@router.get("/transfers/{transfer_id}")
def transfer(request: Request, transfer_id: str) -> HTMLResponse:
    who = signed_in(request)
    page = read_store(request, lambda session: read.transfer_page(session, transfer_id[:36]))
    if page is None:
        return console_of(request).render(
            "message.html", request, who, 404, title="No such transfer", message=f"no transfer {transfer_id[:36]}"
        )
    return console_of(request).render("transfer.html", request, who, p=page, t=page.transfer)


# ----------------------------------------------------------------------------- liquidity and chain


@router.get("/liquidity")
def liquidity_page(request: Request) -> HTMLResponse:
    who = signed_in(request)
    console = console_of(request)

    def work(session: Session) -> liquidity.Liquidity:
        rules = console.rules.current(session).rules
        result = liquidity.liquidity(session, console.rpc, console.svc.manifest)
        for p in result.positions:
            limits = rules.banks.get(p.bank.bic, rules.default).over(rules.default)
            p.net_debit_cap = limits.net_debit_cap.get(p.currency)
        return result

    return console.render("liquidity.html", request, who, liq=read_store(request, work))


@router.get("/chain")
def chain_page(request: Request) -> HTMLResponse:
    who = signed_in(request)
    console = console_of(request)
    return console.render("chain.html", request, who, c=chain.chain_view(console.rpc, console.svc.manifest))


@router.get("/chain/blocks/{number}")
def block(request: Request, number: str) -> HTMLResponse:
    who = signed_in(request)
    console = console_of(request)
    if not number.isdigit() or len(number) > 18:
        return console.render("message.html", request, who, 404, title="No such block", message=number[:30])
    view = chain.block_view(console.rpc, console.svc.manifest, int(number))
    status = 404 if view.block is None and view.head is not None else 200
    vault = console.svc.manifest.vault
    return console.render("block.html", request, who, status, v=view, number=int(number), vault=vault)


# ----------------------------------------------------------------------------- audit


@router.get("/audit")
def audit(request: Request, verify: str = "") -> HTMLResponse:
    """The audit log and reconciliation; with ``verify``, the log's hash chain checked from its start."""
    who = signed_in(request)
    console = console_of(request)
    view = read_store(request, read.audit_view)
    verdict, verdict_s = None, None
    if verify:
        started = time.perf_counter()
        verdict = verify_log(audit_log.entries(console.svc.store))
        verdict_s = time.perf_counter() - started
    return console.render("audit.html", request, who, a=view, verdict=verdict, verdict_s=verdict_s)


@router.get("/audit/log.jsonl")
def audit_log_export(request: Request) -> StreamingResponse:
    signed_in(request)
    store = console_of(request).svc.store
    lines = (json.dumps(as_dict(e), separators=(",", ":"), sort_keys=True) + "\n" for e in audit_log.entries(store))
    return _download(lines, "corridor-audit-log.jsonl")


@router.get("/audit/transfers.jsonl")
def transfers_export(request: Request) -> StreamingResponse:
    signed_in(request)
    lines = (json.dumps(row, separators=(",", ":")) + "\n" for row in transfer_rows(console_of(request).svc.store))
    return _download(lines, "corridor-transfers.jsonl")


def _download(lines: Iterator[str], name: str) -> StreamingResponse:
    headers = HEADERS | {"Content-Disposition": f'attachment; filename="{name}"'}
    return StreamingResponse(lines, media_type="application/x-ndjson", headers=headers)
