"""The operator's actions in the console: a confirmation page, then a POST that needs the session's
CSRF token, the node's own origin and the operator's role, and runs the admin API's own code."""

from __future__ import annotations

import urllib.parse

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from node.console import read
from node.console.core import (
    HEADERS,
    PREFIX,
    REASON_CHARS_MAX,
    Console,
    console_of,
    forbidden,
    form_of,
    read_store,
    router,
    signed_in,
)
from node.console.session import ConsoleSession, csrf_matches
from node.errors import Refusal, Refused
from node.ops import actions
from node.ops.reconcile import reconcile
from settlement.errors import CorridorError
from settlement.lifecycle import ReviewState


def _same_origin(request: Request) -> bool:
    """A browser names the page a POST came from: it must be the node's own (no header: not a browser's form)."""
    origin = request.headers.get("origin")
    return origin is None or urllib.parse.urlsplit(origin).netloc == request.headers.get("host", "")


async def _action(request: Request) -> tuple[ConsoleSession, dict[str, str]] | HTMLResponse:
    """An action's session and form, or the refusal: no session, a foreign origin, no CSRF token, not the operator."""
    who = signed_in(request)
    try:
        form = await form_of(request)
    except Refused as refused:
        return console_of(request).render(
            "message.html", request, who, 415, title="Not a form", message=refused.message
        )
    if not _same_origin(request) or not csrf_matches(who, form.get("csrf")):
        return forbidden(request, who, "the form's CSRF token is missing or not this session's: reload the page")
    if not who.can_act:
        return forbidden(request, who, "the auditor's session reads; only the operator acts")
    return who, form


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
    who = signed_in(request)
    console = console_of(request)
    if action not in ACTIONS:
        return console.render("message.html", request, who, 404, title="No such action", message=action[:40])
    if not who.can_act:
        return forbidden(request, who, "the auditor's session reads; only the operator acts")
    return console.render("confirm.html", request, who, action=action, what=ACTIONS[action], subject=subject[:36])


@router.post("/act/{action}")
async def act(request: Request, action: str) -> Response:
    checked = await _action(request)
    if isinstance(checked, HTMLResponse):
        return checked
    who, form = checked
    console = console_of(request)
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
    return RedirectResponse(back, status_code=303, headers=HEADERS)


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
    who = signed_in(request)
    rows, banks = read_store(request, lambda session: (read.held(session), read.banks_by_address(session)))
    return console_of(request).render("reviews.html", request, who, rows=rows, banks=banks)
