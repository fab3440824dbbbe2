"""The risk engine's rules, alone and combined; the sanctions screening's name matching; and
rules documents refused with their line and reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from settlement.risk import (
    Exposure,
    Outcome,
    Party,
    RiskEngine,
    RulesError,
    SanctionsList,
    TransferFacts,
    load_rules,
    load_rules_file,
)

CURRENCIES = ("USD", "EUR", "GBP", "JPY")
SANCTIONS = """id,kind,name,aliases,bic,country,program
T-1,person,Ivan Sergeyevich Petrov,Ivan Petrov,,RU,TEST
T-2,entity,Golden Crescent General Trading LLC,,,AE,TEST
T-3,bank,Bank of the Eastern Sea,,BESKKPPY,KP,TEST
T-4,country,,,,IR,TEST
"""


def facts(amount: int = 100_000_00, sell: str = "USD", buy: str = "EUR", *parties: Party) -> TransferFacts:
    banks = (
        Party("debtor_bank", "First Atlantic Bank", "FATLUS33", "US"),
        Party("creditor_bank", "Rheinland Bank", "RHNLDEFF", "DE"),
    )
    return TransferFacts("6f1c8a4e-2b7d-4c1e-9a53-0d3f2e8b7c61", "FATLUS33", sell, amount, buy, banks + parties)


def engine(tmp_path: Path, text: str) -> RiskEngine:
    (tmp_path / "sanctions.csv").write_text(SANCTIONS)
    return RiskEngine(load_rules(text, CURRENCIES, base_dir=tmp_path))


def beneficiary(name: str, country: str = "DE") -> Party:
    return Party("beneficiary", name, "", country)


# ---------------------------------------------------------------------- each rule alone


@pytest.mark.parametrize(
    ("rules", "f", "exposure", "code"),
    [
        ("limits: {default: {max_per_transfer: {USD: '1000.00'}}}", facts(1000_01), Exposure(), "limit_per_transfer"),
        (
            "limits: {banks: {FATLUS33: {max_per_transfer: {USD: '1000.00'}}}}",
            facts(1000_01),
            Exposure(),
            "limit_per_transfer",
        ),
        (
            "limits: {default: {daily_outflow: {USD: '1000.00'}}}",
            facts(300_00),
            Exposure(outflow_today=800_00),
            "daily_outflow",
        ),
        (
            "limits: {default: {net_debit_cap: {USD: '1000.00'}}}",
            facts(300_00),
            Exposure(outflow_today=900_00, inflow_today=100_00),
            "net_debit_cap",
        ),
        # The cap is never more than the settlement balance: 500.00 held bounds a 1,000.00 cap.
        (
            "limits: {default: {net_debit_cap: {USD: '1000.00'}}}",
            facts(600_00),
            Exposure(settlement_balance=500_00),
            "net_debit_cap",
        ),
        ("velocity: {transfers_per_minute_max: 3}", facts(), Exposure(sent_last_minute=3), "velocity_per_minute"),
        (
            "velocity: {new_beneficiary_burst: {large: {USD: '50000.00'}, window_s: 600, count_max: 2}}",
            facts(50_000_00),
            Exposure(large_new_in_window=2),
            "new_beneficiary_burst",
        ),
        ("corridors: {pairs: [EUR/USD]}", facts(), Exposure(), "corridor_pair"),
        ("corridors: {countries: [US, GB]}", facts(), Exposure(), "corridor_country"),
        (
            "screening: {list: sanctions.csv}",
            facts(100, "USD", "EUR", beneficiary("Ivan Petrov")),
            Exposure(),
            "sanctions_name",
        ),
        (
            "screening: {list: sanctions.csv}",
            facts(100, "USD", "EUR", Party("beneficiary", "", "BESKKPPYXXX")),
            Exposure(),
            "sanctions_bic",
        ),
        (
            "screening: {list: sanctions.csv}",
            facts(100, "USD", "EUR", beneficiary("Someone", "IR")),
            Exposure(),
            "sanctions_country",
        ),
    ],
)
def test_each_rule_rejects_alone(tmp_path: Path, rules: str, f: TransferFacts, exposure: Exposure, code: str) -> None:
    decision = engine(tmp_path, "version: 1\n" + rules).check(f, exposure)
    assert (decision.outcome, decision.code) == (Outcome.REJECT, code), decision
    assert [h.code for h in decision.hits] == [code]


@pytest.mark.parametrize(
    ("rules", "f", "exposure"),
    [
        ("limits: {default: {max_per_transfer: {USD: '1000.00'}}}", facts(1000_00), Exposure()),
        ("limits: {default: {max_per_transfer: {EUR: '1.00'}}}", facts(1000_00), Exposure()),  # another currency
        ("limits: {banks: {RHNLDEFF: {max_per_transfer: {USD: '1.00'}}}}", facts(1000_00), Exposure()),  # another bank
        ("limits: {default: {daily_outflow: {USD: '1000.00'}}}", facts(200_00), Exposure(outflow_today=800_00)),
        (
            "limits: {default: {net_debit_cap: {USD: '1000.00'}}}",
            facts(300_00),
            Exposure(outflow_today=900_00, inflow_today=200_00, settlement_balance=5_000_00),
        ),
        ("velocity: {transfers_per_minute_max: 3}", facts(), Exposure(sent_last_minute=2)),
        # A beneficiary paid before is not new, however many large transfers went out.
        (
            "velocity: {new_beneficiary_burst: {large: {USD: '50000.00'}, count_max: 2}}",
            facts(50_000_00),
            Exposure(large_new_in_window=9, beneficiary_known=True),
        ),
        (
            "velocity: {new_beneficiary_burst: {large: {USD: '50000.00'}, count_max: 2}}",
            facts(49_999_99),
            Exposure(large_new_in_window=9),
        ),
        ("corridors: {pairs: [USD/EUR], countries: [US, DE]}", facts(), Exposure()),
        ("screening: {list: sanctions.csv}", facts(100, "USD", "EUR", beneficiary("Maria Schmidt")), Exposure()),
    ],
)
def test_each_rule_lets_through_what_it_allows(
    tmp_path: Path, rules: str, f: TransferFacts, exposure: Exposure
) -> None:
    decision = engine(tmp_path, "version: 1\n" + rules).check(f, exposure)
    assert decision.outcome is Outcome.APPROVE, decision


def test_a_large_transfer_to_a_new_beneficiary_is_counted_for_the_next_ones(tmp_path: Path) -> None:
    e = engine(tmp_path, "version: 1\nvelocity: {new_beneficiary_burst: {large: {USD: '50000.00'}, count_max: 2}}")
    assert e.check(facts(50_000_00), Exposure()).large_new_beneficiary
    assert not e.check(facts(50_000_00), Exposure(beneficiary_known=True)).large_new_beneficiary
    assert not e.check(facts(100), Exposure()).large_new_beneficiary


def test_review_above_a_value_and_in_the_screening_grey_band(tmp_path: Path) -> None:
    e = engine(
        tmp_path,
        "version: 1\nscreening: {list: sanctions.csv, threshold: 95, review_from: 80}\n"
        "review: {above: {USD: '1000000.00'}}",
    )
    big = e.check(facts(1_000_000_01), Exposure())
    assert (big.outcome, big.code) == (Outcome.REVIEW, "review_amount") and "held for review" in big.reason
    assert e.check(facts(1_000_000_00), Exposure()).outcome is Outcome.APPROVE
    grey = e.check(facts(100, "USD", "EUR", beneficiary("Ivan Petrof")), Exposure())  # scores 91: below 95
    assert (grey.outcome, grey.code) == (Outcome.REVIEW, "review_screening"), grey


def test_combined_a_rejection_wins_over_a_review_and_every_rule_that_fired_is_named(tmp_path: Path) -> None:
    e = engine(
        tmp_path,
        "version: 1\nlimits: {default: {max_per_transfer: {USD: '1000.00'}, daily_outflow: "
        "{USD: '5000.00'}}}\ncorridors: {countries: [US, DE]}\nscreening: {list: sanctions.csv}\n"
        "review: {above: {USD: '500.00'}}",
    )
    d = e.check(
        facts(2000_00, "USD", "EUR", beneficiary("Golden Crescent Trading", "AE")), Exposure(outflow_today=4000_00)
    )
    assert d.outcome is Outcome.REJECT
    assert d.code == "sanctions_name", "screening comes first"
    codes = [h.code for h in d.hits]
    assert codes == ["sanctions_name", "corridor_country", "limit_per_transfer", "daily_outflow", "review_amount"]
    for word in ("Golden Crescent", "AE is not served", "per-transfer limit", "daily outflow"):
        assert word in d.reason
    only_review = e.check(facts(600_00), Exposure())
    assert (only_review.outcome, only_review.code) == (Outcome.REVIEW, "review_amount")


# ---------------------------------------------------------------------- screening


@pytest.mark.parametrize(
    "variant",
    [
        "Ivan Petrov",  # an alias, as listed
        "IVAN PETROV",  # case
        "Iván Petróv",  # accents
        "Petrov, Ivan",  # word order and punctuation
        "Petrov Ivan Sergeyevich",  # word order, full name
        "Ivan Petrof",  # a misspelling
        "Ivan Sergeevich Petrov",  # another transliteration of the middle name
        "golden crescent general trading",  # an entity, lower case, no legal form
        "Golden Cresent General Trading L.L.C.",  # misspelt, punctuated legal form
    ],
)
def test_screening_matches_variants_of_listed_names(variant: str) -> None:
    listed = SanctionsList.parse(SANCTIONS)
    hits = [h for h in listed.screen(Party("beneficiary", variant)) if h.field == "name"]
    assert hits and hits[0].score >= 90, (variant, hits)


@pytest.mark.parametrize(
    "name", ["Maria Schmidt", "John Smith", "Petra Ivanova Kowalski", "Eastern Trading Partners", "Sergey Brin"]
)
def test_screening_does_not_match_clearly_different_names(name: str) -> None:
    hits = [h for h in SanctionsList.parse(SANCTIONS).screen(Party("beneficiary", name)) if h.field == "name"]
    assert not hits or hits[0].score < 80, (name, hits[0].score)


SCRIPTS = (
    SANCTIONS
    + """T-5,person,Ioannis Papadopoulos,,,GR,TEST
