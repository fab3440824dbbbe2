"""The ISO 20022 schemas Corridor reads and writes, and the one way a document is checked against them.

The XSDs are vendored in ``xsd/`` (their source and hashes in ``xsd/SOURCES.md``) and validated
with lxml (libxml2's validator, in C: about 0.04 ms for a pacs.008, against 2 ms in pure Python).
A document from a bank is untrusted: parsed without network access, without loading a DTD or
resolving entities, within libxml2's default depth bound, and one that declares a DTD at all is
refused, so neither an entity expansion bomb nor an external entity reaches the parser's output.
It is validated in full before anything reads a field of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from lxml import etree

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
def schema(message: str) -> Any:
    """The schema of ``message`` (such as ``pacs.008.001.08``), loaded once per process."""
    path = XSD_DIR / f"{message}.xsd"
    if not path.is_file():
        raise KeyError(message)
    return etree.XMLSchema(etree.parse(str(path)))


def _parser() -> Any:
    return etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False, huge_tree=False
    )


@dataclass(frozen=True, slots=True)
class Document:
    """A document valid against its message's schema: which message, and its root element
    (ElementTree's ``find``/``findall``/``text``/``get`` read it)."""

    message: str
    root: Any


def read(xml: bytes, accepted: tuple[str, ...]) -> Document:
    """Parse ``xml`` safely and validate it against the schema its namespace names, which must be
    one of ``accepted``; a refusal names the element and the reason of each problem found."""
    try:
        root = etree.fromstring(xml, _parser())
    except (etree.XMLSyntaxError, ValueError) as exc:
        raise Refused(Refusal.ISO_INVALID, f"the body is not well-formed XML: {exc}", {"problems": []}) from None
    if root.getroottree().docinfo.internalDTD is not None:
        raise Refused(
            Refusal.ISO_INVALID, "the document declares a DTD: DTDs and entities are not read", {"problems": []}
        )
    namespace = etree.QName(root).namespace or ""
    message = namespace.removeprefix(NAMESPACE_PREFIX)
    if not namespace.startswith(NAMESPACE_PREFIX) or message not in accepted:
        raise Refused(
            Refusal.ISO_UNSUPPORTED,
            f"this route takes a Document of {', '.join(accepted)}; the document's namespace is {namespace!r}",
            {"namespace": namespace, "accepted": list(accepted)},
        )
    problems = _problems(schema(message), root)
    if problems:
        first = problems[0]
        raise Refused(
            Refusal.ISO_INVALID,
            f"the document is not valid {message}: {first['path']}: {first['reason']}",
            {"message": message, "problems": problems},
        )
    return Document(message, root)


def _problems(validator: Any, root: Any) -> list[dict[str, str]]:
    """Each of the schema's complaints (at most :data:`ERRORS_SHOWN_MAX`): the element's path by
    local names (``/Document/FIToFICstmrCdtTrf/GrpHdr/NbOfTxs``) and libxml2's reason."""
    if validator.validate(root):
        return []
    tree = root.getroottree()
    found = []
    for error in list(validator.error_log)[:ERRORS_SHOWN_MAX]:
        elements = tree.xpath(error.path) if error.path else []
        path = _named(elements[0]) if elements else "/"
        found.append({"path": path, "reason": error.message})
    return found


def _named(element: Any) -> str:
    names = [etree.QName(e).localname for e in (element, *element.iterancestors())]
    return "/" + "/".join(reversed(names))


def check(xml: bytes | str, message: str) -> list[str]:
    """The schema's complaints about a document Corridor wrote (empty when it is valid): for tests
    and the assertion before a message is sent."""
    raw = xml.encode() if isinstance(xml, str) else xml
    return [f"{p['path']}: {p['reason']}" for p in _problems(schema(message), etree.fromstring(raw, _parser()))]
