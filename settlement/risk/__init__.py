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
screening                   names, BICs and countries against the sanctions list        sanctions_name, sanctions_bic,
                                                                                        sanctions_country
corridors                   the currency pairs and countries served                     corridor_pair, corridor_country
limits.max_per_transfer     one transfer's sell amount, per currency                    limit_per_transfer
limits.daily_outflow        the bank's sell amounts today (UTC), per currency           daily_outflow
limits.net_debit_cap        sent minus received today, per currency, never more than    net_debit_cap
                            the bank's settlement balance on chain
velocity                    transfers per bank per minute                               velocity_per_minute
velocity                    large transfers to beneficiaries not paid before, in a      new_beneficiary_burst
                            window (the classic sign of a taken-over account)
review                      above a value, or a screening score in the grey band:       review_amount, review_screening
                            held for the operator (escrowed, not settled)
==========================  ==========================================================  ======

The engine applies the rules in the order of this table. A rejecting rule wins over a review;
the first rejecting rule names the decision, and every rule that fired is listed in its reason.
"""

from settlement.errors import RulesError
from settlement.risk.engine import Decision, Exposure, Hit, Outcome, RiskEngine, TransferFacts
from settlement.risk.rules import Corridors, Limits, RiskRules, Screening, Velocity, load_rules, load_rules_file
from settlement.risk.screening import ListedEntry, Party, SanctionsList, ScreeningHit, name_score, normalize_name

__all__ = [
    "Corridors",
    "Decision",
    "Exposure",
    "Hit",
    "Limits",
    "ListedEntry",
    "Outcome",
    "Party",
    "RiskEngine",
    "RiskRules",
    "RulesError",
    "SanctionsList",
    "Screening",
    "ScreeningHit",
    "TransferFacts",
    "Velocity",
    "load_rules",
    "load_rules_file",
    "name_score",
    "normalize_name",
]
