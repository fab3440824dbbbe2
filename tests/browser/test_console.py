"""The console in a real browser, against a node on a devnet, used as an operator and an auditor would:
sign in, watch a transfer reach FINAL without reloading, open it and find its settlement, approve
and reject held transfers, freeze a bank; the auditor sees no action and is refused one posted
anyway; a form without its CSRF token is refused. Every page is checked for labelled controls,
headings in order and the contrast of the state colours, and saved as a screenshot at 1280 and
390 px wide."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from node.bank.client import BankClient, NodeError
from node.config import DEVNET_AUDITOR_API_KEY, DEVNET_OPERATOR_API_KEY
from node.store.models import NetworkState
from tests.node.conftest import LocalNode

pytestmark = pytest.mark.devnet
NodeFactory = Callable[..., LocalNode]
RULES = """version: 1
review:
  above: {USD: "10000.00"}
"""
WIDTHS = (1280, 390)
ACTION_LINKS = re.compile("^(Approve|Reject|Freeze|Unfreeze|Pause|Resume|Run a reconciliation)")
CONTRAST_MIN = 4.5
"""WCAG AA for normal text."""

_NAMELESS_CONTROLS = """() => {
  const nameOf = (el) => {
    let name = el.getAttribute("aria-label") || "";
    if (!name && el.id) { const l = document.querySelector(`label[for="${el.id}"]`); if (l) name = l.textContent; }
    if (!name && el.closest("label")) name = el.closest("label").textContent;
    if (!name) name = el.textContent || el.getAttribute("title") || el.value || "";
    return name.trim();
  };
  return [...document.querySelectorAll('input:not([type="hidden"]), select, textarea, button, a[href]')]
    .filter((el) => !nameOf(el)).map((el) => el.outerHTML.slice(0, 160));
}"""
_HEADINGS = "() => [...document.querySelectorAll('h1,h2,h3,h4,h5,h6')].map((h) => Number(h.tagName[1]))"
_STATE_COLOURS = """() => [...document.querySelectorAll('.state')].map((el) => {
  const s = getComputedStyle(el); return [el.textContent.trim(), s.color, s.backgroundColor];
})"""


def _luminance(css: str) -> float:
    r, g, b = (int(v) / 255 for v in re.findall(r"\d+", css)[:3])
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in (r, g, b)]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def _contrast(fg: str, bg: str) -> float:
    a, b = sorted((_luminance(fg), _luminance(bg)), reverse=True)
    return (a + 0.05) / (b + 0.05)


def check_page(page: Page, artifacts: Path, name: str) -> None:
    """Accessibility basics, then a screenshot at each width."""
    assert page.evaluate(_NAMELESS_CONTROLS) == [], f"{name}: controls without a label"
    levels = page.evaluate(_HEADINGS)
    assert levels and levels[0] == 1 and levels.count(1) == 1, f"{name}: one h1, first: {levels}"
    assert all(b <= a + 1 for a, b in zip(levels, levels[1:], strict=False)), f"{name}: headings skip a level: {levels}"
    for label, fg, bg in page.evaluate(_STATE_COLOURS):
        assert _contrast(fg, bg) >= CONTRAST_MIN, f"{name}: state {label} contrast {_contrast(fg, bg):.2f}"
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(artifacts / f"{name}-{width}.png"), full_page=True)
        overflow = page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 1, f"{name} at {width} px scrolls sideways by {overflow} px"
    page.set_viewport_size({"width": WIDTHS[0], "height": 900})


def sign_in(page: Page, node: LocalNode, key: str, path: str = "/console") -> None:
    page.goto(node.url + path)
    expect(page).to_have_url(re.compile(r"/console/login"))
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_be_visible()


def paused(node: LocalNode) -> bool:
    with node.svc.store.transaction(write=False) as session:
        state = session.get(NetworkState, 1)
        return bool(state and state.paused)


def operator(node: LocalNode) -> BankClient:
    return BankClient(node.url, DEVNET_OPERATOR_API_KEY)


def decide(page: Page, node: LocalNode, action: str, uetr: str, reason: str) -> None:
    page.goto(f"{node.url}/console/reviews")
    row = page.get_by_role("row").filter(has=page.locator(f'a[title="{uetr}"]'))
    row.get_by_role("link", name=action.capitalize()).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Confirm: {action}")
    page.get_by_label("Reason").fill(reason)
    page.get_by_role("button", name=f"Confirm {action}").click()
    expect(page).to_have_url(re.compile(f"/console/transfers/{uetr}"))


def wait_state(page: Page, node: LocalNode, uetr: str, state: str, timeout_s: float = 60) -> None:
    """The transfer's page, read again until it shows ``state`` (pages other than the overview do not poll)."""
    bank = node.client("FATLUS33")
    bank.wait(uetr, state, timeout_s=timeout_s, poll_s=0.2)
    page.goto(f"{node.url}/console/transfers/{uetr}")
    expect(page.locator("main > p .state").first).to_have_text(state)


