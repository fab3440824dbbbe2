"""One exception root for Corridor, and the contracts' custom errors as Python classes.

Each exception also inherits the builtin it resembles, as web3.py does, so that callers
may catch ``ValueError`` or ``LookupError`` where that is what they mean. Every custom
error the contracts define is decoded into a class of its own (a subclass of
:class:`ContractError`) whose ``fields`` carry the error's named arguments: a caller never
parses revert data.
"""

from __future__ import annotations

from typing import Any, ClassVar


class CorridorError(Exception):
    """Root of every error Corridor raises on purpose."""


class ConfigurationError(CorridorError, ValueError):
    """A setting, key, manifest or argument is missing or wrong."""


class ManifestError(ConfigurationError):
    """The deployment manifest is missing, unreadable or for another chain."""


class KeyError_(ConfigurationError):
    """A private key could not be found or decrypted."""


class RulesError(ConfigurationError):
    """A rules document (or the sanctions list it names) that cannot be used, with where and why."""

    def __init__(self, source: str, line: int | None, reason: str) -> None:
        self.source, self.line, self.reason = source, line, reason
        where = f"{source}, line {line}" if line is not None else source
        super().__init__(f"{where}: {reason}")


class ChainError(CorridorError):
    """The chain could not be reached or answered in a way we cannot use."""


class RpcUnreachableError(ChainError, ConnectionError):
    """No JSON-RPC endpoint answers at the URL."""


class InsufficientGasFundsError(ChainError):
    """The sending key has no ether to pay for gas."""


class TransactionFailedError(ChainError):
    """A transaction was mined but reverted without a custom error we know."""


class MoneyError(CorridorError, ValueError):
    """An amount or currency is invalid."""


class UnknownCurrencyError(MoneyError, LookupError):
    """Not an ISO 4217 code Corridor knows."""


class AmountError(MoneyError):
    """An amount is not a positive, finite number with the currency's decimals."""


class ContractError(ChainError):
    """A contract call reverted with one of the contracts' custom errors.

    Subclasses are made per error name by :func:`contract_error_class`; ``fields`` maps
    each argument name to its decoded value.
    """

    error_name: ClassVar[str] = ""

    def __init__(self, fields: dict[str, Any]) -> None:
        self.fields = fields
        args = ", ".join(f"{k}={_show(v)}" for k, v in fields.items())
        super().__init__(f"{self.error_name}({args})")


_CLASSES: dict[str, type[ContractError]] = {}


def contract_error_class(name: str) -> type[ContractError]:
    """The exception class for the contracts' custom error ``name`` (made once, then reused)."""
    cls = _CLASSES.get(name)
    if cls is None:
        cls = type(name, (ContractError,), {"error_name": name, "__module__": __name__})
        _CLASSES[name] = cls
    return cls


class SlotOccupied(ContractError):
    """The escrow slot holds another batch (one the node's store does not know of)."""

    error_name = "SlotOccupied"


class InstructionNonceUsed(ContractError):
    """The debtor's nonce was used by another instruction."""

    error_name = "InstructionNonceUsed"


class ParticipantNotUsable(ContractError):
    """A participant is not registered, inactive, frozen or without the currency."""

    error_name = "ParticipantNotUsable"


class InsufficientAvailable(ContractError):
    """A participant's available balance does not cover the movement."""

    error_name = "InsufficientAvailable"


for _known in (SlotOccupied, InstructionNonceUsed, ParticipantNotUsable, InsufficientAvailable):
    _CLASSES[_known.error_name] = _known


def _show(value: Any) -> str:
    if isinstance(value, bytes):
        printable = value.rstrip(b"\0")
        if printable and all(32 <= b < 127 for b in printable) and len(value) <= 11:
            return repr(printable.decode())
        return "0x" + value.hex()
    return repr(value)
