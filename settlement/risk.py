"""Risk checks a transfer passes before the node escrows it, and the operator's rules for them.

The pipeline asks a :class:`RiskEngine` about each RECEIVED transfer, giving it the transfer's
:class:`TransferFacts` and the debtor bank's :class:`Exposure` (what the store knows of its
day so far), and records the :class:`Decision` (an outcome, a reason code and a sentence) in
the transfer's history. The engine applies :class:`RiskRules`, loaded from a YAML
document (:func:`load_rules`) that is refused whole, with the line and the reason, when any
part of it is wrong.

The rules, and the code a decision carries when one of them stops a transfer:

==========================  ==========================================================  ======
rule                        what it bounds                                              code
==========================  ==========================================================  ======
limits.max_per_transfer     one transfer's sell amount, per currency                    limit_per_transfer
limits.daily_outflow        the bank's sell amounts today (UTC), per currency           daily_outflow
limits.net_debit_cap        sent minus received today, per currency, never more than    net_debit_cap
                            the bank's settlement balance on chain
velocity                    transfers per bank per minute                               velocity_per_minute
velocity                    large transfers to beneficiaries not paid before, in a      new_beneficiary_burst
                            window (the classic sign of a taken-over account)
corridors                   the currency pairs and countries served                     corridor_pair, corridor_country
screening                   names, BICs and countries against the sanctions list        sanctions_name, sanctions_bic,
                                                                                        sanctions_country
review                      above a value, or a screening score in the grey band:       review_amount, review_screening
                            held for the operator (escrowed, not settled)
==========================  ==========================================================  ======

A rejecting rule wins over a review; the first rejecting rule in the order above names the
decision, and every rule that fired is listed in its reason.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from rapidfuzz import fuzz, process

from settlement import money
from settlement.errors import ConfigurationError, CorridorError


class RulesError(ConfigurationError):
    """A rules document (or the sanctions list it names) that cannot be used, with where and why."""

    def __init__(self, source: str, line: int | None, reason: str) -> None:
        self.source, self.line, self.reason = source, line, reason
        where = f"{source}, line {line}" if line is not None else source
        super().__init__(f"{where}: {reason}")


# ====================================================================== facts and decisions


@dataclass(frozen=True, slots=True)
class Party:
    """Someone a transfer names: a bank, the ordering customer or the beneficiary."""

    role: str
    """debtor_bank, creditor_bank, ordering_customer or beneficiary."""
    name: str = ""
    bic: str = ""
    country: str = ""


@dataclass(frozen=True, slots=True)
class TransferFacts:
    """What a risk rule may look at: the instruction's terms and the parties it names."""

    id: str
    debtor_bic: str
    sell_currency: str
    sell_amount: int
    buy_currency: str
    parties: tuple[Party, ...] = ()
    """Everyone screened: both banks and, when the bank sent the details, its customer and the beneficiary."""


@dataclass(frozen=True, slots=True)
class Exposure:
    """The debtor bank's day so far, as the store knows it, in the transfer's sell currency."""

    outflow_today: int = 0
    """Sell amounts of its transfers today (UTC) that are not rejected or refunded, minor units."""
    inflow_today: int = 0
    """Buy amounts settled to it today, minor units."""
    settlement_balance: int | None = None
    """Its balance on chain (available + escrowed); None when it could not be read."""
    sent_last_minute: int = 0
    large_new_in_window: int = 0
    """Large transfers to beneficiaries it had not paid before, in the burst window."""
    beneficiary_known: bool = False
    """It paid this beneficiary before (a transfer that reached FINAL)."""


class Outcome(StrEnum):
    APPROVE = "approve"
    REVIEW = "review"
    REJECT = "reject"