def test_an_operator_follows_a_transfer_decides_reviews_and_freezes_a_bank(
    node_factory: NodeFactory, browser: Browser, artifacts: Path
) -> None:
    node = node_factory(confirmations=2)
    operator(node).request("POST", "/v1/admin/risk/rules", {"text": RULES}, idempotency_key="rules")
    page = browser.new_page(viewport={"width": WIDTHS[0], "height": 900})
    sign_in(page, node, DEVNET_OPERATOR_API_KEY)
    expect(page.get_by_role("heading", level=1)).to_have_text("Overview")

    # A transfer sent by the API appears and reaches FINAL on the overview, which is never reloaded.
    page.evaluate("() => { window.notReloaded = true; }")
    us = node.client("FATLUS33")
    sent = us.send("RHNLDEFF", "USD", "750.00", "EUR")
    expect(page.locator(f'td[data-uetr="{sent["id"]}"] .state')).to_have_text("FINAL", timeout=60_000)
    assert page.evaluate("() => window.notReloaded === true"), "the page was reloaded"
    check_page(page, artifacts, "overview-first")

    # Its page shows the lifecycle and the settlement's transaction, the one the chain holds.
    page.get_by_role("link", name=sent["id"][:8] + "…").first.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(sent["id"])
    final = us.transfer(sent["id"])
    settlement = final["history"][-1]["chain"]
    expect(page.locator(f'.hash[title="{settlement["tx_hash"]}"]').first).to_be_visible()
    expect(page.get_by_text("750.00 USD").first).to_be_visible()
    expect(page.locator("ul.iso summary")).to_have_count(4)  # a pacs.002 per state, ACSC only at FINAL
    expect(page.locator("ul.iso summary").last).to_contain_text("ACSC")
    check_page(page, artifacts, "transfer")
    # ... and its block, in the console's own explorer: the transaction, sent to the vault, succeeded.
    page.get_by_role("link", name=f"block {settlement['block_number']}").first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Block {settlement['block_number']}")
    expect(page.locator(f'tr[id="tx-{settlement["tx_hash"]}"]')).to_contain_text("the vault")
    expect(page.locator(f'tr[id="tx-{settlement["tx_hash"]}"]')).to_contain_text("succeeded")
    check_page(page, artifacts, "block")

    # Two transfers held for review: one approved (it settles), one rejected (refunded from its escrow).
    held = [us.send("RHNLDEFF", "USD", amount, "EUR", deadline_s=3600) for amount in ("20000.00", "30000.00")]
    for t in held:
        node.wait_for(lambda t=t: us.transfer(t["id"])["status"] == "ESCROWED", 30, "escrowed and held")
    page.goto(f"{node.url}/console/reviews")
    check_page(page, artifacts, "reviews")
    decide(page, node, "approve", held[0]["id"], "known customer")
    decide(page, node, "reject", held[1]["id"], "beneficiary not verified")
    wait_state(page, node, held[0]["id"], "FINAL")
    wait_state(page, node, held[1]["id"], "REFUNDED")
    log = httpx.get(f"{node.url}/v1/audit/log", headers={"Authorization": f"Bearer {DEVNET_OPERATOR_API_KEY}"})
    decisions = [e for e in map(json.loads, log.text.splitlines()) if e["action"].startswith("review.")]
    assert [(e["action"], e["actor"], e["data"]["via"]) for e in decisions] == [
        ("review.approved", "operator", "console"),
        ("review.rejected", "operator", "console"),
    ]

    # Freezing a bank from the liquidity page: its next transfer is refused.
    page.goto(f"{node.url}/console/liquidity")
    expect(page.get_by_role("cell", name=re.compile("USD")).first).to_be_visible()
    check_page(page, artifacts, "liquidity")
    page.get_by_role("link", name="Freeze FATLUS33").click()
    page.get_by_label("Reason").fill("suspected compromise")
    page.get_by_role("button", name="Confirm freeze").click()
    expect(page.get_by_role("link", name="Unfreeze FATLUS33")).to_be_visible()
    with pytest.raises(NodeError) as refused:
        us.send("RHNLDEFF", "USD", "10.00", "EUR")
    assert (refused.value.status, refused.value.code) == (403, "bank_frozen")

    for name in ("chain", "audit", "transfers", ""):
        page.goto(f"{node.url}/console/{name}".rstrip("/"))
        check_page(page, artifacts, name or "overview")
    page.goto(f"{node.url}/console/audit")
    page.get_by_role("button", name="Verify the hash chain").click()
    expect(page.locator("#verdict")).to_contain_text("intact")


