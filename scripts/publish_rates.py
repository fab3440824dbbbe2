"""Publish current reference rates to the vault's on-chain rate book (oracle key).

Only the pairs whose rate changed, or whose on-chain copy is older than --refresh-after-s
(default: half the vault's maximum rate age), are sent, all in one transaction; when
nothing changed, nothing is sent. Rates come from the providers CORRIDOR_FX_* configures
(live, then ECB, then the operator's static file). Exit 0 when every pair was priced,
1 when some had no rate (they keep their on-chain rate), 2 on an error.

python scripts/publish_rates.py --devnet
"""

from __future__ import annotations

from fx.config import build_provider
from fx.publisher import publish_reference_rates
from fx.rates import format_rate
from scripts._common import Context, parser, run
from settlement.chain import Sender
from settlement.chain.vault import Vault
from settlement.manifest import Manifest


def main() -> int:
    p = parser("Publish current reference rates to the vault (only those that changed, in one transaction).")
    p.add_argument("--currencies", help="comma-separated codes (default: every deployed currency)")
    p.add_argument("--refresh-after-s", type=int, help="republish an unchanged rate this old on chain")
    args = p.parse_args()
    ctx = Context(args)
    manifest = Manifest.load(args.manifest, ctx.chain_id)
    codes = [c.strip().upper() for c in args.currencies.split(",")] if args.currencies else None
    result = publish_reference_rates(
        Vault(ctx.w3, manifest),
        Sender.from_key(ctx.w3, ctx.key("oracle")),
        build_provider(),
        codes=codes,
        refresh_after_s=args.refresh_after_s,
    )
    for r in result.published:
        print(f"  {r.sell}/{r.buy} {format_rate(r.rate, 8):>20}  {r.source}")
    for (s, b), reason in sorted(result.missing.items()):
        print(f"  {s}/{b} {'no rate':>20}  {reason}")
    if result.tx_hash:
        print(
            f"published {len(result.published)} rates in {result.tx_hash} (block {result.block_number}); "
            f"{result.unchanged} unchanged"
        )
    else:
        print(f"nothing to publish: {result.unchanged} rates unchanged")
    return 1 if result.missing else 0


if __name__ == "__main__":
    run(main)
