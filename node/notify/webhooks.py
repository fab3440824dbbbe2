"""Webhooks: every status change of a transfer, POSTed to the bank that registered a URL.

A delivery is written in the same database transaction as the status change it reports (an
outbox), so a change is never reported that did not happen, nor lost when the node dies
after it. The debtor bank hears of every change, from RECEIVED on; the creditor bank hears
when a payment to it is FINAL. A bank that registered for ``iso20022`` gets the change as ISO
20022 XML instead of JSON (see :func:`node.iso20022.outbound.render`).

Deliveries are signed as the Standard Webhooks specification says (standardwebhooks.com; the
``standardwebhooks`` package verifies them), so a captured delivery cannot be replayed later:

    webhook-id: <uuid>               (the same on every retry of one delivery: drop a repeat)
    webhook-timestamp: <unix seconds of this attempt>
    webhook-signature: v1,<base64 HMAC-SHA256(key, "<webhook-id>.<webhook-timestamp>.<raw body>")>

where the key is the base64 after ``whsec_`` in the secret. A receiver refuses a timestamp more
than :data:`TOLERANCE_S` from its clock.

Reconciliation mismatches go the same way to the operator's webhook
(``CORRIDOR_NODE_OPERATOR_WEBHOOK_URL``, signed with ``CORRIDOR_NODE_OPERATOR_WEBHOOK_SECRET``);
those deliveries have no bank and wait in the outbox until the URL is set.

A delivery that does not get a 2xx within ``timeout_s`` is retried after 1, 2, 4 ... s
(capped at ``backoff_cap_s``) up to ``attempts_max`` times, then marked failed.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import logging
import secrets
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from node.iso20022 import outbound
from node.notify import destinations
from node.store.db import Store
from node.store.models import Bank, Webhook, WebhookDelivery
from settlement.lifecycle import TransferStatus

log = logging.getLogger("corridor.webhooks")

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
TOLERANCE_S = 300
FORMAT_JSON = "json"
FORMAT_ISO20022 = "iso20022"
FORMATS = (FORMAT_JSON, FORMAT_ISO20022)
"""How far a delivery's timestamp may be from the receiver's clock (the specification's five minutes)."""


def new_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and 24 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def _key(secret: str) -> bytes:
    """The HMAC key of a secret, decoded as the specification's libraries decode it."""
    return base64.b64decode(secret.removeprefix("whsec_") + "==")


def sign(secret: str, delivery_id: str, timestamp_s: int, body: bytes) -> str:
    """The ``webhook-signature`` header value of one attempt."""
    mac = hmac.new(_key(secret), f"{delivery_id}.{timestamp_s}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def verify(secret: str, headers: Mapping[str, str], body: bytes, now_s: float | None = None) -> bool:
    """For receivers: are ``headers`` a signature of ``body`` under ``secret``, made within
    :data:`TOLERANCE_S` of ``now_s``? (The ``standardwebhooks`` package does the same.)"""
    lower = {k.lower(): v for k, v in headers.items()}
    delivery_id, stamp, signatures = (lower.get(h, "") for h in (ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER))
    if not (delivery_id and stamp.isdigit() and signatures):
        return False
    now = dt.datetime.now(dt.UTC).timestamp() if now_s is None else now_s
    if abs(now - int(stamp)) > TOLERANCE_S:
        return False
    expected = sign(secret, delivery_id, int(stamp), body)
    return any(hmac.compare_digest(expected, given) for given in signatures.split(" "))


class Reported(Protocol):
    """What a delivery tells of a transfer: a stored :class:`Transfer`, or one being accepted."""

    @property
    def id(self) -> str: ...
    @property
    def bank_id(self) -> int: ...
    @property
    def creditor(self) -> str: ...
    @property
    def sell_currency(self) -> str: ...
    @property
    def sell_amount(self) -> int: ...
    @property
    def buy_currency(self) -> str: ...
    @property
    def buy_amount(self) -> int | None: ...
    @property
    def fee(self) -> int | None: ...


@dataclass(frozen=True, slots=True)
class Accepted:
    """A transfer accepted in this transaction, before its row is read back (see ``node.intake.accept``)."""

    id: str
    bank_id: int
    creditor: str
    sell_currency: str
    sell_amount: int
    buy_currency: str
    buy_amount: int | None = None
    fee: int | None = None

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> Accepted:
        """Of a ``transfers`` row about to be inserted."""
        return cls(
            row["id"], row["bank_id"], row["creditor"], row["sell_currency"], row["sell_amount"], row["buy_currency"]
        )


def deliveries(
    session: Session,
    transfer: Reported,
    status: TransferStatus,
    reason: str,
    code: str = "",
    chain: dict[str, Any] | None = None,
    *,
    now: dt.datetime,
) -> list[dict[str, Any]]:
    """The deliveries a status change owes (``webhook_deliveries`` rows), for the caller to
    insert in the transaction of the change.

    Who has a webhook, and which bank holds which address, are read once per transaction
    (``session.info``): the watcher moves hundreds of transfers in one.
    """
    hooks, banks = _directory(session)
    recipients = [(transfer.bank_id, "debtor", "transfer.status_changed")]
    if status is TransferStatus.FINAL:
        if hooks.get(transfer.bank_id) == FORMAT_ISO20022:
            # A bank speaking ISO 20022 is told of the debit too, by a camt.054 of its own.
            recipients.append((transfer.bank_id, "debtor", "transfer.booked"))
        creditor = banks.get(transfer.creditor)
        if creditor is not None and creditor != transfer.bank_id:
            recipients.append((creditor, "creditor", "transfer.status_changed"))
    rows = []
    for bank_id, role, kind in recipients:
        if bank_id not in hooks:
            continue
        delivery_id = str(uuid.uuid4())
        body = {
            "id": delivery_id,
            "type": kind,
            "created_at": now.isoformat(),
            "data": {
                "transfer_id": transfer.id,
                "role": role,
                "status": status.value,
                "status_code": code,
                "reason": reason,
                "sell_currency": transfer.sell_currency,
                "sell_amount": transfer.sell_amount,
                "buy_currency": transfer.buy_currency,
                "buy_amount": transfer.buy_amount,
                "fee": transfer.fee,
                "chain": chain,
            },
        }
        rows.append(
            {
                "id": delivery_id,
                "bank_id": bank_id,
                "transfer_id": transfer.id,
                "body": body,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "last_error": "",
                "created_at": now,
            }
        )
    return rows


def _directory(session: Session) -> tuple[dict[int, str], dict[str, int]]:
    """Which banks have a webhook (and its format), and which bank holds which address."""
    cached = session.info.get("webhooks.directory")
    if cached is None:
        hooks = {int(bank_id): str(form) for bank_id, form in session.execute(select(Webhook.bank_id, Webhook.format))}
        banks = {address: bank_id for bank_id, address in session.execute(select(Bank.id, Bank.address))}
        cached = session.info["webhooks.directory"] = (hooks, banks)
    return cached


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    attempts_max: int = 8
    backoff_base_s: float = 1.0
    backoff_cap_s: float = 300.0
    timeout_s: float = 5.0
    batch_max: int = 100
    workers: int = 4
    operator_url: str = ""
    """Where the operator's deliveries (``bank_id`` null: reconciliation mismatches) go; empty: kept pending."""
    operator_secret: str = ""
    allow_private: bool = False
    """Whether a callback URL may reach loopback, link-local and private addresses
    (see :mod:`node.notify.destinations`)."""


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One attempt to make: the delivery, what to send, where, and the secret that signs it."""

    delivery_id: str
    content: bytes
    content_type: str
    url: str
    secret: str


def _json(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


class Deliverer:
    """Sends due deliveries, a bounded number per tick, on a small thread pool."""

    def __init__(self, store: Store, settings: WebhookSettings | None = None) -> None:
        self.store = store
        self.settings = settings or WebhookSettings()
        self._http = httpx.Client(timeout=self.settings.timeout_s, follow_redirects=False)
        self._pool = ThreadPoolExecutor(self.settings.workers, thread_name_prefix="webhook")

    def tick(self) -> int:
        now = dt.datetime.now(dt.UTC)
        with self.store.transaction(write=False) as session:
            due = self._due(session, now)
        if not due:
            return 0
        outcomes = list(self._pool.map(lambda o: (o.delivery_id, self._post(o)), due))
        with self.store.transaction() as session:
            for delivery_id, error in outcomes:
                delivery = session.get(WebhookDelivery, delivery_id)
                if delivery is None:
                    continue
                delivery.attempts += 1
                if error is None:
                    delivery.status, delivery.delivered_at, delivery.last_error = "delivered", now, ""
                    continue
                delivery.last_error = error[:500]
                if delivery.attempts >= self.settings.attempts_max:
                    delivery.status = "failed"
                    log.warning("webhook %s failed after %s attempts: %s", delivery_id, delivery.attempts, error)
                else:
                    wait_s = min(
                        self.settings.backoff_cap_s, self.settings.backoff_base_s * 2 ** (delivery.attempts - 1)
                    )
                    delivery.next_attempt_at = now + dt.timedelta(seconds=wait_s)
        return len(outcomes)

    def _due(self, session: Session, now: dt.datetime) -> list[Outgoing]:
        """The deliveries due now, each rendered as its bank asked (JSON, or ISO 20022 XML)."""
        due: list[Outgoing] = []
        for delivery_id, body, url, secret, form in session.execute(
            select(WebhookDelivery.id, WebhookDelivery.body, Webhook.url, Webhook.secret, Webhook.format)
            .join(Webhook, Webhook.bank_id == WebhookDelivery.bank_id)
            .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now)
            .order_by(WebhookDelivery.created_at)
            .limit(self.settings.batch_max)
        ):
            xml = outbound.render(session, body) if form == FORMAT_ISO20022 else None
            if xml is None:
                due.append(Outgoing(delivery_id, _json(body), "application/json", url, secret))
            else:
                due.append(Outgoing(delivery_id, xml, outbound.XML, url, secret))
        if self.settings.operator_url:
            due += [
                Outgoing(
                    delivery_id,
                    _json(body),
                    "application/json",
                    self.settings.operator_url,
                    self.settings.operator_secret,
                )
                for delivery_id, body in session.execute(
                    select(WebhookDelivery.id, WebhookDelivery.body)
                    .where(
                        WebhookDelivery.bank_id.is_(None),
                        WebhookDelivery.status == "pending",
                        WebhookDelivery.next_attempt_at <= now,
                    )
                    .order_by(WebhookDelivery.created_at)
                    .limit(self.settings.batch_max)
                )
            ]
        return due

    def _post(self, out: Outgoing) -> str | None:
        if (why := destinations.problem(out.url, self.settings.allow_private)) is not None:
            return f"not sent: {why}"
        stamp = int(dt.datetime.now(dt.UTC).timestamp())
        headers = {
            "Content-Type": out.content_type,
            ID_HEADER: out.delivery_id,
            TIMESTAMP_HEADER: str(stamp),
            SIGNATURE_HEADER: sign(out.secret, out.delivery_id, stamp, out.content),
            "User-Agent": "corridor-node/1",
        }
        try:
            response = self._http.post(out.url, content=out.content, headers=headers)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            return f"{type(exc).__name__}: {exc}"
        if 200 <= response.status_code < 300:
            return None
        return f"HTTP {response.status_code}"

    def close(self) -> None:
        """Stop: queued posts are dropped (they stay pending in the store), the ones in flight finish
        (each bounded by ``timeout_s``)."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._http.close()
