"""Rate providers: ECB offline, forex-python live against a local fake server, static file, composite."""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from fx.config import FxSettings, build_provider
from fx.errors import (
    FxCurrencyError,
    FxError,
    PricingConfigError,
    ProviderUnavailableError,
    RateUnavailableError,
    SameCurrencyError,
    StaleRateError,
)
from fx.providers import CompositeProvider, EcbProvider, LiveProvider, Preference, StaticProvider
from fx.rates import Rate, format_rate, to_fixed
from scripts.devnet import free_port

UTC = dt.UTC


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).astimezone(UTC)


# ---------------------------------------------------------------------------------------- ECB


def test_ecb_rate_is_the_published_fixing_with_its_date() -> None:
    # ECB, 2 January 2024: 1 EUR = 1.0956 USD = 155.68 JPY.
    rate = EcbProvider().rate("EUR", "USD", at("2024-01-02T18:00:00+01:00"))
    assert rate.rate == to_fixed(Decimal("1.0956"))
    assert rate.as_of == at("2024-01-02T16:00:00+01:00")
    assert "fixing of 2024-01-02" in rate.source and "cross" not in rate.source


def test_ecb_cross_rate_goes_through_eur() -> None:
    rate = EcbProvider().rate("USD", "JPY", at("2024-01-02T18:00:00+01:00"))
    assert rate.rate == to_fixed(Decimal("155.68") / Decimal("1.0956"))
    assert "cross via EUR" in rate.source


def test_ecb_weekend_uses_fridays_fixing_and_says_so() -> None:
    sunday = at("2024-01-07T12:00:00+01:00")
    rate = EcbProvider().rate("EUR", "USD", sunday)
    assert rate.as_of.date() == dt.date(2024, 1, 5)
    assert "fixing of 2024-01-05" in rate.source
    assert rate.age_s(sunday) > 40 * 3600


def test_ecb_before_the_days_publication_uses_the_previous_fixing() -> None:
    morning = at("2024-01-03T09:00:00+01:00")
    assert EcbProvider().rate("EUR", "USD", morning).as_of.date() == dt.date(2024, 1, 2)


def test_ecb_holiday_uses_the_last_fixing() -> None:
    # 1 May is a TARGET holiday: no fixing.
    rate = EcbProvider().rate("EUR", "USD", at("2024-05-01T20:00:00+02:00"))
    assert rate.as_of.date() == dt.date(2024, 4, 30)


def test_ecb_has_no_rate_for_currencies_it_does_not_fix() -> None:
    with pytest.raises(RateUnavailableError, match="KWD"):
        EcbProvider().rate("USD", "KWD", at("2024-01-02T18:00:00+01:00"))


# ----------------------------------------------------------------------------- live (fake server)


