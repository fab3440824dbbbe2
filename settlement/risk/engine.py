"""The risk engine: the facts a rule looks at, the decision it comes to, and the order the rules
are applied in (see :mod:`settlement.risk`)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from settlement import money
from settlement.lifecycle import ReasonCode
from settlement.risk.rules import RiskRules
from settlement.risk.screening import Party, ScreeningHit


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

    code: ReasonCode
    reason: str
    reject: bool


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Outcome
    code: ReasonCode
    reason: str
    hits: tuple[Hit, ...] = ()
    large_new_beneficiary: bool = False
    """This transfer counts towards the new-beneficiary burst of later ones."""

    @classmethod
    def approve(cls, reason: str = "passed the risk checks", large_new: bool = False) -> Decision:
        return cls(Outcome.APPROVE, ReasonCode.APPROVED, reason, (), large_new)


class RiskEngine:
    """Applies :class:`RiskRules`; holds no state of its own (the store's figures come as :class:`Exposure`)."""

    def __init__(self, rules: RiskRules | None = None) -> None:
        self.rules = rules or RiskRules()

    def check(self, facts: TransferFacts, exposure: Exposure) -> Decision:
        """The decision on one transfer: every rule applied, in the order of the table in :mod:`settlement.risk`."""
        large_new, velocity = self._velocity_hits(facts, exposure)
        hits = [
            *self._screening_hits(facts),
            *self._corridor_hits(facts),
            *self._limit_hits(facts, exposure),
            *velocity,
            *self._review_hits(facts),
        ]
        if not hits:
            return Decision.approve(large_new=large_new)
        rejecting = [h for h in hits if h.reject]
        first = rejecting[0] if rejecting else hits[0]
        reason = "; ".join(h.reason for h in (rejecting or hits))
        if rejecting:
            return Decision(Outcome.REJECT, first.code, reason, tuple(hits), large_new)
        return Decision(Outcome.REVIEW, first.code, "held for review: " + reason, tuple(hits), large_new)

    def _screening_hits(self, facts: TransferFacts) -> list[Hit]:
        r, hits = self.rules.screening, []
        for h in self._screen(facts):
            listed = f"({h.entry.id}, {h.entry.program})"
            if h.field == "bic":
                hits.append(Hit(ReasonCode.SANCTIONS_BIC, f"{h.party.role} BIC {h.matched} is listed {listed}", True))
            elif h.field == "country":
                why = f"{h.party.role} country {h.matched} is a listed jurisdiction {listed}"
                hits.append(Hit(ReasonCode.SANCTIONS_COUNTRY, why, True))
            elif h.score >= r.threshold:
                why = (
                    f"{h.party.role} name {h.matched!r} matches listed {h.entry.name!r} "
                    f"{listed} with score {h.score:.0f} >= {r.threshold:.0f}"
                )
                hits.append(Hit(ReasonCode.SANCTIONS_NAME, why, True))
            else:
                why = (
                    f"{h.party.role} name {h.matched!r} resembles listed {h.entry.name!r} "
                    f"({h.entry.id}) with score {h.score:.0f}, in the grey band from {r.review_from:.0f}"
                )
                hits.append(Hit(ReasonCode.REVIEW_SCREENING, why, False))
        return hits

    def _corridor_hits(self, facts: TransferFacts) -> list[Hit]:
        corridors, ccy, hits = self.rules.corridors, facts.sell_currency, []
        if corridors.pairs is not None and (ccy, facts.buy_currency) not in corridors.pairs:
            why = f"{ccy}/{facts.buy_currency} is not a corridor this network serves"
            hits.append(Hit(ReasonCode.CORRIDOR_PAIR, why, True))
        if corridors.countries is not None:
            for p in facts.parties:
                if p.country and p.country not in corridors.countries:
                    why = f"the {p.role}'s country {p.country} is not served"
                    hits.append(Hit(ReasonCode.CORRIDOR_COUNTRY, why, True))
        return hits

    def _limit_hits(self, facts: TransferFacts, exposure: Exposure) -> list[Hit]:
        ccy, amount, bic, hits = facts.sell_currency, facts.sell_amount, facts.debtor_bic, []
        limits = self.rules.limits_for(bic)
        cap = limits.max_per_transfer.get(ccy)
        if cap is not None and amount > cap:
            why = f"{_show(amount, ccy)} is above {bic}'s per-transfer limit of {_show(cap, ccy)}"
            hits.append(Hit(ReasonCode.LIMIT_PER_TRANSFER, why, True))
        cap = limits.daily_outflow.get(ccy)
        if cap is not None and exposure.outflow_today + amount > cap:
            why = (
                f"{_show(exposure.outflow_today, ccy)} sent today and {_show(amount, ccy)} more is above "
                f"{bic}'s daily outflow limit of {_show(cap, ccy)}"
            )
            hits.append(Hit(ReasonCode.DAILY_OUTFLOW, why, True))
        cap = limits.net_debit_cap.get(ccy)
        if cap is not None:
            if exposure.settlement_balance is not None:
                cap = min(cap, exposure.settlement_balance)
            net = exposure.outflow_today - exposure.inflow_today + amount
            if net > cap:
                why = (
                    f"the net debit today would be {_show(net, ccy)}, above {bic}'s cap of "
                    f"{_show(cap, ccy)} (the configured cap, or the settlement balance if smaller)"
                )
                hits.append(Hit(ReasonCode.NET_DEBIT_CAP, why, True))
        return hits

    def _velocity_hits(self, facts: TransferFacts, exposure: Exposure) -> tuple[bool, list[Hit]]:
        """Whether the transfer is large and to a new beneficiary, and the velocity rules' hits."""
        v, ccy, amount, hits = self.rules.velocity, facts.sell_currency, facts.sell_amount, []
        if v.per_minute_max is not None and exposure.sent_last_minute + 1 > v.per_minute_max:
            why = (
                f"{facts.debtor_bic} sent {exposure.sent_last_minute} transfers in the last "
                f"minute; at most {v.per_minute_max} are allowed"
            )
            hits.append(Hit(ReasonCode.VELOCITY_PER_MINUTE, why, True))
        large = v.large.get(ccy)
        large_new = large is not None and amount >= large and not exposure.beneficiary_known
        if large_new and v.large_new_max is not None and exposure.large_new_in_window + 1 > v.large_new_max:
            why = (
                f"{exposure.large_new_in_window + 1} large transfers (from {_show(large or 0, ccy)})"
                f" to beneficiaries not paid before within {v.window_s} s; at most {v.large_new_max} are allowed"
            )
            hits.append(Hit(ReasonCode.NEW_BENEFICIARY_BURST, why, True))
        return large_new, hits

    def _review_hits(self, facts: TransferFacts) -> list[Hit]:
        ccy, amount = facts.sell_currency, facts.sell_amount
        threshold = self.rules.review_above.get(ccy)
        if threshold is not None and amount > threshold:
            why = f"{_show(amount, ccy)} is above the review threshold of {_show(threshold, ccy)}"
            return [Hit(ReasonCode.REVIEW_AMOUNT, why, False)]
        return []

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


def _show(value: int, ccy: str) -> str:
    return f"{money.format_minor(value, ccy)} {ccy}"