@dataclass(frozen=True, slots=True)
class Hit:
    """One rule that fired."""

    code: str
    reason: str
    reject: bool


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Outcome
    code: str
    reason: str
    hits: tuple[Hit, ...] = ()
    large_new_beneficiary: bool = False
    """This transfer counts towards the new-beneficiary burst of later ones."""

    @classmethod
    def approve(cls, reason: str = "passed the risk checks", large_new: bool = False) -> Decision:
        return cls(Outcome.APPROVE, "approved", reason, (), large_new)


# ====================================================================== screening


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
            if bic and len(bic) not in (8, 11):
                raise RulesError(source, line, f"BIC {bic!r} must have 8 or 11 characters")
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


# ====================================================================== the rules


@dataclass(frozen=True, slots=True)
class Limits:
    """Per currency, minor units; a currency not named has no limit."""

    max_per_transfer: Mapping[str, int] = field(default_factory=dict)
    daily_outflow: Mapping[str, int] = field(default_factory=dict)
    net_debit_cap: Mapping[str, int] = field(default_factory=dict)

    def over(self, other: Limits) -> Limits:
        """These limits, with ``other``'s where these name none (a bank's own over the default)."""
        return Limits(
            {**other.max_per_transfer, **self.max_per_transfer},
            {**other.daily_outflow, **self.daily_outflow},
            {**other.net_debit_cap, **self.net_debit_cap},
        )


@dataclass(frozen=True, slots=True)
class Velocity:
    per_minute_max: int | None = None
    large: Mapping[str, int] = field(default_factory=dict)
    """From this sell amount (per currency) a transfer is large."""
    window_s: int = 600
    large_new_max: int | None = None
    """Large transfers to new beneficiaries allowed per window; one more is rejected."""


@dataclass(frozen=True, slots=True)
class Corridors:
    pairs: frozenset[tuple[str, str]] | None = None
    """Allowed (sell, buy) pairs; None: every pair."""
    countries: frozenset[str] | None = None
    """Countries the banks (and the beneficiary, when given) may be in; None: every country."""


@dataclass(frozen=True, slots=True)
class Screening:
    sanctions: SanctionsList | None = None
    threshold: float = 90.0
    """A name scoring this or more against a listed name is a match: rejected."""
    review_from: float = 101.0
    """A score from here up to the threshold is the grey band: held for review."""


@dataclass(frozen=True, slots=True)
class RiskRules:
    default: Limits = field(default_factory=Limits)
    banks: Mapping[str, Limits] = field(default_factory=dict)
    velocity: Velocity = field(default_factory=Velocity)
    corridors: Corridors = field(default_factory=Corridors)
    screening: Screening = field(default_factory=Screening)
    review_above: Mapping[str, int] = field(default_factory=dict)
    text: str = ""
    """The document the rules were loaded from, kept as the operator wrote it."""

    def limits_for(self, bic: str) -> Limits:
        own = self.banks.get(bic)
        return own.over(self.default) if own else self.default


# --------------------------------------------------------------------- the document's schema


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


def _amount(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f'write an amount as a quoted decimal string in major units ("250000.00"), not {value!r}')
    return str(value)


Amounts = dict[str, Annotated[str, BeforeValidator(_amount)]]


class _LimitsDoc(_Doc):
    max_per_transfer: Amounts = Field(default_factory=dict)
    daily_outflow: Amounts = Field(default_factory=dict)
    net_debit_cap: Amounts = Field(default_factory=dict)


class _LimitsSection(_Doc):
    default: _LimitsDoc = Field(default_factory=_LimitsDoc)
    banks: dict[str, _LimitsDoc] = Field(default_factory=dict)


class _BurstDoc(_Doc):
    large: Amounts
    window_s: int = Field(600, ge=1, le=86_400)
    count_max: int = Field(ge=0)


class _VelocityDoc(_Doc):
    transfers_per_minute_max: int | None = Field(None, ge=0)
    new_beneficiary_burst: _BurstDoc | None = None


class _CorridorsDoc(_Doc):
    pairs: list[str] | None = None
    countries: list[str] | None = None


