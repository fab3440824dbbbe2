"""Foreign exchange: rates, quotes and the exact conversion the contracts use."""
