"""Writing the ISO 20022 documents Corridor sends: elements, amounts, times and message ids, and
the check that what is sent is valid against its schema."""

from __future__ import annotations

import datetime as dt
import hashlib
from xml.etree.ElementTree import Element, SubElement, tostring

from node.iso20022.schemas import NAMESPACE_PREFIX, check
from settlement.money import currency


def document(message: str) -> Element:
    return Element("Document", {"xmlns": NAMESPACE_PREFIX + message})


def text(parent: Element, tag: str, value: str, **attributes: str) -> Element:
    element = SubElement(parent, tag, attributes)
    element.text = value
    return element


def path(parent: Element, tags: str) -> Element:
    """Nested elements ``a/b/c`` under ``parent``; the innermost is returned."""
    for tag in tags.split("/"):
        parent = SubElement(parent, tag)
    return parent


def amount(parent: Element, tag: str, minor: int, code: str) -> Element:
    """An amount in major units with its currency (``<Amt Ccy="USD">2500.00</Amt>``)."""
    exponent = currency(code).exponent
    whole, fraction = divmod(abs(minor), 10**exponent)
    value = f"{whole}.{fraction:0{exponent}d}" if exponent else str(whole)
    return text(parent, tag, value, Ccy=code)


def timestamp(at: dt.datetime) -> str:
    """ISODateTime in UTC with milliseconds and a Z (the year in four digits, as the schema wants)."""
    return at.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def message_id(*parts: str) -> str:
    """A deterministic ``MsgId`` (Max35Text) for what ``parts`` identify: the same message each time."""
    return "CRD" + hashlib.sha256(":".join(parts).encode()).hexdigest()[:32]


def finish(doc: Element, message: str) -> bytes:
    """The document's bytes, valid against ``message``'s schema (asserted: a document the schema
    refuses is a bug here, not something to send a bank)."""
    xml = b'<?xml version="1.0" encoding="UTF-8"?>\n' + bytes(tostring(doc, encoding="utf-8", xml_declaration=False))
    problems = check(xml, message)
    assert not problems, problems
    return xml
