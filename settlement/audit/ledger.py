"""The replay: every event of the vault and its assets, in chain order, rebuilt into balances,
and every escrow, settlement and refund checked against the calldata that caused it and the
state in force at that moment (roles, quote signer, reference rates, band, participants).

One ordered pass does both, so "the state in force at that block" is simply the state the
replay holds when it reaches the event.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable

from settlement.audit.cycles import CycleChecks
from settlement.audit.decoding import ResolutionCall, VaultCall
from settlement.audit.report import Check
from settlement.audit.state import (
    BANK,
    FEE_ACCOUNT,
    OPERATOR_ROLE,
    ZERO_ADDRESS,
    EscrowRecord,
    Ledger,
    Movement,
    ParticipantState,
    uetr_text,
)
from settlement.chain.events import Log
from settlement.chain.vault import Action, SignedInstruction
from settlement.conversion import BPS
from settlement.eip712 import Domain, Instruction, recover


class Replay(CycleChecks):
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
        self.cycles = checks["cycles"]
        self.last_cycle = 0
        self._tallies = {}
        self._netted_in_tx = defaultdict(int)

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
        uetr = uetr_text(log.args["id"]) if "id" in log.args else ""
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
        uetr = uetr_text(a["id"])
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
        item: SignedInstruction | None = self._call_item(
            log,
            self._escrows_in_tx,
            "escrows",
            self.authorisation,
            "escrow transaction's calldata is not a vault escrow call (sent through another contract?): signature "
            "cannot be checked",
        )
        return item

    # ------------------------------------------------------------------ resolution

    def _resolution(self, log: Log, check: Check) -> tuple[EscrowRecord | None, ResolutionCall | None]:
        """The open escrow this event resolves, and the call's position behind the event."""
        ident = log.args["id"]
        uetr = uetr_text(ident)
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
        position: ResolutionCall | None = self._call_item(
            log,
            self._resolutions_in_tx,
            "resolutions",
            check,
            "transaction's calldata is not a vault settlement call (sent through another contract?): terms and "
            "quote cannot be checked",
        )
        return record, position

    def _on_InstructionSettled(self, log: Log) -> None:  # noqa: N802
        a = log.args
        self.settlements.checked += 1
        record, position = self._resolution(log, self.settlements)
        self.ledger.settlements.setdefault(a["id"], log)
        if record is None:
            return
        sell_currency, sell_amount, buy_currency = record.sell_currency, record.sell_amount, a["buyCurrency"]
        self._move(log, record.debtor, sell_currency, "settlement (sell leg)", 0, -sell_amount)
        amounts = (sell_amount, a["buyAmount"], a["fee"])
        self._book_provider_and_fee(log, a["liquidityProvider"], (sell_currency, buy_currency), amounts)
        self._move(log, a["creditor"], buy_currency, "settlement (buy leg)", a["buyAmount"], 0)
        self._tally_joined(log, sell_currency, sell_amount)
        if record.signed is not None and position is not None:
            self._check_settlement(log, record.signed.instruction, position)

    def _check_settlement(self, log: Log, ins: Instruction, position: ResolutionCall) -> None:
        a = log.args
        fail = self._failer(self.settlements, uetr_text(a["id"]), log)
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
        quote = position.quote.quote
        self._check_quote(fail, log, ins, quote, position.quote.signature, now)
        if quote.fee_bps > BPS:
            fail("quote's fee above 100 %", fee_bps=quote.fee_bps)
            return
        self._check_figures(fail, log, ins, quote)
        self._check_band(fail, quote, (sell, buy), now)

    def _on_InstructionRefunded(self, log: Log) -> None:  # noqa: N802
        a = log.args
        self.refunds.checked += 1
        record, position = self._resolution(log, self.refunds)
        self.ledger.refunds.setdefault(a["id"], log)
        self._move(log, a["debtor"], a["sellCurrency"], "refund", a["amount"], -a["amount"])
        if record is None:
            return
        fail = self._failer(self.refunds, uetr_text(a["id"]), log)
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

    def _failer(self, check: Check, uetr: str, log: Log) -> Callable[..., None]:
        def fail(message: str, **fields: object) -> None:
            check.fail(message, uetr=uetr, tx=log.tx_hash, block=log.block, **fields)

        return fail