def test_the_auditor_reads_and_cannot_act_and_forms_need_their_csrf_token(
    node_factory: NodeFactory, browser: Browser, artifacts: Path
) -> None:
    node = node_factory(worker=False)
    context = browser.new_context(viewport={"width": WIDTHS[0], "height": 900})
    page = context.new_page()

    # A bank's API key opens nothing here.
    page.goto(node.url + "/console")
    page.get_by_label("API key").fill(node.api_keys["FATLUS33"])
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("not the operator's or the auditor's")
    assert not context.cookies()

    sign_in(page, node, DEVNET_AUDITOR_API_KEY)
    cookie = next(c for c in context.cookies() if c["name"] == "corridor_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    for path in ("", "/reviews", "/liquidity", "/audit"):
        page.goto(f"{node.url}/console{path}")
        assert (
            page.get_by_role("link", name=re.compile("^(Approve|Reject|Freeze|Pause|Run a reconciliation)")).count()
            == 0
        )
        content = page.content()
        assert DEVNET_OPERATOR_API_KEY not in content and DEVNET_AUDITOR_API_KEY not in content
    check_page(page, artifacts, "auditor-audit")

    # The auditor's session posts the form anyway, with its own valid token: 403, and nothing changes.
    csrf = page.locator('form.signout input[name="csrf"]').get_attribute("value")
    answer = page.request.post(f"{node.url}/console/act/pause", form={"csrf": csrf or "", "reason": "x"})
    assert answer.status == 403
    assert not paused(node)

    # The operator's session without the CSRF token, or with another session's: 403, nothing changes.
    sign_in_page = context.new_page()
    context.clear_cookies()
    sign_in(sign_in_page, node, DEVNET_OPERATOR_API_KEY)
    for form in ({"reason": "no token"}, {"csrf": csrf or "", "reason": "the auditor's token"}):
        answer = sign_in_page.request.post(f"{node.url}/console/act/pause", form=form)
        assert answer.status == 403, form
    assert not paused(node)

    # Every page carries the policy: scripts and styles from the node only, no inline script.
    response = httpx.get(f"{node.url}/console/login")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert httpx.get(f"{node.url}/console/transfers", follow_redirects=False).status_code == 303
