"""Corridor's settlement domain: money, signed instructions and quotes, chain access."""

import os

# Keccak-256 through safe-pysha3 (a C extension, about 2 µs a hash) rather than pycryptodome
# (about 15 µs), which eth-hash would pick first: an instruction is hashed several times on
# its way, and the bank API's batches spent a third of their time here. eth-hash reads this
# the first time it hashes; a value set by the operator is kept.
os.environ.setdefault("ETH_HASH_BACKEND", "pysha3")
