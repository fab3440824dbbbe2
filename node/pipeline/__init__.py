"""The pipeline: RECEIVED transfers are risk-checked and queued; queued ones are priced and
settled in net cycles, as many as the balances fund net (:mod:`node.pipeline.net`). Transfers
held for review (or all of them on a node that settles gross) are escrowed in batches and
settled (or, after their deadline, refunded) in batches.

Each stage reads from the store, talks to the chain outside any database transaction (so the
bank API is never held up by the node's RPC calls), then writes its decision and the signed
transaction in one short transaction, and only then broadcasts (see :mod:`node.chain.sender`).
Every batch is first run once on the chain's node (:meth:`node.pipeline.base.Stage._estimate`), which also
gives its gas: a position the vault would refuse is named
by the vault's custom error (``InstructionNonceUsed``, ``BuyAmountBelowMinimum`` ...) and
taken out, so one bad instruction never sinks a batch. States that claim something happened
on chain are written by the watcher alone, from events.
"""

from __future__ import annotations

from node.pipeline.base import RESOLVED_EVENTS, PipelineSettings
from node.pipeline.escrow import EscrowStage
from node.pipeline.net import NetStage
from node.pipeline.release import ReleaseStage
from node.pipeline.resolve import ResolveStage


class Pipeline(EscrowStage, NetStage, ResolveStage, ReleaseStage):
    """Every stage, over one set of services and settings (the worker runs its rounds)."""


__all__ = ["RESOLVED_EVENTS", "Pipeline", "PipelineSettings"]