class FakeRates:
    """A stand-in for forex-python's endpoint: answers /latest?base=... from a table."""

    def __init__(self) -> None:
        self.rates = {"USD": {"JPY": "155.25", "EUR": "0.9123"}}
        self.status = 200
        self.delay_s = 0.0
        self.requests: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                fake.requests.append(self.path)
                time.sleep(fake.delay_s)
                base = self.path.split("base=")[1].split("&")[0]
                body = json.dumps({"base": base, "date": "2026-11-20", "rates": fake.rates.get(base, {})}).encode()
                try:
                    self.send_response(fake.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    return  # the client gave up waiting, as the timeout tests want it to

            def log_message(self, *_: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def fake() -> Iterator[FakeRates]:
    server = FakeRates()
    yield server
    server.server.shutdown()


NOW = at("2026-11-23T10:00:00+00:00")


def test_live_rate_from_the_endpoint(fake: FakeRates) -> None:
    rate = LiveProvider(fake.url, timeout_s=1).rate("USD", "JPY", NOW)
    assert rate.rate == 155_250_000_000_000_000_000
    assert rate.as_of == NOW and "forex-python" in rate.source and "2026-11-20" in rate.source
    assert fake.requests == ["/api/latest?base=USD&rtype=fpy"]


def test_live_answers_are_cached_per_base_for_their_ttl(fake: FakeRates) -> None:
    live = LiveProvider(fake.url, timeout_s=1, cache_ttl_s=10)
    live.rate("USD", "JPY", NOW)
    live.rate("USD", "EUR", NOW + dt.timedelta(seconds=5))
    assert len(fake.requests) == 1
    fake.rates["USD"]["JPY"] = "156"
    assert live.rate("USD", "JPY", NOW + dt.timedelta(seconds=11)).rate == 156 * 10**18
    assert len(fake.requests) == 2


def test_live_never_waits_longer_than_its_timeout(fake: FakeRates) -> None:
    fake.delay_s = 3
    live = LiveProvider(fake.url, timeout_s=0.3)
    started = time.monotonic()
    with pytest.raises(ProviderUnavailableError, match="no answer within 0.3 s"):
        live.rate("USD", "JPY", NOW)
    assert time.monotonic() - started < 1.5  # the bound is 0.3 s; far below the server's 3 s


def test_live_http_error_is_unavailable_then_not_retried_until_later(fake: FakeRates) -> None:
    fake.status = 503
    live = LiveProvider(fake.url, timeout_s=1, retry_after_s=30)
    with pytest.raises(ProviderUnavailableError, match="HTTP 503"):
        live.rate("USD", "JPY", NOW)
    with pytest.raises(ProviderUnavailableError, match="next try after"):
        live.rate("USD", "JPY", NOW + dt.timedelta(seconds=10))
    assert len(fake.requests) == 1
    fake.status = 200
    assert live.rate("USD", "JPY", NOW + dt.timedelta(seconds=31)).rate > 0


def test_live_with_the_network_unreachable() -> None:
    live = LiveProvider(f"http://127.0.0.1:{free_port()}/api/", timeout_s=1)  # nothing listens there
    with pytest.raises(ProviderUnavailableError, match="connection failed"):
        live.rate("USD", "JPY", NOW)


def test_live_pair_missing_from_the_answer(fake: FakeRates) -> None:
    with pytest.raises(RateUnavailableError, match="USD/GBP"):
        LiveProvider(fake.url, timeout_s=1).rate("USD", "GBP", NOW)


def test_live_timeout_above_two_seconds_is_refused() -> None:
    with pytest.raises(PricingConfigError, match="2 s"):
        LiveProvider("http://127.0.0.1:1/", timeout_s=2.5)


# ------------------------------------------------------------------------------------ static file


def write_static(path: Path, body: str) -> Path:
    path.write_text(body)
    return path


def test_static_rates_direct_and_inverse(tmp_path: Path) -> None:
    f = write_static(
        tmp_path / "rates.toml",
        'as_of = 2026-11-23T08:00:00Z\nsource = "treasury desk"\n[rates]\n"USD/KWD" = "0.3075"\n',
    )
    static = StaticProvider(f)
    direct = static.rate("USD", "KWD", NOW)
    assert direct.rate == 307_500_000_000_000_000 and direct.as_of == at("2026-11-23T08:00:00Z")
    assert "treasury desk" in direct.source
    assert static.rate("KWD", "USD", NOW).rate == to_fixed(1 / Decimal("0.3075"))
    with pytest.raises(RateUnavailableError):
        static.rate("USD", "EUR", NOW)


def test_static_file_is_read_again_when_it_changes(tmp_path: Path) -> None:
    f = write_static(tmp_path / "rates.toml", 'as_of = 2026-11-23T08:00:00Z\n[rates]\n"USD/KWD" = "0.3075"\n')
    static = StaticProvider(f)
    assert static.rate("USD", "KWD", NOW).rate == 307_500_000_000_000_000
    write_static(f, 'as_of = 2026-11-23T09:00:00Z\n[rates]\n"USD/KWD" = "0.3080"\n')
    os.utime(f, (time.time() + 5, time.time() + 5))
    assert static.rate("USD", "KWD", NOW).rate == 308_000_000_000_000_000


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('as_of = 2026-11-23T08:00:00Z\ncolour = "red"\n', "unknown key"),
        ('[rates]\n"USD/KWD" = "0.3"\n', "as_of must be a TOML date-time"),
        ('as_of = 2026-11-23T08:00:00\n[rates]\n"USD/KWD" = "0.3"\n', "with a zone"),
        ('as_of = 2026-11-23T08:00:00Z\n[rates]\n"USD/KWD" = 0.3075\n', "decimal string"),
        ('as_of = 2026-11-23T08:00:00Z\n[rates]\n"USDKWD" = "0.3"\n', "SELL/BUY"),
        ('as_of = 2026-11-23T08:00:00Z\n[rates]\n"USD/XXX" = "0.3"\n', "XXX"),
        ('as_of = 2026-11-23T08:00:00Z\n[rates]\n"USD/KWD" = "-1"\n', "positive"),
        ('as_of = 2026-11-23T08:00:00Z\n[rates]\n"USD/KWD" = "abc"\n', "not a number"),
        ("as_of = \n", "static rates file"),
    ],
)
def test_static_file_errors_name_the_problem(tmp_path: Path, body: str, message: str) -> None:
    f = write_static(tmp_path / "rates.toml", body)
    with pytest.raises(PricingConfigError, match=message):
        StaticProvider(f).rate("USD", "KWD", NOW)


def test_static_file_missing_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(ProviderUnavailableError, match="cannot be read"):
        StaticProvider(tmp_path / "nope.toml").rate("USD", "KWD", NOW)


# -------------------------------------------------------------------------------------- composite


