"""The replay: every event of the vault and its assets, in chain order, rebuilt into balances,
and every escrow, settlement and refund checked against the calldata that caused it and the
state in force at that moment (roles, quote signer, reference rates, band, participants).

One ordered pass does both, so "the state in force at that block" is simply the state the
replay holds when it reaches the event.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from eth_utils.crypto import keccak

from settlement.audit.decoding import ResolutionCall, VaultCall
from settlement.audit.report import Check, major
from settlement.chain.events import Log
from settlement.chain.vault import Action, SignedInstruction
from settlement.conversion import BPS, convert
from settlement.eip712 import Domain, Instruction, id_to_uuid, recover

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
OPERATOR_ROLE = keccak(text="OPERATOR_ROLE")
FEES_ACCRUED_MAX = 2**72 - 1
"""The vault accrues fees per pair in 72 bits and books a fee on the fee account at once when
the accrual would overflow (``_accrueFee``)."""

BANK, LIQUIDITY_PROVIDER, FEE_ACCOUNT = 1, 2, 3
KIND_NAMES = {BANK: "bank", LIQUIDITY_PROVIDER: "liquidity provider", FEE_ACCOUNT: "fee account"}


@dataclass
class ParticipantState:
    kind: int
    bic: str
    active: bool = True
    frozen: bool = False

    def usable_as(self, kind: int) -> bool:
        return self.kind == kind and self.active and not self.frozen


@dataclass(frozen=True, slots=True)
class Movement:
    """One change of one participant's balance in one currency, and what caused it."""

    participant: str
    currency: str
    block: int
    index: int
    tx_hash: str
    kind: str
    uetr: str
    available: int
    escrowed: int


@dataclass
class EscrowRecord:
    log: Log
    signed: SignedInstruction | None
    sell_currency: str
    sell_amount: int
    debtor: str
    resolved_by: Log | None = None


