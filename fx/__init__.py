"""Foreign exchange: rates, quotes and the exact conversion the contracts use."""

import settlement  # noqa: F401 - sets the process up (the recursion limit): see settlement/__init__.py
