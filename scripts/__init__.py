"""The operator's entry points (``python -m scripts.<name>``).

Each is a Corridor process: importing the settlement package first sets the process up for
all of them (see ``settlement/__init__.py``: the recursion limit, the keccak backend).
"""

import settlement  # noqa: F401
