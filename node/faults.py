"""Named failpoints for crash tests: ``CORRIDOR_NODE_FAILPOINTS=after_send`` kills the process
(SIGKILL, no clean-up) the first time the pipeline passes that point.

A failpoint costs one set lookup when unset. They exist so that tests can prove the node's
crash safety at exact places (after accepting a transfer, after broadcasting a transaction,
before the watcher commits what it read), as TiKV's ``fail-rs`` and FoundationDB's
simulation do; they are never set in production.
"""

from __future__ import annotations

import os
import signal

POINTS = frozenset({"after_accept", "after_send", "before_watcher_commit"})
_armed = frozenset(p.strip() for p in os.environ.get("CORRIDOR_NODE_FAILPOINTS", "").split(",") if p.strip())
unknown = _armed - POINTS
if unknown:
    raise RuntimeError(f"unknown failpoints in CORRIDOR_NODE_FAILPOINTS: {', '.join(sorted(unknown))}")


def failpoint(name: str) -> None:
    """Die here, at once and uncleanly, if ``name`` is armed."""
    assert name in POINTS, name
    if name in _armed:
        os.kill(os.getpid(), signal.SIGKILL)
