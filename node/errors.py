"""Why the node refuses a request: one exception, :class:`Refused`, carrying a :class:`Refusal`
code and the figures that explain it.

The node's domain (intake, idempotency, the directory, pagination, the operator's actions)
raises these; it knows nothing of HTTP. :mod:`node.api.errors` is the one place that maps a
code to its HTTP status and its documentation.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from settlement.errors import CorridorError


class Refusal(StrEnum):
    """Every code the node refuses a request with (values as the API sends them)."""

    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    BAD_CONTENT_LENGTH = "bad_content_length"
    BODY_TOO_LARGE = "body_too_large"
    BODY_TIMEOUT = "body_timeout"
    MALFORMED_JSON = "malformed_json"
    TOO_DEEP = "too_deep"
    DUPLICATE_KEY = "duplicate_key"
    INVALID_NUMBER = "invalid_number"
    INVALID_REQUEST = "invalid_request"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    NETWORK_PAUSED = "network_paused"
    BANK_FROZEN = "bank_frozen"
    DEBTOR_MISMATCH = "debtor_mismatch"
    UNKNOWN_CURRENCY = "unknown_currency"
    SAME_CURRENCY = "same_currency"
    CURRENCY_NOT_HELD = "currency_not_held"
    UNKNOWN_BANK = "unknown_bank"
    CREDITOR_FROZEN = "creditor_frozen"
    CURRENCY_NOT_RECEIVED = "currency_not_received"
    DEADLINE_TOO_SOON = "deadline_too_soon"
    DEADLINE_TOO_FAR = "deadline_too_far"
    MIN_BUY_UNREACHABLE = "min_buy_unreachable"
    BAD_SIGNATURE = "bad_signature"
    DETAILS_MISMATCH = "details_mismatch"
    INVALID_DETAILS = "invalid_details"
    UNKNOWN_QUOTE = "unknown_quote"
    QUOTE_EXPIRED = "quote_expired"
    QUOTE_MISMATCH = "quote_mismatch"
    DUPLICATE_UETR = "duplicate_uetr"
    NONCE_USED = "nonce_used"
    NOT_CANCELLABLE = "not_cancellable"
    BAD_CURSOR = "bad_cursor"
    RATE_UNAVAILABLE = "rate_unavailable"
    INVALID_FX_REQUEST = "invalid_fx_request"
    CHAIN_UNAVAILABLE = "chain_unavailable"
    CHAIN_UNREACHABLE = "chain_unreachable"
    INVALID_BIC = "invalid_bic"
    BIC_COUNTRY_MISMATCH = "bic_country_mismatch"
    BANK_EXISTS = "bank_exists"
    INVALID_AMOUNT = "invalid_amount"
    INVALID_RULES = "invalid_rules"
    NOT_IN_REVIEW = "not_in_review"
    QUEUE_FULL = "queue_full"
    RATE_LIMITED = "rate_limited"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    ISO_INVALID = "iso_invalid"
    ISO_UNSUPPORTED = "iso_unsupported"
    ISO_UNMAPPABLE = "iso_unmappable"
    INVALID_IBAN = "invalid_iban"
    INVALID_COUNTRY = "invalid_country"
    ISO_DOCUMENT_MISMATCH = "iso_document_mismatch"
    CALLBACK_URL_FORBIDDEN = "callback_url_forbidden"
    REDELIVERY_RANGE = "redelivery_range"


class Refused(CorridorError):
    """A request the node will not carry out; nothing it asked for was done."""

    def __init__(self, code: Refusal, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}
