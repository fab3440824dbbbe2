"""Screening the parties a transfer names against the operator's sanctions list: BICs and
countries exactly, names by a fuzzy score (see :func:`name_score`)."""

from __future__ import annotations

import csv
import io
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from rapidfuzz import fuzz, process

from settlement.errors import RulesError
from settlement.identifiers import bic_problem


@dataclass(frozen=True, slots=True)
class Party:
    """Someone a transfer names: a bank, the ordering customer or the beneficiary."""

    role: str
    """debtor_bank, creditor_bank, ordering_customer or beneficiary."""
    name: str = ""
    bic: str = ""
    country: str = ""


def normalize_name(name: str) -> str:
    """Case, accents and punctuation taken out: ``"Petróv, Iván"`` → ``"petrov ivan"``."""
    decomposed = unicodedata.normalize("NFKD", name)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    return " ".join("".join(c if c.isalnum() else " " for c in plain).split())


def name_score(a: str, b: str, **_: object) -> float:
    """How alike two normalized names are, 0..100, whatever the order of their words.

    rapidfuzz's token-sort ratio (the words sorted, then an edit-distance ratio) forgives
    misspellings and word order; its token-set ratio also forgives a missing middle name, so
    it counts only when both names have at least two words (one common word is not a match).
    (``**_`` takes the options rapidfuzz's ``process`` functions pass to a scorer.)
    """
    score = fuzz.token_sort_ratio(a, b, processor=None)
    if len(a.split()) >= 2 and len(b.split()) >= 2:
        score = max(score, fuzz.token_set_ratio(a, b, processor=None))
    return float(score)


@dataclass(frozen=True, slots=True)
class ListedEntry:
    id: str
    kind: str
    """person, entity, bank or country."""
    name: str
    aliases: tuple[str, ...]
    bic: str
    country: str
    program: str


@dataclass(frozen=True, slots=True)
class ScreeningHit:
    party: Party
    entry: ListedEntry
    field: str
    """name, bic or country."""
    score: float
    matched: str


SANCTIONS_COLUMNS = ("id", "kind", "name", "aliases", "bic", "country", "program")
_KINDS = ("person", "entity", "bank", "country")


@dataclass(frozen=True)
class SanctionsList:
    """Listed names (with aliases), BICs and countries; loaded from a CSV file with the columns
    ``id,kind,name,aliases,bic,country,program`` (aliases separated by ``;``). A row of kind
    ``country`` lists a whole jurisdiction."""

    entries: tuple[ListedEntry, ...]
    source: str = ""
    _names: tuple[str, ...] = field(default=(), repr=False)
    _owners: tuple[int, ...] = field(default=(), repr=False)

    @classmethod
    def parse(cls, text: str, source: str = "sanctions list") -> SanctionsList:
        reader = csv.DictReader(io.StringIO(text))
        if tuple(reader.fieldnames or ()) != SANCTIONS_COLUMNS:
            raise RulesError(source, 1, f"the header must be {','.join(SANCTIONS_COLUMNS)}")
        entries: list[ListedEntry] = []
        names: list[str] = []
        owners: list[int] = []
        for row in reader:
            line = reader.line_num
            if None in row or any(v is None for v in row.values()):
                raise RulesError(source, line, f"expected {len(SANCTIONS_COLUMNS)} columns")
            kind = row["kind"].strip()
            if kind not in _KINDS:
                raise RulesError(source, line, f"kind {kind!r} is not one of {', '.join(_KINDS)}")
            country = row["country"].strip().upper()
            if country and (len(country) != 2 or not country.isalpha()):
                raise RulesError(source, line, f"country {country!r} is not an ISO 3166 alpha-2 code")
            bic = row["bic"].strip().upper()
            if bic and (problem := bic_problem(bic)) is not None:
                raise RulesError(source, line, f"BIC {bic!r} is not a BIC: {problem}")
            name = row["name"].strip()
            if kind == "country" and not country:
                raise RulesError(source, line, "a country row needs its country code")
            if kind != "country" and not (name or bic):
                raise RulesError(source, line, "a row needs a name or a BIC")
            aliases = tuple(a.strip() for a in row["aliases"].split(";") if a.strip())
            entry = ListedEntry(row["id"].strip(), kind, name, aliases, bic, country, row["program"].strip())
            for listed in (name, *aliases) if kind != "country" else ():
                if normalized := normalize_name(listed):
                    names.append(normalized)
                    owners.append(len(entries))
            entries.append(entry)
        return cls(tuple(entries), source, tuple(names), tuple(owners))

    @classmethod
    def load(cls, path: Path) -> SanctionsList:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise RulesError(str(path), None, f"cannot read the sanctions list: {exc.strerror}") from None
        return cls.parse(text, str(path))

    def screen(self, party: Party) -> list[ScreeningHit]:
        """Every listed entry this party's BIC, country or name matches, best first."""
        hits: list[ScreeningHit] = []
        for entry in self.entries:
            if party.bic and entry.bic and (party.bic == entry.bic or party.bic[:8] == entry.bic[:8]):
                hits.append(ScreeningHit(party, entry, "bic", 100.0, party.bic))
            if entry.kind == "country" and party.country and party.country == entry.country:
                hits.append(ScreeningHit(party, entry, "country", 100.0, party.country))
        query = normalize_name(party.name)
        if query and self._names:
            best = process.extractOne(query, self._names, scorer=name_score, processor=None)
            if best is not None:
                _, score, index = best
                hits.append(ScreeningHit(party, self.entries[self._owners[index]], "name", float(score), party.name))
        return sorted(hits, key=lambda h: -h.score)
