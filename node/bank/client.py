"""A bank's Python client of the Corridor node.

    client = BankClient("http://127.0.0.1:8000", api_key, private_key)
    t = client.send(to="RHNLDEFF", sell_currency="USD", sell_amount="250000.00", buy_currency="EUR")
    final = client.wait(t["id"])            # FINAL, with the settlement's transaction hash

The client builds the EIP-712 instruction and signs it with the bank's key locally (the
key never leaves the process); the UETR is chosen here and is also the ``Idempotency-Key``,
so a send retried after a lost answer never makes a second transfer. Errors come back as
:class:`NodeError` with the API's ``code``, ``message`` and ``details``.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from decimal import Decimal
from typing import Any

import httpx
from eth_account import Account
from eth_keys.datatypes import PrivateKey
from eth_utils.crypto import keccak

from node.iso20022 import pacs008
from settlement import money
from settlement.eip712 import Domain, Instruction, sign, uuid_to_id
from settlement.errors import CorridorError

TERMINAL = ("FINAL", "REJECTED", "REFUNDED", "FAILED")


class NodeError(CorridorError):
    """The node answered with an error (4xx: the request's fault; 5xx: the node's)."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message, self.details = status, code, message, details


class NodeUnreachable(CorridorError, ConnectionError):
    """No answer from the node (refused, reset, cut off or too slow), after the retries allowed."""


_RETRIED = (httpx.NetworkError, httpx.ConnectTimeout, httpx.RemoteProtocolError)
"""The connection failed (the node may or may not have acted): retried when that is safe (a GET, or a
POST under its Idempotency-Key). A read timeout is not retried: the node is there, but slow."""


