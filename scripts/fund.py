"""Mint settlement assets against reserves and deposit them for a participant (issuer key).

python scripts/fund.py --to 0x... --currency USD --amount 1000000.00
"""

from __future__ import annotations

from scripts._common import Context, parser, run
from settlement import money
from settlement.chain.deployment import fund
from settlement.manifest import Manifest


def main() -> int:
    p = parser("Mint settlement assets against reserves and deposit them for a participant.")
    p.add_argument("--to", required=True, help="the participant's address")
    p.add_argument("--currency", required=True, help="ISO 4217 code, e.g. USD")
    p.add_argument("--amount", required=True, help="amount in major units, e.g. 1000000.00")
    args = p.parse_args()
    amount = money.to_minor(args.amount, args.currency.upper())
    ctx = Context(args)
    manifest = Manifest.load(args.manifest, ctx.chain_id)
    fund(ctx.w3, manifest, ctx.key("issuer"), args.to, args.currency.upper(), amount, log=print)
    return 0


if __name__ == "__main__":
    run(main)
