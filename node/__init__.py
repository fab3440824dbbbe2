"""The Corridor node: the banks' API, the pipeline that takes their transfers to the chain, operations."""

import settlement  # noqa: F401 - sets the process up (the recursion limit): see settlement/__init__.py
