"""The Python conversion equals the deployed contract's, to the unit, for random inputs."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fx.conversion import convert
from scripts.network import Network

pytestmark = pytest.mark.devnet

CASES = 2000

amounts = st.one_of(st.integers(1, 10**6), st.integers(1, 10**18 * 10**3), st.integers(1, 2**128 - 1))
# 10^-4 to 10^4 at 18 decimals, plus the edges of the type.
rates = st.one_of(st.integers(10**14, 10**22), st.integers(1, 2**128 - 1))
decimals = st.sampled_from([0, 2, 3]) | st.integers(0, 18)


@settings(max_examples=CASES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(amount=amounts, rate=rates, fee_bps=st.integers(0, 10_000), sd=decimals, bd=decimals)
def test_python_conversion_equals_contract(
    network: Network, amount: int, rate: int, fee_bps: int, sd: int, bd: int
) -> None:
    on_chain = network.vault.contract.functions.previewConversion(amount, rate, fee_bps, sd, bd).call()
    assert tuple(convert(amount, rate, fee_bps, sd, bd)) == tuple(on_chain)
