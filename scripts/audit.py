"""The auditor's verifier as a script: ``python scripts/audit.py --rpc-url URL --manifest PATH``.

The same command as ``corridor audit`` (see ``settlement/audit/cli.py``; ``--help`` lists the options).
"""

from __future__ import annotations

from settlement.audit.cli import main

if __name__ == "__main__":
    main()