class Fixed:
    def __init__(self, name: str, rate: int | None = None, as_of: dt.datetime = NOW, down: bool = False) -> None:
        self.name, self._rate, self._as_of, self._down = name, rate, as_of, down
        self.calls = 0

    def rate(self, sell: str, buy: str, now: dt.datetime) -> Rate:
        self.calls += 1
        if self._down:
            raise ProviderUnavailableError(f"{self.name} is down")
        if self._rate is None:
            raise RateUnavailableError(f"{self.name} has no {sell}/{buy}")
        return Rate(sell, buy, self._rate, f"{self.name} rate", self._as_of, self.name)


def test_composite_prefers_the_first_provider() -> None:
    first, second = Fixed("live", 2 * 10**18), Fixed("ecb", 3 * 10**18)
    rate = CompositeProvider([Preference(first, 60), Preference(second, 60)]).rate("USD", "EUR", NOW)
    assert (rate.rate, rate.source, second.calls) == (2 * 10**18, "live rate", 0)


def test_composite_falls_back_and_says_why() -> None:
    composite = CompositeProvider([Preference(Fixed("live", down=True), 60), Preference(Fixed("ecb", 10**18), 60)])
    rate = composite.rate("USD", "EUR", NOW)
    assert rate.provider == "ecb"
    assert rate.source == "ecb rate [fallback: live: live is down]"


def test_composite_skips_a_stale_rate_for_a_fresh_one() -> None:
    old = Fixed("live", 2 * 10**18, as_of=NOW - dt.timedelta(minutes=10))
    composite = CompositeProvider([Preference(old, 300), Preference(Fixed("ecb", 10**18), 86400)])
    rate = composite.rate("USD", "EUR", NOW)
    assert rate.provider == "ecb" and "live rate is 600 s old, allowed 300 s" in rate.source


def test_composite_stale_everywhere_is_an_error_not_an_answer() -> None:
    old = Fixed("ecb", 10**18, as_of=NOW - dt.timedelta(days=9))
    composite = CompositeProvider([Preference(Fixed("live", down=True), 60), Preference(old, 5 * 86400)])
    with pytest.raises(StaleRateError, match=r"ecb rate is 9.0 days old, allowed 5.0 days"):
        composite.rate("USD", "EUR", NOW)


def test_composite_all_down_and_none_covering() -> None:
    down = CompositeProvider([Preference(Fixed("a", down=True), 60), Preference(Fixed("b", down=True), 60)])
    with pytest.raises(ProviderUnavailableError, match="no rate provider could be reached"):
        down.rate("USD", "EUR", NOW)
    none = CompositeProvider([Preference(Fixed("a"), 60), Preference(Fixed("b", down=True), 60)])
    with pytest.raises(RateUnavailableError, match="no provider has a USD/EUR rate") as info:
        none.rate("USD", "EUR", NOW)
    assert not isinstance(info.value, ProviderUnavailableError)


@pytest.mark.parametrize(
    ("sell", "buy", "error"),
    [
        ("usd", "EUR", FxCurrencyError),
        ("USD", "XYZ", FxCurrencyError),
        ("US", "EUR", FxCurrencyError),
        ("USD", "USD", SameCurrencyError),
    ],
)
def test_composite_checks_the_pair(sell: str, buy: str, error: type[FxError]) -> None:
    with pytest.raises(error):
        CompositeProvider([Preference(Fixed("a", 10**18), 60)]).rate(sell, buy, NOW)


def test_default_chain_falls_back_from_an_unreachable_live_feed_to_ecb(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORRIDOR_FX_LIVE_URL", f"http://127.0.0.1:{free_port()}/api/")
    rate = build_provider().rate("USD", "JPY", NOW)
    assert rate.provider == "ecb" and "[fallback: live: forex-python unreachable" in rate.source


def test_production_refuses_the_offline_ecb_history_when_old(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORRIDOR_ENVIRONMENT", "production")
    monkeypatch.setenv("CORRIDOR_FX_PROVIDERS", "ecb")
    settings = FxSettings()
    assert settings.max_age_s("ecb") == 5.5 * 86400
    a_year_later = at("2028-01-10T12:00:00+00:00")
    with pytest.raises(StaleRateError, match="allowed 5.5 days"):
        build_provider(settings).rate("USD", "JPY", a_year_later)


@pytest.mark.parametrize(
    ("env", "value", "message"),
    [
        ("CORRIDOR_FX_PROVIDERS", "ecb,bloomberg", "at most once"),
        ("CORRIDOR_FX_PROVIDERS", "ecb,ecb", "at most once"),
        ("CORRIDOR_FX_LIVE_TIMEOUT_S", "5", "LIVE_TIMEOUT_S"),
        ("CORRIDOR_ENVIRONMENT", "staging", "^CORRIDOR_ENVIRONMENT: Input should be 'devnet' or 'production'"),
    ],
)
def test_settings_errors(monkeypatch: pytest.MonkeyPatch, env: str, value: str, message: str) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(PricingConfigError, match=message):
        build_provider()


def test_format_rate_cuts_not_rounds() -> None:
    assert format_rate(155_999_999_999_999_999_999, 6) == "155.999999"
    assert format_rate(10**18 // 3, 4) == "0.3333"
