from tests.node.conftest import chain  # noqa: F401 - the devnet with interval mining, shared
