"""The FX engine's errors: one root, :class:`FxError`, and a class per thing that went wrong.

Each class also inherits the Corridor error (and so the builtin) it resembles: an unknown
currency given to the FX engine is an :class:`FxError` *and* a
:class:`settlement.errors.UnknownCurrencyError` (a ``LookupError``). Messages say what was
wrong and what is allowed.
"""

from __future__ import annotations

from settlement.errors import AmountError, ConfigurationError, CorridorError, UnknownCurrencyError


class FxError(CorridorError):
    """Root of every error the FX engine raises on purpose."""


class FxCurrencyError(FxError, UnknownCurrencyError):
    """A currency code is malformed or not one Corridor lists."""


class SameCurrencyError(FxError, ValueError):
    """Both sides of a pair are the same currency."""


class FxAmountError(FxError, AmountError):
    """An amount is zero, negative, not a finite number, too large, or has too many decimals."""


class RateUnavailableError(FxError, LookupError):
    """No configured provider has a rate for the pair."""


class ProviderUnavailableError(RateUnavailableError):
    """A provider could not be asked (network down, timeout, bad answer)."""


class StaleRateError(FxError):
    """The only rates found are older than their provider's allowed age."""


class PricingConfigError(FxError, ConfigurationError):
    """The pricing or rates configuration (spreads, tiers, static rates file) is invalid."""


class QuoteError(FxError, ValueError):
    """A quote cannot be made or does not verify."""


class QuoteExpiredError(QuoteError):
    """The quote's expiry has passed."""


class QuoteSignatureError(QuoteError):
    """The quote was not signed by the expected quote key: it was altered or forged."""


class QuoteAmountsError(QuoteError):
    """The quote's amounts do not follow from its rate and fee: it was altered."""
