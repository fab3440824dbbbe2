"""The operator's risk rules: their types, and the YAML document they are loaded from, refused
whole with the line and the reason when any part of it is wrong."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from settlement import money
from settlement.errors import CorridorError, RulesError
from settlement.identifiers import bic_problem
from settlement.risk.screening import SanctionsList


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
    root, doc = _parse(text, source)
    read = _Reader(_Locator(root, source), frozenset(currencies))
    banks = {bic: read.bank_limits(bic, own) for bic, own in doc.limits.banks.items()}
    velocity = read.velocity(doc.velocity)
    corridors = read.corridors(doc.corridors)
    screening = read.screening(doc.screening, base_dir)
    return RiskRules(
        default=read.limits(doc.limits.default, ("limits", "default")),
        banks=banks,
        velocity=velocity,
        corridors=corridors,
        screening=screening,
        review_above=read.amounts(doc.review.above, ("review", "above")),
        text=text,
    )


def _parse(text: str, source: str) -> tuple[yaml.Node, _RulesDoc]:
    """The document's node tree (for line numbers) and its sections, checked against the schema."""
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
        return root, _RulesDoc.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(first["loc"])
        where = ".".join(str(p) for p in loc) or "(document)"
        reason = "unknown key" if first["type"] == "extra_forbidden" else first["msg"].removeprefix("Value error, ")
        raise RulesError(source, _line_of(root, loc), f"{where}: {reason}") from None


@dataclass(frozen=True, slots=True)
class _Reader:
    """The checks of each section's values that the schema cannot make (currencies of this
    network, amounts in their minor units, BICs, pairs, countries, the sanctions list)."""

    at: _Locator
    known: frozenset[str]

    def amounts(self, values: Amounts, path: tuple[str, ...]) -> dict[str, int]:
        out: dict[str, int] = {}
        for code, value in values.items():
            if code not in self.known:
                self.at.fail(path + (code,), f"{code} is not settled on this network ({', '.join(sorted(self.known))})")
            if value.strip().startswith("-"):
                self.at.fail(path + (code,), f"a limit cannot be negative ({value})")
            try:
                out[code] = int(money.to_minor(value, code))
            except CorridorError as exc:
                self.at.fail(path + (code,), f"{value!r} is not an amount of {code}: {exc}")
        return out

    def limits(self, d: _LimitsDoc, path: tuple[str, ...]) -> Limits:
        return Limits(
            self.amounts(d.max_per_transfer, path + ("max_per_transfer",)),
            self.amounts(d.daily_outflow, path + ("daily_outflow",)),
            self.amounts(d.net_debit_cap, path + ("net_debit_cap",)),
        )

    def bank_limits(self, bic: str, own: _LimitsDoc) -> Limits:
        if (problem := bic_problem(bic)) is not None:
            self.at.fail(("limits", "banks", bic), f"{bic!r} is not a BIC ({problem})")
        return self.limits(own, ("limits", "banks", bic))

    def velocity(self, d: _VelocityDoc) -> Velocity:
        velocity = Velocity(per_minute_max=d.transfers_per_minute_max)
        if (burst := d.new_beneficiary_burst) is not None:
            large = self.amounts(burst.large, ("velocity", "new_beneficiary_burst", "large"))
            velocity = Velocity(velocity.per_minute_max, large, burst.window_s, burst.count_max)
        return velocity

    def corridors(self, d: _CorridorsDoc) -> Corridors:
        pairs: set[tuple[str, str]] | None = None
        if d.pairs is not None:
            pairs = set()
            for i, pair in enumerate(d.pairs):
                sell, _, buy = pair.partition("/")
                if not (sell and buy) or sell == buy:
                    self.at.fail(("corridors", "pairs", i), f"{pair!r} is not a pair written SELL/BUY, e.g. USD/EUR")
                for code in (sell, buy):
                    if code not in self.known:
                        self.at.fail(("corridors", "pairs", i), f"{code} is not settled on this network")
                pairs.add((sell, buy))
        countries: set[str] | None = None
        if d.countries is not None:
            countries = set()
            for i, country in enumerate(d.countries):
                if not (len(country) == 2 and country.isalpha() and country.isupper()):
                    self.at.fail(("corridors", "countries", i), f"{country!r} is not an ISO 3166 alpha-2 code")
                countries.add(country)
        return Corridors(
            frozenset(pairs) if pairs is not None else None, frozenset(countries) if countries is not None else None
        )

    def screening(self, s: _ScreeningDoc | None, base_dir: Path | None) -> Screening:
        if s is None:
            return Screening()
        review_from = float(s.review_from) if s.review_from is not None else float(s.threshold)
        if review_from > s.threshold:
            self.at.fail(
                ("screening", "review_from"), f"review_from {review_from} is above the threshold {s.threshold}"
            )
        path = Path(s.list)
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        return Screening(SanctionsList.load(path), float(s.threshold), review_from)


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
