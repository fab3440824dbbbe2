"""Webhooks: every status change of a transfer, POSTed to the bank that registered a URL.

A delivery is written in the same database transaction as the status change it reports (an
outbox), so a change is never reported that did not happen, nor lost when the node dies
after it. The debtor bank hears of every change, from RECEIVED on; the creditor bank hears
when a payment to it is FINAL. The body is signed with HMAC-SHA256 under the bank's webhook secret:

    Corridor-Signature: sha256=<hex of HMAC-SHA256(secret, raw body)>
    Corridor-Delivery: <uuid>        (the same on every retry of one delivery)

Reconciliation mismatches go the same way to the operator's webhook
(``CORRIDOR_NODE_OPERATOR_WEBHOOK_URL``, signed with ``CORRIDOR_NODE_OPERATOR_WEBHOOK_SECRET``);
those deliveries have no bank and wait in the outbox until the URL is set.

A delivery that does not get a 2xx within ``timeout_s`` is retried after 1, 2, 4 ... s
(capped at ``backoff_cap_s``) up to ``attempts_max`` times, then marked failed.
"""

from __future__ import annotations

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

from node.store.db import Store
from node.store.models import Bank, Webhook, WebhookDelivery
from settlement.lifecycle import TransferStatus

log = logging.getLogger("corridor.webhooks")

SIGNATURE_HEADER = "Corridor-Signature"
DELIVERY_HEADER = "Corridor-Delivery"


def new_secret() -> str:
    return "whsec_" + secrets.token_hex(24)


def signature(secret: str, body: bytes) -> str:
    """The ``Corridor-Signature`` header value for ``body``; receivers compare it in constant time."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str) -> bool:
    """For receivers: is ``header`` the signature of ``body`` under ``secret``?"""
    return hmac.compare_digest(signature(secret, body), header)


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
    bank_ids = [transfer.bank_id]
    if status is TransferStatus.FINAL:
        creditor = banks.get(transfer.creditor)
        if creditor is not None and creditor != transfer.bank_id:
            bank_ids.append(creditor)
    rows = []
    for bank_id in bank_ids:
        if bank_id not in hooks:
            continue
        delivery_id = str(uuid.uuid4())
        body = {
            "id": delivery_id,
            "type": "transfer.status_changed",
            "created_at": now.isoformat(),
            "data": {
                "transfer_id": transfer.id,
                "role": "debtor" if bank_id == transfer.bank_id else "creditor",
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


def _directory(session: Session) -> tuple[set[int], dict[str, int]]:
    cached = session.info.get("webhooks.directory")
    if cached is None:
        hooks = set(session.scalars(select(Webhook.bank_id)))
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
            due: list[tuple[str, dict[str, Any], str, str]] = [
                (r[0], r[1], r[2], r[3])
                for r in session.execute(
                    select(WebhookDelivery.id, WebhookDelivery.body, Webhook.url, Webhook.secret)
                    .join(Webhook, Webhook.bank_id == WebhookDelivery.bank_id)
                    .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now)
                    .order_by(WebhookDelivery.created_at)
                    .limit(self.settings.batch_max)
                )
            ]
            if self.settings.operator_url:
                due += [
                    (delivery_id, body, self.settings.operator_url, self.settings.operator_secret)
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
        if not due:
            return 0
        outcomes = list(self._pool.map(lambda row: (row[0], self._post(row[1], row[2], row[3])), due))
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

    def _post(self, body: dict[str, Any], url: str, secret: str) -> str | None:
        raw = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature(secret, raw),
            DELIVERY_HEADER: str(body["id"]),
            "User-Agent": "corridor-node/1",
        }
        try:
            response = self._http.post(url, content=raw, headers=headers)
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
