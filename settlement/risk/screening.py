"""Screening the parties a transfer names against the operator's sanctions list: BICs and
countries exactly, names by a fuzzy score (see :func:`name_score`) after transliteration into
Latin letters (see :func:`normalize_name`), so that a name written in Cyrillic, Greek, Arabic,
Hebrew, Chinese or Korean is compared with the romanised form a list carries."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

from anyascii import anyascii
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


_SYLLABLE_RANGES = ((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0xAC00, 0xD7AF))
"""Han ideographs and Hangul syllables: one character is one syllable, romanised as a word of its own."""
_ABJAD_RANGES = ((0x0590, 0x05FF), (0x0600, 0x06FF), (0x0750, 0x077F), (0x08A0, 0x08FF), (0xFB50, 0xFDFF))
"""Hebrew and Arabic: written without most vowels, so a name's romanisation is compared by its consonants."""
_VOWELS = re.compile(r"[aeiouy]")
_REPEATS = re.compile(r"(.)\1+")
SKELETON_LENGTH_MIN = 5
"""Consonant skeletons shorter than this match too much to count."""


def _in(c: str, ranges: tuple[tuple[int, int], ...]) -> bool:
    return any(low <= ord(c) <= high for low, high in ranges)


def transliterate(name: str) -> str:
    """Latin letters for any script (``anyascii``): ``"Иван Петров"`` → ``"Ivan Petrov"``,
    ``"Ιωάννης"`` → ``"Ioannis"``, ``"李伟"`` → ``"Li Wei"``, accents dropped."""
    spaced = "".join(f" {c} " if _in(c, _SYLLABLE_RANGES) else c for c in name)
    return anyascii(spaced)


def normalize_name(name: str) -> str:
    """Transliterated, case and punctuation taken out: ``"Petróv, Iván"`` → ``"petrov ivan"``."""
    plain = transliterate(name).casefold()
    return " ".join("".join(c if c.isalnum() else " " for c in plain).split())


def skeleton(normalized: str) -> str:
    """The consonants of a normalized name, without spaces or doubled letters: ``"mohammed al rashid"``
    → ``"mhmdlrshd"``, as an Arabic spelling romanises."""
    return _REPEATS.sub(r"\1", _VOWELS.sub("", normalized.replace(" ", "")))


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
    _compact: tuple[str, ...] = field(default=(), repr=False)
    """Each listed name without spaces, in its order and reversed: romanised Chinese and Korean
    names join or split syllables unpredictably (``Xiaoming``, ``Xiao Ming``)."""
    _skeletons: tuple[str, ...] = field(default=(), repr=False)

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
        compact = tuple("".join(n.split()) + " " + "".join(reversed(n.split())) for n in names)
        return cls(tuple(entries), source, tuple(names), tuple(owners), compact, tuple(skeleton(n) for n in names))

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
        if (best := self._best_name(party.name)) is not None:
            score, index = best
            hits.append(ScreeningHit(party, self.entries[self._owners[index]], "name", score, party.name))
        return sorted(hits, key=lambda h: -h.score)

    def _best_name(self, name: str) -> tuple[float, int] | None:
        """The best score of ``name`` against the listed names and the index of that name: by words;
        for a name written in Han or Hangul also without spaces; for Arabic or Hebrew also by consonants."""
        query = normalize_name(name)
        if not query or not self._names:
            return None
        found = process.extractOne(query, self._names, scorer=name_score, processor=None)
        assert found is not None
        best = (float(found[1]), int(found[2]))
        if any(_in(c, _SYLLABLE_RANGES) for c in name):
            compact = "".join(query.split())
            for index, forms in enumerate(self._compact):
                score = max(float(fuzz.ratio(compact, form)) for form in forms.split(" "))
                best = max(best, (score, index))
        if any(_in(c, _ABJAD_RANGES) for c in name) and len(consonants := skeleton(query)) >= SKELETON_LENGTH_MIN:
            for index, listed in enumerate(self._skeletons):
                if len(listed) >= SKELETON_LENGTH_MIN:
                    best = max(best, (float(fuzz.ratio(consonants, listed)), index))
        return best