T-6,person,Mohammed Al-Rashid,,,SY,TEST
T-7,person,Wang Xiaoming,,,CN,TEST
T-8,person,Li Wei,,,CN,TEST
T-9,person,Kim Jong Un,,,KP,TEST
"""
)


@pytest.mark.parametrize(
    ("written", "listed", "score_min"),
    [
        ("Иван Сергеевич Петров", "Ivan Sergeyevich Petrov", 90),  # Cyrillic: scored 9 before transliteration
        ("Петров Иван", "Ivan Sergeyevich Petrov", 90),
        ("Ιωάννης Παπαδόπουλος", "Ioannis Papadopoulos", 90),  # Greek
        ("محمد الراشد", "Mohammed Al-Rashid", 90),  # Arabic, by its consonants
        ("王小明", "Wang Xiaoming", 90),  # Chinese, syllables joined in the listed romanisation
        ("李伟", "Li Wei", 90),
        ("김정은", "Kim Jong Un", 80),  # Korean: Revised vs McCune-Reischauer romanisation, the grey band
    ],
)
def test_screening_transliterates_names_in_other_scripts(written: str, listed: str, score_min: float) -> None:
    hits = [h for h in SanctionsList.parse(SCRIPTS).screen(Party("beneficiary", written)) if h.field == "name"]
    assert hits and hits[0].entry.name == listed and hits[0].score >= score_min, (written, hits)


@pytest.mark.parametrize("name", ["Мария Шмидт", "Иван Иванов", "محمد علي", "王伟", "李小龙", "Γιώργος Νικολάου"])
def test_transliteration_does_not_match_clearly_different_names(name: str) -> None:
    hits = [h for h in SanctionsList.parse(SCRIPTS).screen(Party("beneficiary", name)) if h.field == "name"]
    assert not hits or hits[0].score < 80, (name, hits[0].score)


def test_screening_threshold_decides_between_match_and_grey_band(tmp_path: Path) -> None:
    f = facts(100, "USD", "EUR", beneficiary("Ivan Petrovsky"))  # scores 88
    strict = engine(tmp_path, "version: 1\nscreening: {list: sanctions.csv, threshold: 85}").check(f, Exposure())
    assert strict.code == "sanctions_name" and "score 88" in strict.reason
    loose = engine(tmp_path, "version: 1\nscreening: {list: sanctions.csv, threshold: 92, review_from: 85}")
    assert loose.check(f, Exposure()).code == "review_screening"
    off = engine(tmp_path, "version: 1\nscreening: {list: sanctions.csv, threshold: 95}")
    assert off.check(f, Exposure()).outcome is Outcome.APPROVE


# ---------------------------------------------------------------------- rules documents refused


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("version: 1\nlimits:\n  default:\n    max_per_trnasfer: {USD: '1.00'}\n", 4, "unknown key"),
        ("version: 1\nvelocity:\n  per_minute: 3\n", 3, "unknown key"),
        ("version: 1\nlimits:\n  default:\n    daily_outflow:\n      USD: '-5.00'\n", 5, "cannot be negative"),
        ("version: 1\nlimits:\n  default:\n    daily_outflow: {USD: -5}\n", 4, "cannot be negative"),
        ("version: 1\nvelocity:\n  transfers_per_minute_max: -1\n", 3, "greater than or equal to 0"),
        ("version: 1\nreview:\n  above:\n    XYZ: '10.00'\n", 4, "XYZ is not settled on this network"),
        ("version: 1\ncorridors:\n  pairs: [USD/EUR, USD/XXX]\n", 3, "XXX is not settled"),
        ("version: 1\nreview:\n  above: {USD: '1.001'}\n", 3, "is not an amount of USD"),
        ("version: 1\nreview:\n  above: {USD: 1.5}\n", 3, "quoted decimal string"),
        ("version: 1\nlimits:\n  banks:\n    fatlus33: {}\n", 4, "is not a BIC"),
        ("version: 1\ncorridors:\n  countries: [US, Germany]\n", 3, "not an ISO 3166"),
        ("version: 1\nscreening: {list: missing.csv}\n", None, "cannot read the sanctions list"),
        ("version: 1\nscreening: {list: sanctions.csv, threshold: 80, review_from: 90}\n", 2, "above the threshold"),
        ("version: 1\nversion: 1\n", 2, "appears twice"),
        ("limits: {}\n", 1, "version: Field required"),
        ("version: 1\nlimits: [\n", 3, "not valid YAML"),
        ("", 1, "empty"),
    ],
)
def test_bad_rules_are_refused_with_line_and_reason(tmp_path: Path, text: str, line: int | None, reason: str) -> None:
    (tmp_path / "sanctions.csv").write_text(SANCTIONS)
    with pytest.raises(RulesError) as caught:
        load_rules(text, CURRENCIES, base_dir=tmp_path)
    assert caught.value.line == line, caught.value
    assert reason in caught.value.reason, caught.value


@pytest.mark.parametrize(
    ("csv_text", "line", "reason"),
    [
        ("id,name\nX,Y\n", 1, "header must be"),
        (SANCTIONS + "T-9,alien,Someone,,,,TEST\n", 6, "kind 'alien'"),
        (SANCTIONS + "T-9,person,Someone,,,Russia,TEST\n", 6, "ISO 3166"),
        (SANCTIONS + "T-9,bank,,,ABC,,TEST\n", 6, "8 or 11 characters"),
        (SANCTIONS + "T-9,bank,,,ABCDXX12,,TEST\n", 6, "Invalid country code"),
        (SANCTIONS + "T-9,person,,,,,TEST\n", 6, "needs a name or a BIC"),
    ],
)
def test_a_bad_sanctions_list_is_refused_with_its_line(tmp_path: Path, csv_text: str, line: int, reason: str) -> None:
    (tmp_path / "list.csv").write_text(csv_text)
    (tmp_path / "rules.yaml").write_text("version: 1\nscreening: {list: list.csv}\n")
    with pytest.raises(RulesError) as caught:
        load_rules_file(tmp_path / "rules.yaml", CURRENCIES)
    assert (caught.value.line, caught.value.source) == (line, str(tmp_path / "list.csv"))
    assert reason in caught.value.reason


def test_the_demo_rules_load() -> None:
    rules = load_rules_file(Path("scripts/risk/demo-rules.yaml"), ["USD", "EUR", "GBP", "JPY", "CNY", "SGD", "CHF"])
    assert rules.screening.sanctions is not None and rules.review_above["GBP"] == 2_000_000_00
    assert rules.limits_for("LNCTSGSG").max_per_transfer["SGD"] == 2_000_000_00
    assert rules.limits_for("LNCTSGSG").max_per_transfer["USD"] == 5_000_000_00, "the default fills in"
