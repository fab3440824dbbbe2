"""Corridor's settlement domain: money, signed instructions and quotes, chain access."""
