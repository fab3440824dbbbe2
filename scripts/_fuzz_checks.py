"""Corridor's own check for schemathesis, loaded with ``SCHEMATHESIS_HOOKS`` (see scripts/fuzz_api.py).

Schema-valid requests may be refused for what no schema can say (a signature that does not
verify, an unknown quote, a paused network): ``scripts/schemathesis.toml`` lets the built-in
positive-data check accept those 409s and 422s. This check takes back what that lets through:
a schema-valid request must never be refused as malformed, which would mean that the API
checks something its OpenAPI document does not publish.
"""

from __future__ import annotations

from typing import Any

import schemathesis

MALFORMED = frozenset({"invalid_request", "malformed_json", "too_deep", "duplicate_key", "invalid_number"})


@schemathesis.check
def schema_valid_requests_are_not_malformed(ctx: Any, response: Any, case: Any) -> bool | None:
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code not in (400, 422):
        return None
    try:
        code = response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None  # the response-schema check reports a body that is not the error shape
    if code in MALFORMED:
        raise AssertionError(f"a request the OpenAPI document allows was refused as {code}: {response.text[:500]}")
    return None