class _ScreeningDoc(_Doc):
    list: str
    threshold: int | float = Field(90, ge=0, le=100)
    review_from: int | float | None = Field(None, ge=0, le=100)


class _ReviewDoc(_Doc):
    above: Amounts = Field(default_factory=dict)


class _RulesDoc(_Doc):
    version: int = Field(ge=1, le=1)
    limits: _LimitsSection = Field(default_factory=_LimitsSection)
    velocity: _VelocityDoc = Field(default_factory=_VelocityDoc)
    corridors: _CorridorsDoc = Field(default_factory=_CorridorsDoc)
    screening: _ScreeningDoc | None = None
    review: _ReviewDoc = Field(default_factory=_ReviewDoc)


def load_rules(
    text: str, currencies: Iterable[str], *, source: str = "rules", base_dir: Path | None = None
) -> RiskRules:
    """Parse and check a rules document; raise :class:`RulesError` (line and reason) on the first fault.

    ``currencies`` are the ones the network settles: a rule naming another is refused. The
    sanctions list is read from ``screening.list``, relative to ``base_dir``.
    """
    known = frozenset(currencies)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise RulesError(source, mark.line + 1 if mark else None, f"not valid YAML: {exc}") from None
    except RecursionError:  # PyYAML composes nested nodes recursively
        raise RulesError(source, None, "the document nests too deeply") from None
    if root is None:
        raise RulesError(source, 1, "the document is empty; it needs at least 'version: 1'")
    _no_duplicate_keys(root, source)
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise RulesError(source, root.start_mark.line + 1, "the document must be a mapping of sections")
    try:
        doc = _RulesDoc.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(first["loc"])
        where = ".".join(str(p) for p in loc) or "(document)"
        reason = "unknown key" if first["type"] == "extra_forbidden" else first["msg"].removeprefix("Value error, ")
        raise RulesError(source, _line_of(root, loc), f"{where}: {reason}") from None
    at = _Locator(root, source)

    def amounts(values: Amounts, path: tuple[str, ...]) -> dict[str, int]:
        out: dict[str, int] = {}
        for code, value in values.items():
            if code not in known:
                at.fail(path + (code,), f"{code} is not settled on this network ({', '.join(sorted(known))})")
            if value.strip().startswith("-"):
                at.fail(path + (code,), f"a limit cannot be negative ({value})")
            try:
                out[code] = int(money.to_minor(value, code))
            except CorridorError as exc:
                at.fail(path + (code,), f"{value!r} is not an amount of {code}: {exc}")
        return out

    def limits(d: _LimitsDoc, path: tuple[str, ...]) -> Limits:
        return Limits(
            amounts(d.max_per_transfer, path + ("max_per_transfer",)),
            amounts(d.daily_outflow, path + ("daily_outflow",)),
            amounts(d.net_debit_cap, path + ("net_debit_cap",)),
        )

    banks: dict[str, Limits] = {}
    for bic, own in doc.limits.banks.items():
        if not (len(bic) in (8, 11) and bic.isalnum() and bic.isupper()):
            at.fail(("limits", "banks", bic), f"{bic!r} is not a BIC (8 or 11 upper-case letters and digits)")
        banks[bic] = limits(own, ("limits", "banks", bic))
    velocity = Velocity(per_minute_max=doc.velocity.transfers_per_minute_max)
    if (burst := doc.velocity.new_beneficiary_burst) is not None:
        velocity = Velocity(
            velocity.per_minute_max,
            amounts(burst.large, ("velocity", "new_beneficiary_burst", "large")),
            burst.window_s,
            burst.count_max,
        )
    pairs: set[tuple[str, str]] | None = None
    if doc.corridors.pairs is not None:
        pairs = set()
        for i, pair in enumerate(doc.corridors.pairs):
            sell, _, buy = pair.partition("/")
            if not (sell and buy) or sell == buy:
                at.fail(("corridors", "pairs", i), f"{pair!r} is not a pair written SELL/BUY, e.g. USD/EUR")
            for code in (sell, buy):
                if code not in known:
                    at.fail(("corridors", "pairs", i), f"{code} is not settled on this network")
            pairs.add((sell, buy))
    countries: set[str] | None = None
    if doc.corridors.countries is not None:
        countries = set()
        for i, country in enumerate(doc.corridors.countries):
            if not (len(country) == 2 and country.isalpha() and country.isupper()):
                at.fail(("corridors", "countries", i), f"{country!r} is not an ISO 3166 alpha-2 code")
            countries.add(country)
    screening = Screening()
    if doc.screening is not None:
        s = doc.screening
        review_from = float(s.review_from) if s.review_from is not None else float(s.threshold)
        if review_from > s.threshold:
            at.fail(("screening", "review_from"), f"review_from {review_from} is above the threshold {s.threshold}")
        path = Path(s.list)
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        screening = Screening(SanctionsList.load(path), float(s.threshold), review_from)
    return RiskRules(
        default=limits(doc.limits.default, ("limits", "default")),
        banks=banks,
        velocity=velocity,
        corridors=Corridors(
            frozenset(pairs) if pairs is not None else None, frozenset(countries) if countries is not None else None
        ),
        screening=screening,
        review_above=amounts(doc.review.above, ("review", "above")),
        text=text,
    )


