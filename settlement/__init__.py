"""Corridor's settlement domain: money, signed instructions and quotes, chain access.

Importing this package sets up the process for every Corridor entry point (node, worker,
CLIs, auditor, scripts), each of which imports it before it does any work.
"""

import os
import sys

# Keccak-256 through safe-pysha3 (a C extension, about 2 µs a hash) rather than pycryptodome
# (about 15 µs), which eth-hash would pick first: an instruction is hashed several times on
# its way. eth-hash reads this the first time it hashes; a value set by the operator is kept.
os.environ.setdefault("ETH_HASH_BACKEND", "pysha3")

RECURSION_LIMIT = 1_000
"""Python's own default, which the C stack of the main thread and of worker threads holds."""

# py_ecc (imported by eth-account and web3) raises the interpreter's recursion limit to
# 100,000 when it is first imported. Recursive parsers (json's C scanner, YAML, XML) then
# recurse past the C stack on deeply nested input and the process dies of a segmentation
# fault instead of raising RecursionError: one request could stop the node. py_ecc is
# imported here first, so that its change happens now and is undone at once; a module is
# imported once, so no later import can raise the limit again.
try:
    import py_ecc  # noqa: F401
except ImportError:  # an eth-account without it changes nothing
    pass
sys.setrecursionlimit(RECURSION_LIMIT)
