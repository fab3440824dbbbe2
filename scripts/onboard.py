"""Register a bank or liquidity provider in the settlement vault (operator key).

python scripts/onboard.py --address 0x... --kind bank --bic DEUTDEFF --currencies EUR,USD
"""

from __future__ import annotations

from scripts._common import Context, parser, run
from settlement.chain.deployment import onboard
from settlement.manifest import Manifest


def main() -> int:
    p = parser("Register a bank or liquidity provider in the settlement vault (operator key).")
    p.add_argument("--address", required=True, help="the participant's address (its signing key)")
    p.add_argument("--kind", required=True, choices=["bank", "lp"], help="bank or liquidity provider")
    p.add_argument("--bic", required=True, help="ISO 9362 BIC, 8 or 11 characters")
    p.add_argument("--currencies", required=True, help="comma-separated ISO 4217 codes to enable")
    args = p.parse_args()
    ctx = Context(args)
    manifest = Manifest.load(args.manifest, ctx.chain_id)
    onboard(
        ctx.w3,
        manifest,
        ctx.key("operator"),
        args.address,
        args.kind,
        args.bic,
        [c.strip() for c in args.currencies.split(",") if c.strip()],
        log=print,
    )
    print(f"{args.address} is a registered {args.kind}")
    return 0


if __name__ == "__main__":
    run(main)