def load_rules_file(path: Path, currencies: Iterable[str]) -> RiskRules:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RulesError(str(path), None, f"cannot read the rules file: {exc.strerror}") from None
    return load_rules(text, currencies, source=str(path), base_dir=path.parent)


def _no_duplicate_keys(node: yaml.Node, source: str) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key, value in node.value:
            if key.value in seen:
                raise RulesError(source, key.start_mark.line + 1, f"key {key.value!r} appears twice")
            seen.add(key.value)
            _no_duplicate_keys(value, source)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _no_duplicate_keys(item, source)


def _child(node: yaml.Node, part: object) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if key.value == str(part):
                found: yaml.Node = value if not isinstance(value, yaml.ScalarNode) or value.value else key
                return found
        return None
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
        item: yaml.Node = node.value[part]
        return item
    return None


def _line_of(root: yaml.Node, loc: Sequence[object]) -> int:
    """The line (1-based) of the deepest node of ``loc`` the document has."""
    node = root
    for part in loc:
        found = _child(node, part)
        if found is None:
            if isinstance(node, yaml.MappingNode):  # a key the document has, under another spelling
                for key, _ in node.value:
                    if key.value == str(part):
                        return int(key.start_mark.line) + 1
            break
        node = found
    return int(node.start_mark.line) + 1


@dataclass(frozen=True)
class _Locator:
    root: yaml.Node
    source: str

    def fail(self, path: tuple[object, ...], reason: str) -> None:
        where = ".".join(str(p) for p in path)
        raise RulesError(self.source, _line_of(self.root, path), f"{where}: {reason}")


# ====================================================================== the engine