class BankClient:
    def __init__(
        self,
        url: str,
        api_key: str,
        private_key: str | None = None,
        *,
        vault: str | None = None,
        timeout_s: float = 10.0,
        retries_max: int = 3,
    ) -> None:
        """``private_key`` signs instructions (not needed to read); ``vault``: the vault address you
        expect (the client refuses a node that names another)."""
        self.url = url.rstrip("/")
        self._key = PrivateKey(bytes.fromhex(private_key.removeprefix("0x"))) if private_key else None
        """Kept as a key object, so that the public key is derived once, not for every signature."""
        self.address: str = Account.from_key(private_key).address if private_key else ""
        self.timeout_s = timeout_s
        self.retries_max = retries_max
        self._http = httpx.Client(headers={"Authorization": f"Bearer {api_key}"}, timeout=timeout_s)
        self._expected_vault = vault
        self._domain: Domain | None = None
        self._directory: dict[str, dict[str, Any]] | None = None
        self._nonce_lock = threading.Lock()
        self._next_nonce: int | None = None

    # ------------------------------------------------------------------ transport

    def request(self, method: str, path: str, body: Any = None, idempotency_key: str | None = None) -> Any:
        """One API call with a JSON body (or none), its JSON answer; retried on connection errors and
        5xx with the same Idempotency-Key."""
        data = None if body is None else json.dumps(body).encode()
        return self.send_raw(method, path, data, "application/json", idempotency_key=idempotency_key).json()

    def send_raw(
        self,
        method: str,
        path: str,
        content: bytes | None = None,
        content_type: str = "application/json",
        *,
        headers: dict[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> httpx.Response:
        """One API call with any body (XML for the ISO 20022 routes), retried as :meth:`request`;
        a 4xx raises :class:`NodeError`."""
        sent = dict(headers or {}) | ({"Idempotency-Key": idempotency_key} if idempotency_key else {})
        if content is not None:
            sent["Content-Type"] = content_type
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._http.request(method, self.url + path, content=content, headers=sent)
            except httpx.TransportError as exc:
                safe = method == "GET" or bool(idempotency_key)
                if not (isinstance(exc, _RETRIED) and safe and attempt <= self.retries_max):
                    raise NodeUnreachable(f"{method} {path}: no answer from {self.url} ({type(exc).__name__})") from exc
                time.sleep(0.2 * 2**attempt)
                continue
            if response.status_code >= 500 and attempt <= self.retries_max and (method == "GET" or idempotency_key):
                time.sleep(0.2 * 2**attempt)
                continue
            if response.status_code >= 400:
                try:
                    err = response.json()["error"]
                except (ValueError, KeyError, TypeError):
                    err = {"code": "http_error", "message": response.text[:300]}
                raise NodeError(response.status_code, err.get("code", ""), err.get("message", ""), err.get("details"))
            return response

    # ------------------------------------------------------------------ ISO 20022

    def iso_send(self, document: bytes, *, map_locally: bool = True) -> dict[str, Any]:
        """Submit a pacs.008 signed with the bank's key. The instruction is mapped here, by the node's
        own mapping (:mod:`node.iso20022.pacs008`), and signed: one request. With
        ``map_locally=False`` the node is asked for the typed data first, as a client with nothing but
        eth-account does. Safe to repeat: the same document is the same transfer."""
        if self._key is None:
            raise CorridorError("this client has no private key: it cannot sign")
        xml = "application/xml"
        if map_locally:
            doc = pacs008.parse(document)
            instruction = doc.instruction(self.address, self._creditor_by_bic(doc.creditor_bic))
            compact = sign(self.domain(), instruction, self._key)
            signature = "0x" + compact.r.hex() + compact.vs.hex()
        else:
            typed = self.send_raw("POST", "/v1/iso20022/pacs.008/instruction", document, xml).json()["typed_data"]
            signature = "0x" + bytes(Account.sign_typed_data(self._key.to_bytes(), full_message=typed).signature).hex()
        key = "pacs008-" + hashlib.sha256(document).hexdigest()[:32]
        headers = {"Corridor-Signature": signature}
        response = self.send_raw("POST", "/v1/iso20022/pacs.008", document, xml, headers=headers, idempotency_key=key)
        result: dict[str, Any] = response.json()
        return result

    def iso_status(self, uetr: str) -> bytes:
        """The transfer's latest pacs.002."""
        return self.send_raw("GET", f"/v1/iso20022/pacs.002/{uetr}").content

    def iso_return(self, uetr: str) -> bytes:
        """The pacs.004 of a transfer refunded after its escrow."""
        return self.send_raw("GET", f"/v1/iso20022/pacs.004/{uetr}").content

    def iso_notification(self, uetr: str) -> bytes:
        """The camt.054 of a FINAL transfer as booked on this bank's account (debit or credit)."""
        return self.send_raw("GET", f"/v1/iso20022/camt.054/{uetr}").content

    def iso_statement(self, currency: str, day: str | None = None) -> bytes:
        """The camt.053 of this bank's account in ``currency`` for ``day`` (YYYY-MM-DD, UTC; default today)."""
        query = f"?currency={currency}" + (f"&date={day}" if day else "")
        return self.send_raw("GET", f"/v1/iso20022/camt.053{query}").content

    # ------------------------------------------------------------------ reading

    def network(self) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", "/v1/network")
        return result

    def domain(self) -> Domain:
        if self._domain is None:
            net = self.network()
            if self._expected_vault and net["vault"].lower() != self._expected_vault.lower():
                raise CorridorError(f"the node names vault {net['vault']}, not the expected {self._expected_vault}")
            self._domain = Domain(int(net["chain_id"]), net["vault"])
        return self._domain

    def banks(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.request("GET", "/v1/banks")
        return result

    def balances(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.request("GET", "/v1/balances")
        return result

    def transfer(self, uetr: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", f"/v1/transfers/{uetr}")
        return result

    def quote(
        self, sell_currency: str, buy_currency: str, sell_amount: str | None = None, buy_amount: str | None = None
    ) -> dict[str, Any]:
        body = {"sell_currency": sell_currency, "buy_currency": buy_currency}
        if sell_amount is not None:
            body["sell_amount"] = sell_amount
        elif buy_amount is not None:
            body["buy_amount"] = buy_amount
        result: dict[str, Any] = self.request("POST", "/v1/quotes", body, idempotency_key=str(uuid.uuid4()))
        return result

    # ------------------------------------------------------------------ sending

    def build(
        self,
        to: str,
        sell_currency: str,
        sell_amount: str | int | Decimal,
        buy_currency: str,
        *,
        min_buy_amount: str | int | Decimal = 0,
        deadline_s: int = 3600,
        details: dict[str, Any] | bytes | None = None,
        uetr: str | None = None,
        nonce: int | None = None,
    ) -> tuple[Instruction, dict[str, Any]]:
        """The instruction and the API body for it, signed. ``to`` is a BIC or an address.

        Amounts as ``str``/``Decimal`` are major units ("250000.00"); as ``int`` minor units.
        ``details`` (``{"beneficiary": {"name", "account", "country"}, "ordering_customer": {...},
        "remittance": ...}``): only their keccak-256 is signed and goes on chain; the text itself is
        sent to the node, which checks it against the hash and screens the names.
        """
        if self._key is None:
            raise CorridorError("this client has no signing key: give private_key to send")
        creditor = self._creditor(to)
        uetr = uetr or str(uuid.uuid4())
        raw_details = details if isinstance(details, bytes) else json.dumps(details or {}, sort_keys=True).encode()
        instruction = Instruction(
            id=uuid_to_id(uetr),
            nonce=self._take_nonce() if nonce is None else nonce,
            debtor=self.address,
            creditor=creditor,
            sell_currency=sell_currency.encode(),
            sell_amount=_minor(sell_amount, sell_currency),
            buy_currency=buy_currency.encode(),
            min_buy_amount=_minor(min_buy_amount, buy_currency) if min_buy_amount else 0,
            deadline=int(time.time()) + deadline_s,
            details_hash=keccak(raw_details),
        )
        signature = sign(self.domain(), instruction, self._key)
        body = {
            "instruction": {
                "id": uetr,
                "nonce": instruction.nonce,
                "debtor": instruction.debtor,
                "creditor": instruction.creditor,
                "sell_currency": sell_currency,
                "sell_amount": instruction.sell_amount,
                "buy_currency": buy_currency,
                "min_buy_amount": instruction.min_buy_amount,
                "deadline": instruction.deadline,
                "details_hash": "0x" + instruction.details_hash.hex(),
            },
            "signature": {"r": "0x" + signature.r.hex(), "vs": "0x" + signature.vs.hex()},
        }
        if details is not None:
            body["details"] = raw_details.decode()  # the exact text hashed: the node checks and screens it
        return instruction, body

    def submit(self, body: dict[str, Any], quote_id: str | None = None) -> dict[str, Any]:
        if quote_id:
            body = {**body, "quote_id": quote_id}
        result: dict[str, Any] = self.request(
            "POST", "/v1/transfers", body, idempotency_key=str(body["instruction"]["id"])
        )
        return result

    def submit_many(self, bodies: list[dict[str, Any]], idempotency_key: str | None = None) -> dict[str, Any]:
        """Submit up to 200 built instructions in one request; one result per item, in order."""
        key = idempotency_key or str(uuid.uuid5(uuid.NAMESPACE_OID, ",".join(b["instruction"]["id"] for b in bodies)))
        result: dict[str, Any] = self.request("POST", "/v1/transfers/batch", {"transfers": bodies}, idempotency_key=key)
        return result

    def send(
        self,
        to: str,
        sell_currency: str,
        sell_amount: str | int | Decimal,
        buy_currency: str,
        *,
        quote_id: str | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        """Build, sign and submit; returns the transfer as accepted (RECEIVED)."""
        _, body = self.build(to, sell_currency, sell_amount, buy_currency, **options)
        return self.submit(body, quote_id)

    def wait(self, uetr: str, status: str = "FINAL", timeout_s: float = 120.0, poll_s: float = 0.5) -> dict[str, Any]:
        """Poll until the transfer reaches ``status``; a different terminal state is a :class:`NodeError`."""
        deadline = time.monotonic() + timeout_s
        while True:
            t = self.transfer(uetr)
            if t["status"] == status:
                return t
            if t["status"] in TERMINAL:
                raise NodeError(
                    200,
                    t["status_code"] or t["status"].lower(),
                    f"transfer {uetr} ended {t['status']}: {t['status_reason']}",
                    t,
                )
            if time.monotonic() > deadline:
                raise TimeoutError(f"transfer {uetr} is {t['status']} after {timeout_s} s")
            time.sleep(poll_s)

    # ------------------------------------------------------------------ helpers

    def _creditor(self, to: str) -> str:
        if to.startswith("0x") and len(to) == 42:
            return to
        if self._directory is None:
            self._directory = {b["bic"]: b for b in self.banks()}
        bank = self._directory.get(to.upper())
        if bank is None:
            raise CorridorError(f"no bank {to} in the directory (GET /v1/banks)")
        return str(bank["address"])

    def _creditor_by_bic(self, bic: str) -> str:
        if self._directory is None:
            self._directory = {b["bic"]: b for b in self.banks()}
        for known, bank in self._directory.items():
            if pacs008.same_bic(known, bic):
                return str(bank["address"])
        raise CorridorError(f"no bank {bic} in the directory (GET /v1/banks)")

    def _take_nonce(self) -> int:
        with self._nonce_lock:
            if self._next_nonce is None:
                self._next_nonce = int(self.request("GET", "/v1/me")["next_nonce"])
            nonce, self._next_nonce = self._next_nonce, self._next_nonce + 1
            return nonce


def _minor(amount: str | int | Decimal, code: str) -> int:
    if isinstance(amount, int):
        return amount
    return int(money.to_minor(str(amount), code))
