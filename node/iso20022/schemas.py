"""The ISO 20022 schemas Corridor reads and writes, and the one way a document is checked against them.

The XSDs are vendored in ``xsd/`` (their source and hashes in ``xsd/SOURCES.md``). A document
from a bank is untrusted: it is parsed with entities, DTDs and external references forbidden
(``defuse="always"``, ``allow="none"``), so neither an entity expansion bomb nor an external
entity can reach the parser, and it is validated in full before anything reads a field of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from xml.etree.ElementTree import Element

import xmlschema
from xmlschema.exceptions import XMLResourceError, XMLResourceForbidden

from node.errors import Refusal, Refused

XSD_DIR = Path(__file__).resolve().parent / "xsd"
NAMESPACE_PREFIX = "urn:iso:std:iso:20022:tech:xsd:"
PACS008_VERSIONS = tuple(f"pacs.008.001.{v:02d}" for v in range(8, 14))
"""The pacs.008 versions taken in: .08 (CBPR+) and the later ones, whose fields used here are the same."""
PACS002 = "pacs.002.001.12"
PACS004 = "pacs.004.001.11"
CAMT053 = "camt.053.001.08"
CAMT054 = "camt.054.001.08"
ERRORS_SHOWN_MAX = 5


@cache
def schema(message: str) -> xmlschema.XMLSchema:
    """The schema of ``message`` (such as ``pacs.008.001.08``), loaded once per process."""
    path = XSD_DIR / f"{message}.xsd"
    if not path.is_file():
        raise KeyError(message)
    return xmlschema.XMLSchema(str(path))


@dataclass(frozen=True, slots=True)
class Document:
    """A document valid against its message's schema: which message, and its root element."""

    message: str
    root: Element


def read(xml: bytes, accepted: tuple[str, ...]) -> Document:
    """Parse ``xml`` safely and validate it against the schema its namespace names, which must be
    one of ``accepted``; a refusal names the element and the reason of each problem found."""
    try:
        resource = xmlschema.XMLResource(xml, defuse="always", allow="none")
    except XMLResourceForbidden as exc:
        raise Refused(
            Refusal.ISO_INVALID, f"the document uses what this node does not read: {exc}", {"problems": []}
        ) from None
    except (XMLResourceError, ValueError, RecursionError) as exc:
        raise Refused(Refusal.ISO_INVALID, f"the body is not well-formed XML: {exc}", {"problems": []}) from None
    namespace = resource.namespace or ""
    message = namespace.removeprefix(NAMESPACE_PREFIX)
    if not namespace.startswith(NAMESPACE_PREFIX) or message not in accepted:
        raise Refused(
            Refusal.ISO_UNSUPPORTED,
            f"this route takes a Document of {', '.join(accepted)}; the document's namespace is {namespace!r}",
            {"namespace": namespace, "accepted": list(accepted)},
        )
    try:
        problems = [
            {"path": error.path or "/", "reason": error.reason or str(error)}
            for _, error in zip(range(ERRORS_SHOWN_MAX), schema(message).iter_errors(resource), strict=False)
        ]
    except RecursionError:
        problems = [{"path": "/", "reason": "elements nested deeper than this node validates"}]
    if problems:
        first = problems[0]
        raise Refused(
            Refusal.ISO_INVALID,
            f"the document is not valid {message}: {first['path']}: {first['reason']}",
            {"message": message, "problems": problems},
        )
    root = resource.root
    assert isinstance(root, Element)
    return Document(message, root)


def check(xml: bytes | str, message: str) -> list[str]:
    """The schema's complaints about a document Corridor wrote (empty when it is valid): for tests
    and for :func:`node.iso20022.pacs002.report`'s own assertion."""
    return [f"{e.path}: {e.reason}" for e in schema(message).iter_errors(xml)]