class RiskEngine:
    """Applies :class:`RiskRules`; holds no state of its own (the store's figures come as :class:`Exposure`)."""

    def __init__(self, rules: RiskRules | None = None) -> None:
        self.rules = rules or RiskRules()

    def check(self, facts: TransferFacts, exposure: Exposure) -> Decision:
        r, ccy, amount = self.rules, facts.sell_currency, facts.sell_amount
        hits: list[Hit] = []

        def hit(code: str, reason: str, reject: bool = True) -> None:
            hits.append(Hit(code, reason, reject))

        def show(value: int) -> str:
            return f"{money.format_minor(value, ccy)} {ccy}"

        screened = self._screen(facts)
        for h in screened:
            if h.field == "bic":
                hit("sanctions_bic", f"{h.party.role} BIC {h.matched} is listed ({h.entry.id}, {h.entry.program})")
            elif h.field == "country":
                hit(
                    "sanctions_country",
                    f"{h.party.role} country {h.matched} is a listed jurisdiction ({h.entry.id}, {h.entry.program})",
                )
            elif h.score >= r.screening.threshold:
                hit(
                    "sanctions_name",
                    f"{h.party.role} name {h.matched!r} matches listed {h.entry.name!r} "
                    f"({h.entry.id}, {h.entry.program}) with score {h.score:.0f} >= {r.screening.threshold:.0f}",
                )
            else:
                hit(
                    "review_screening",
                    f"{h.party.role} name {h.matched!r} resembles listed {h.entry.name!r} "
                    f"({h.entry.id}) with score {h.score:.0f}, in the grey band from {r.screening.review_from:.0f}",
                    reject=False,
                )
        corridors = r.corridors
        if corridors.pairs is not None and (ccy, facts.buy_currency) not in corridors.pairs:
            hit("corridor_pair", f"{ccy}/{facts.buy_currency} is not a corridor this network serves")
        if corridors.countries is not None:
            for p in facts.parties:
                if p.country and p.country not in corridors.countries:
                    hit("corridor_country", f"the {p.role}'s country {p.country} is not served")
        limits = r.limits_for(facts.debtor_bic)
        cap = limits.max_per_transfer.get(ccy)
        if cap is not None and amount > cap:
            hit("limit_per_transfer", f"{show(amount)} is above {facts.debtor_bic}'s per-transfer limit of {show(cap)}")
        cap = limits.daily_outflow.get(ccy)
        if cap is not None and exposure.outflow_today + amount > cap:
            hit(
                "daily_outflow",
                f"{show(exposure.outflow_today)} sent today and {show(amount)} more is above "
                f"{facts.debtor_bic}'s daily outflow limit of {show(cap)}",
            )
        cap = limits.net_debit_cap.get(ccy)
        if cap is not None:
            if exposure.settlement_balance is not None:
                cap = min(cap, exposure.settlement_balance)
            net = exposure.outflow_today - exposure.inflow_today + amount
            if net > cap:
                hit(
                    "net_debit_cap",
                    f"the net debit today would be {show(net)}, above {facts.debtor_bic}'s cap of "
                    f"{show(cap)} (the configured cap, or the settlement balance if smaller)",
                )
        v = r.velocity
        if v.per_minute_max is not None and exposure.sent_last_minute + 1 > v.per_minute_max:
            hit(
                "velocity_per_minute",
                f"{facts.debtor_bic} sent {exposure.sent_last_minute} transfers in the last "
                f"minute; at most {v.per_minute_max} are allowed",
            )
        large = v.large.get(ccy)
        large_new = large is not None and amount >= large and not exposure.beneficiary_known
        if large_new and v.large_new_max is not None and exposure.large_new_in_window + 1 > v.large_new_max:
            hit(
                "new_beneficiary_burst",
                f"{exposure.large_new_in_window + 1} large transfers (from {show(large or 0)})"
                f" to beneficiaries not paid before within {v.window_s} s; at most {v.large_new_max} are allowed",
            )
        threshold = r.review_above.get(ccy)
        if threshold is not None and amount > threshold:
            hit("review_amount", f"{show(amount)} is above the review threshold of {show(threshold)}", reject=False)
        if not hits:
            return Decision.approve(large_new=large_new)
        rejecting = [h for h in hits if h.reject]
        first = rejecting[0] if rejecting else hits[0]
        reason = "; ".join(h.reason for h in (rejecting or hits))
        if rejecting:
            return Decision(Outcome.REJECT, first.code, reason, tuple(hits), large_new)
        return Decision(Outcome.REVIEW, first.code, "held for review: " + reason, tuple(hits), large_new)

    def _screen(self, facts: TransferFacts) -> list[ScreeningHit]:
        s = self.rules.screening
        if s.sanctions is None:
            return []
        found: list[ScreeningHit] = []
        for party in facts.parties:
            for h in s.sanctions.screen(party):
                if h.field != "name" or h.score >= s.review_from:
                    found.append(h)
        return found
