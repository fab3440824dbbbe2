"""The tamper-evident audit log: every operator action and every transfer state change, each
entry chained to the one before by hash.

An entry's hash is SHA-256 over the canonical JSON (sorted keys, no spaces) of its sequence
number, time, actor, action, subject, data and the previous entry's hash; the first entry's
previous hash is 64 zeros. Editing an entry changes its hash; deleting, inserting or
reordering entries breaks the sequence or the link. :func:`verify` walks the log in sequence
order and names the first entry that does not hold. (Cutting entries off the end leaves a
shorter log that verifies: compare the head hash with one kept elsewhere, such as an earlier
export, to notice that.)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

GENESIS_HASH = "0" * 64


class EntryLike(Protocol):
    @property
    def seq(self) -> int: ...
    @property
    def at(self) -> str: ...
    @property
    def actor(self) -> str: ...
    @property
    def action(self) -> str: ...
    @property
    def subject(self) -> str: ...
    @property
    def data(self) -> Mapping[str, Any]: ...
    @property
    def prev_hash(self) -> str: ...
    @property
    def hash(self) -> str: ...


def entry_hash(seq: int, at: str, actor: str, action: str, subject: str, data: Mapping[str, Any], prev: str) -> str:
    body = {"seq": seq, "at": at, "actor": actor, "action": action, "subject": subject, "data": data, "prev": prev}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def as_dict(e: EntryLike) -> dict[str, Any]:
    """An entry as exported (one JSON object per line)."""
    return {
        "seq": e.seq,
        "at": e.at,
        "actor": e.actor,
        "action": e.action,
        "subject": e.subject,
        "data": dict(e.data),
        "prev_hash": e.prev_hash,
        "hash": e.hash,
    }


@dataclass(frozen=True, slots=True)
class ExportedEntry:
    """An entry read back from an export."""

    seq: int
    at: str
    actor: str
    action: str
    subject: str
    data: Mapping[str, Any]
    prev_hash: str
    hash: str

    @classmethod
    def of(cls, d: Mapping[str, Any]) -> ExportedEntry:
        return cls(
            int(d["seq"]),
            str(d["at"]),
            str(d["actor"]),
            str(d["action"]),
            str(d["subject"]),
            dict(d["data"]),
            str(d["prev_hash"]),
            str(d["hash"]),
        )


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    entries: int
    head_hash: str
    """The hash of the last entry that holds (the genesis hash for an empty log)."""
    bad_seq: int | None = None
    reason: str = ""


def verify(entries: Iterable[EntryLike]) -> Verdict:
    """Walk the log in the order given (sequence order) and stop at the first entry that does not hold."""
    expected_seq, prev, count = 1, GENESIS_HASH, 0
    for e in entries:
        if e.seq != expected_seq:
            what = "missing" if e.seq > expected_seq else "out of order or repeated"
            return Verdict(
                False, count, prev, e.seq, f"entry {e.seq} comes where entry {expected_seq} should: an entry is {what}"
            )
        if e.prev_hash != prev:
            return Verdict(
                False,
                count,
                prev,
                e.seq,
                f"entry {e.seq} does not link to entry {e.seq - 1} "
                "(its previous hash differs): an entry before it was removed, inserted or reordered",
            )
        recomputed = entry_hash(e.seq, e.at, e.actor, e.action, e.subject, e.data, e.prev_hash)
        if recomputed != e.hash:
            return Verdict(False, count, prev, e.seq, f"entry {e.seq}'s contents do not match its hash: it was edited")
        prev, expected_seq, count = e.hash, expected_seq + 1, count + 1
    return Verdict(True, count, prev)