@dataclass
class Ledger:
    """The state rebuilt from events (and what the checks need of it afterwards)."""

    participants: dict[str, ParticipantState] = field(default_factory=dict)
    enabled: set[tuple[str, str]] = field(default_factory=set)
    decimals: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    """Asset address → currency code."""
    balances: dict[tuple[str, str], list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    fees_accrued: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    rates: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    """Pair → (rate, timestamp of its publication)."""
    minted: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    burned: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    vault_received: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    vault_sent: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    movements: list[Movement] = field(default_factory=list)
    escrows: dict[bytes, list[EscrowRecord]] = field(default_factory=lambda: defaultdict(list))
    settlements: dict[bytes, Log] = field(default_factory=dict)
    """The (first) settlement event of each id."""
    refunds: dict[bytes, Log] = field(default_factory=dict)

    def name(self, address: str) -> str:
        p = self.participants.get(address)
        return f"{p.bic} {address}" if p else address

    def amount(self, value: int, currency: str) -> str:
        return f"{major(value, self.decimals.get(currency, 0))} {currency}"


class Replay:
    def __init__(
        self,
        domain: Domain,
        vault: str,
        timestamps: dict[int, int],
        calls: dict[str, VaultCall | None],
        checks: dict[str, Check],
    ) -> None:
        self.domain = domain
        self.vault = vault
        self.fee_account = ZERO_ADDRESS
        self.timestamps = timestamps
        self.calls = calls
        self.ledger = Ledger()
        self.roles: dict[bytes, set[str]] = defaultdict(set)
        self.quote_signer = ZERO_ADDRESS
        self.band_bps = 0
        self.rate_max_age_s = 0
        self.paused = False
        self._escrows_in_tx: dict[str, int] = defaultdict(int)
        self._resolutions_in_tx: dict[str, int] = defaultdict(int)
        self.authorisation = checks["authorisation"]
        self.settlements = checks["settlements"]
        self.refunds = checks["refunds"]
        self.uniqueness = checks["uniqueness"]

    def run(self, logs: Iterable[Log]) -> Ledger:
        for log in logs:
            handler = getattr(self, f"_on_{log.name}", None)
            if handler is not None and (log.address == self.vault or log.name == "Transfer"):
                handler(log)
        return self.ledger

    # ------------------------------------------------------------------ registry and settings

    def _on_CurrencyListed(self, log: Log) -> None:  # noqa: N802 - named after the event
        code = log.args["currency"]
        self.ledger.decimals[code] = log.args["decimals"]
        self.ledger.tokens[log.args["token"]] = code

    def _on_ParticipantRegistered(self, log: Log) -> None:  # noqa: N802
        bic = log.args["bic"].rstrip(b"\0").decode("ascii", "replace")
        self.ledger.participants[log.args["participant"]] = ParticipantState(log.args["kind"], bic)
        if log.args["kind"] == FEE_ACCOUNT:
            # The vault registers its (immutable) fee account in its constructor: the chain, not
            # the manifest, says which account fee legs go to.
            self.fee_account = log.args["participant"]

    def _on_ParticipantCurrencyEnabled(self, log: Log) -> None:  # noqa: N802
        self.ledger.enabled.add((log.args["participant"], log.args["currency"]))

    def _on_ParticipantFrozenSet(self, log: Log) -> None:  # noqa: N802
        p = self.ledger.participants.get(log.args["participant"])
        if p is not None:
            p.frozen = log.args["frozen"]

    def _on_ParticipantActiveSet(self, log: Log) -> None:  # noqa: N802
        p = self.ledger.participants.get(log.args["participant"])
        if p is not None:
            p.active = log.args["active"]

    def _on_PausedSet(self, log: Log) -> None:  # noqa: N802
        self.paused = log.args["paused"]

    def _on_RiskParametersSet(self, log: Log) -> None:  # noqa: N802
        self.band_bps, self.rate_max_age_s = log.args["bandBps"], log.args["rateMaxAge"]

    def _on_QuoteSignerSet(self, log: Log) -> None:  # noqa: N802
        self.quote_signer = log.args["quoteSigner"]

    def _on_RoleGranted(self, log: Log) -> None:  # noqa: N802
        self.roles[log.args["role"]].add(log.args["account"])

    def _on_RoleRevoked(self, log: Log) -> None:  # noqa: N802
        self.roles[log.args["role"]].discard(log.args["account"])

    def _on_ReferenceRatePublished(self, log: Log) -> None:  # noqa: N802
        pair = (log.args["sellCurrency"], log.args["buyCurrency"])
        self.ledger.rates[pair] = (log.args["rate"], self.timestamps[log.block])

    # ------------------------------------------------------------------ money

    def _move(self, log: Log, participant: str, currency: str, kind: str, available: int, escrowed: int) -> None:
        balance = self.ledger.balances[(participant, currency)]
        balance[0] += available
        balance[1] += escrowed
        uetr = _uetr(log.args["id"]) if "id" in log.args else ""
        self.ledger.movements.append(
            Movement(participant, currency, log.block, log.index, log.tx_hash, kind, uetr, available, escrowed)
        )

    def _on_Deposited(self, log: Log) -> None:  # noqa: N802
        self._move(log, log.args["participant"], log.args["currency"], "deposit", log.args["amount"], 0)

    def _on_Withdrawn(self, log: Log) -> None:  # noqa: N802
        self._move(log, log.args["participant"], log.args["currency"], "withdrawal", -log.args["amount"], 0)

    def _on_FeesCollected(self, log: Log) -> None:  # noqa: N802
        pair = (log.args["sellCurrency"], log.args["buyCurrency"])
        self.ledger.fees_accrued[pair] -= log.args["amount"]
        self._move(log, self.fee_account, pair[0], "fee collection", log.args["amount"], 0)

    def _on_Transfer(self, log: Log) -> None:  # noqa: N802
        code = self.ledger.tokens.get(log.address)
        if code is None:
            return
        value, sender, receiver = log.args["value"], log.args["from"], log.args["to"]
        if sender == ZERO_ADDRESS:
            self.ledger.minted[code] += value
        if receiver == ZERO_ADDRESS:
            self.ledger.burned[code] += value
        if receiver == self.vault:
            self.ledger.vault_received[code] += value
        if sender == self.vault:
            self.ledger.vault_sent[code] += value

    # ------------------------------------------------------------------ escrow

    def _on_InstructionEscrowed(self, log: Log) -> None:  # noqa: N802
        a = log.args
        uetr = _uetr(a["id"])
        self._move(log, a["debtor"], a["sellCurrency"], "escrow", -a["sellAmount"], a["sellAmount"])
        signed = self._escrow_call(log)
        record = EscrowRecord(log, signed, a["sellCurrency"], a["sellAmount"], a["debtor"])
        earlier = self.ledger.escrows[a["id"]]
        if earlier:
            self.uniqueness.fail(
                "id escrowed more than once", uetr=uetr, tx=log.tx_hash, first_tx=earlier[0].log.tx_hash
            )
        earlier.append(record)
        self.authorisation.checked += 1
        if signed is None:
            return
        ins = signed.instruction
        fail = self._failer(self.authorisation, uetr, log)
        if (ins.id, ins.debtor, ins.sell_currency.decode(), ins.sell_amount) != (
            a["id"],
            a["debtor"],
            a["sellCurrency"],
            a["sellAmount"],
        ):
            fail(
                "event differs from the escrowed instruction",
                event=f"{a['sellAmount']} {a['sellCurrency']}",
                calldata=f"{ins.sell_amount} {ins.sell_currency.decode()}",
            )
        try:
            signer = recover(self.domain, ins, signed.signature)
        except ValueError as exc:
            signer = f"invalid signature ({exc})"
        if signer != ins.debtor:
            fail("instruction not signed by its debtor", debtor=ins.debtor, signer=signer)
        self._require_usable(fail, "debtor", ins.debtor, BANK)
        if (ins.debtor, a["sellCurrency"]) not in self.ledger.enabled:
            fail("debtor not enabled for the currency", debtor=self.ledger.name(ins.debtor), currency=a["sellCurrency"])
        if self.timestamps[log.block] > ins.deadline:
            fail("escrowed after its deadline", deadline=ins.deadline, block_time=self.timestamps[log.block])
        if self.paused:
            fail("escrowed while the network was paused")

    def _escrow_call(self, log: Log) -> SignedInstruction | None:
        call = self.calls.get(log.tx_hash)
        k = self._escrows_in_tx[log.tx_hash]
        self._escrows_in_tx[log.tx_hash] += 1
        if call is None or k >= len(call.escrows):
            self.authorisation.fail(
                "escrow transaction's calldata is not a vault escrow call (sent through "
                "another contract?): signature cannot be checked",
                uetr=_uetr(log.args["id"]),
                tx=log.tx_hash,
            )
            return None
        return call.escrows[k]

    # ------------------------------------------------------------------ resolution

    def _resolution(self, log: Log, check: Check) -> tuple[EscrowRecord | None, ResolutionCall | None]:
        """The open escrow this event resolves, and the call's position behind the event."""
        ident = log.args["id"]
        uetr = _uetr(ident)
        if ident in self.ledger.settlements or ident in self.ledger.refunds:
            first = self.ledger.settlements.get(ident) or self.ledger.refunds[ident]
            self.uniqueness.fail(
                "id settled or refunded more than once", uetr=uetr, tx=log.tx_hash, first_tx=first.tx_hash
            )
        record = next((r for r in self.ledger.escrows.get(ident, []) if r.resolved_by is None), None)
        if record is None:
            self.uniqueness.fail("settled or refunded without an open escrow", uetr=uetr, tx=log.tx_hash)
        else:
            record.resolved_by = log
        call = self.calls.get(log.tx_hash)
        k = self._resolutions_in_tx[log.tx_hash]
        self._resolutions_in_tx[log.tx_hash] += 1
        if call is None or k >= len(call.resolutions):
            check.fail(
                "transaction's calldata is not a vault settlement call (sent through another contract?): "
                "terms and quote cannot be checked",
                uetr=uetr,
                tx=log.tx_hash,
            )
            return record, None
        return record, call.resolutions[k]

    def _on_InstructionSettled(self, log: Log) -> None:  # noqa: N802
        a = log.args
        self.settlements.checked += 1
        record, position = self._resolution(log, self.settlements)
        self.ledger.settlements.setdefault(a["id"], log)
        if record is None:
            return
        sell_currency, sell_amount, buy_currency = record.sell_currency, record.sell_amount, a["buyCurrency"]
        lp, fee, buy_amount = a["liquidityProvider"], a["fee"], a["buyAmount"]
        self._move(log, record.debtor, sell_currency, "settlement (sell leg)", 0, -sell_amount)
        self._move(log, lp, sell_currency, "settlement (liquidity provider in)", sell_amount - fee, 0)
        if fee:
            pair = (sell_currency, buy_currency)
            if self.ledger.fees_accrued[pair] + fee <= FEES_ACCRUED_MAX:
                self.ledger.fees_accrued[pair] += fee
            else:
                self._move(log, self.fee_account, sell_currency, "fee", fee, 0)
        self._move(log, lp, buy_currency, "settlement (liquidity provider out)", -buy_amount, 0)
        self._move(log, a["creditor"], buy_currency, "settlement (buy leg)", buy_amount, 0)
        if record.signed is not None and position is not None:
            self._check_settlement(log, record.signed.instruction, position)

    def _check_settlement(self, log: Log, ins: Instruction, position: ResolutionCall) -> None:
        a = log.args
        fail = self._failer(self.settlements, _uetr(a["id"]), log)
        now = self.timestamps[log.block]
        sell, buy = ins.sell_currency.decode(), ins.buy_currency.decode()
        if position.action != Action.SETTLE or position.quote is None:
            fail("the call did not settle this position", action=position.action.name)
            return
        if position.terms != ins.terms():
            fail("settled terms differ from the escrowed instruction")
        if (a["creditor"], a["buyCurrency"]) != (ins.creditor, buy):
            fail(
                "paid another creditor or currency than instructed",
                instructed=f"{ins.creditor} {buy}",
                paid=f"{a['creditor']} {a['buyCurrency']}",
            )
        if now > ins.deadline:
            fail("settled after its deadline", deadline=ins.deadline, block_time=now)
        if self.paused:
            fail("settled while the network was paused")
        quote, signature = position.quote.quote, position.quote.signature
        try:
            signer = recover(self.domain, quote, signature)
        except ValueError as exc:
            signer = f"invalid signature ({exc})"
        if signer != self.quote_signer:
            fail("quote not signed by the oracle's quote key in force", signer=signer, quote_signer=self.quote_signer)
        if (quote.sell_currency, quote.buy_currency) != (ins.sell_currency, ins.buy_currency):
            fail("quote is for another pair", quote=f"{quote.sell_currency.decode()}/{quote.buy_currency.decode()}")
        if quote.liquidity_provider != a["liquidityProvider"]:
            fail("liquidity provider differs from the quote's", quote=quote.liquidity_provider)
        self._require_usable(fail, "liquidity provider", a["liquidityProvider"], LIQUIDITY_PROVIDER)
        self._require_usable(fail, "debtor", ins.debtor, BANK)
        self._require_usable(fail, "creditor", a["creditor"], BANK)
        if now > quote.expiry:
            fail("quote had expired", expiry=quote.expiry, block_time=now)
        if quote.fee_bps > BPS:
            fail("quote's fee above 100 %", fee_bps=quote.fee_bps)
            return
        expected = convert(
            ins.sell_amount,
            quote.rate,
            quote.fee_bps,
            self.ledger.decimals.get(sell, 0),
            self.ledger.decimals.get(buy, 0),
        )
        if (expected.buy_amount, expected.fee) != (a["buyAmount"], a["fee"]):
            fail(
                "booked figures differ from the conversion at the quoted rate",
                expected=self._figures(expected.buy_amount, buy, expected.fee, sell),
                booked=self._figures(a["buyAmount"], buy, a["fee"], sell),
                rate=quote.rate,
                fee_bps=quote.fee_bps,
            )
        if a["buyAmount"] < ins.min_buy_amount:
            fail(
                "creditor received less than the instructed minimum",
                minimum=self.ledger.amount(ins.min_buy_amount, buy),
                paid=self.ledger.amount(a["buyAmount"], buy),
            )
        reference = self.ledger.rates.get((sell, buy))
        if reference is None:
            fail("no reference rate published for the pair", pair=f"{sell}/{buy}")
            return
        ref_rate, published_at = reference
        if now > published_at + self.rate_max_age_s:
            fail(
                "reference rate in force was stale",
                published_at=published_at,
                block_time=now,
                rate_max_age_s=self.rate_max_age_s,
            )
        if abs(quote.rate - ref_rate) * BPS > ref_rate * self.band_bps:
            fail(
                "rate outside the band around the reference rate",
                rate=quote.rate,
                reference_rate=ref_rate,
                band_bps=self.band_bps,
            )

    def _on_InstructionRefunded(self, log: Log) -> None:  # noqa: N802
        a = log.args
        self.refunds.checked += 1
        record, position = self._resolution(log, self.refunds)
        self.ledger.refunds.setdefault(a["id"], log)
        self._move(log, a["debtor"], a["sellCurrency"], "refund", a["amount"], -a["amount"])
        if record is None:
            return
        fail = self._failer(self.refunds, _uetr(a["id"]), log)
        if (record.debtor, record.sell_currency, record.sell_amount) != (a["debtor"], a["sellCurrency"], a["amount"]):
            fail(
                "refund differs from the escrow",
                escrowed=f"{record.sell_amount} {record.sell_currency}",
                refunded=f"{a['amount']} {a['sellCurrency']}",
            )
        if self.paused:
            fail("refunded while the network was paused")
        if record.signed is None or position is None:
            return
        ins = record.signed.instruction
        if position.action != Action.REFUND or position.terms != ins.terms():
            fail("the call's terms differ from the escrowed instruction", action=position.action.name)
        now = self.timestamps[log.block]
        if now <= ins.deadline and a["by"] not in self.roles[OPERATOR_ROLE]:
            fail(
                "refunded before its deadline by someone without the operator role",
                by=a["by"],
                deadline=ins.deadline,
                block_time=now,
            )

    # ------------------------------------------------------------------ helpers

    def _require_usable(self, fail: Callable[..., None], role: str, address: str, kind: int) -> None:
        """The participant was registered as ``kind``, active and not frozen at this point of the replay."""
        p = self.ledger.participants.get(address)
        if p is None or not p.usable_as(kind):
            fail(
                f"{role} was not an active, unfrozen {KIND_NAMES[kind]}",
                state=_state(p),
                **{role.replace(" ", "_"): self.ledger.name(address)},
            )

    def _figures(self, buy_amount: int, buy: str, fee: int, sell: str) -> str:
        return f"buy {self.ledger.amount(buy_amount, buy)}, fee {self.ledger.amount(fee, sell)}"

    def _failer(self, check: Check, uetr: str, log: Log) -> Callable[..., None]:
        def fail(message: str, **fields: object) -> None:
            check.fail(message, uetr=uetr, tx=log.tx_hash, block=log.block, **fields)

        return fail


def _is_uetr(value: object) -> bool:
    return isinstance(value, bytes) and len(value) == 32 and value[16:] == b"\0" * 16


def _uetr(value: bytes) -> str:
    return str(id_to_uuid(value)) if _is_uetr(value) else "0x" + value.hex()


def _state(p: ParticipantState | None) -> str:
    if p is None:
        return "not registered"
    flags = [KIND_NAMES.get(p.kind, str(p.kind))]
    if not p.active:
        flags.append("inactive")
    if p.frozen:
        flags.append("frozen")
    return ", ".join(flags)
