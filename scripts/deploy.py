"""Deploy Corridor's contracts to a chain and write the deployment manifest.

Compiles the contracts, deploys the settlement vault and one settlement asset per currency
(with its ISO 4217 exponent as decimals), grants the operator and oracle roles to their own
keys and lists the currencies. Beside the manifest it writes ``vault.abi.json``: the vault's
ABI with each event's topic and each error's selector. Run again against the same chain, it deploys nothing twice:
it completes what is missing and prints the manifest.
"""

from __future__ import annotations

from eth_account import Account

from scripts._common import Context, parser, run
from settlement.chain.deployment import (
    DEFAULT_BAND_BPS,
    DEFAULT_CURRENCIES,
    DEFAULT_RATE_MAX_AGE_S,
    RoleAddresses,
    deploy,
    interface_path,
)


def main() -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument(
        "--currencies",
        default=",".join(DEFAULT_CURRENCIES),
        help=f"comma-separated ISO 4217 codes (default {','.join(DEFAULT_CURRENCIES)})",
    )
    p.add_argument(
        "--band-bps",
        type=int,
        default=DEFAULT_BAND_BPS,
        help=f"allowed distance of a quote from the reference rate, bps (default {DEFAULT_BAND_BPS})",
    )
    p.add_argument(
        "--rate-max-age",
        type=int,
        default=DEFAULT_RATE_MAX_AGE_S,
        help=f"oldest usable reference rate, seconds (default {DEFAULT_RATE_MAX_AGE_S})",
    )
    args = p.parse_args()
    ctx = Context(args)
    keys = {role: ctx.key(role) for role in ("admin", "operator", "oracle", "issuer", "relayer", "fee")}
    roles = RoleAddresses(**{role: Account.from_key(k).address for role, k in keys.items()})
    manifest = deploy(
        ctx.w3,
        keys["admin"],
        roles,
        args.manifest,
        currencies=[c.strip() for c in args.currencies.split(",") if c.strip()],
        band_bps=args.band_bps,
        rate_max_age_s=args.rate_max_age,
        log=lambda line: print(line, flush=True),
    )
    print(f"the vault's ABI, events and errors written to {interface_path(args.manifest)}")
    print(f"manifest written to {args.manifest}:")
    print(manifest.to_json(), end="")
    return 0


if __name__ == "__main__":
    run(main)
