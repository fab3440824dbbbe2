"""The Python conversion equals the deployed contract's, to the unit, for random inputs.

Amounts up to 10^15 major units, rates from 10^-4 to 10^4 (and the edges of the types),
fees of 0 to 10,000 bps, exponents 0 (JPY), 2 and 3 (KWD) and the rest of 0..18.
"""

from __future__ import annotations

import itertools

import pytest
import requests
from eth_abi.abi import decode, encode
from eth_utils.crypto import keccak
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scripts.network import Network
from settlement.conversion import convert

pytestmark = pytest.mark.devnet

CASES = 10_000

exponents = st.sampled_from([0, 2, 3]) | st.integers(0, 18)


@st.composite
def conversions(draw: st.DrawFn) -> tuple[int, int, int, int, int]:
    sd, bd = draw(exponents), draw(exponents)
    amount = draw(
        st.one_of(
            st.integers(1, 10**6),  # small payments, where rounding shows most
            st.integers(1, 10**15 * 10**sd),  # up to 10^15 major units
            st.integers(1, 2**128 - 1),  # the edge of the type
        )
    )
    rate = draw(st.one_of(st.integers(10**14, 10**22), st.integers(1, 2**128 - 1)))
    fee_bps = draw(st.one_of(st.integers(0, 100), st.integers(0, 10_000)))
    return amount, rate, fee_bps, sd, bd


_SELECTOR = keccak(text="previewConversion(uint256,uint256,uint256,uint8,uint8)")[:4]
_ARGS = ["uint256", "uint256", "uint256", "uint8", "uint8"]


class PreviewConversion:
    """``previewConversion`` by raw ``eth_call`` on one kept-alive connection.

    The same call as ``vault.contract.functions.previewConversion(...).call()``, without
    web3.py's per-call overhead, so that ten thousand cases take seconds, not minutes.
    """

    def __init__(self, network: Network) -> None:
        self.url = network.w3.provider.endpoint_uri  # type: ignore[attr-defined]
        self.vault = network.manifest.vault
        self.session = requests.Session()
        self.ids = itertools.count()

    def __call__(self, *args: int) -> tuple[int, int]:
        data = "0x" + (_SELECTOR + encode(_ARGS, list(args))).hex()
        body = {
            "jsonrpc": "2.0",
            "id": next(self.ids),
            "method": "eth_call",
            "params": [{"to": self.vault, "data": data}, "latest"],
        }
        answer = self.session.post(self.url, json=body, timeout=30).json()
        assert "result" in answer, f"previewConversion{args} reverted: {answer.get('error')}"
        buy, fee = decode(["uint256", "uint256"], bytes.fromhex(answer["result"][2:]))
        return int(buy), int(fee)


@pytest.fixture(scope="module")
def preview(network: Network) -> PreviewConversion:
    return PreviewConversion(network)


def test_raw_call_equals_web3_call(network: Network, preview: PreviewConversion) -> None:
    case = (123_456_789, 155 * 10**18 + 7, 25, 2, 0)
    assert preview(*case) == tuple(network.vault.contract.functions.previewConversion(*case).call())


@settings(max_examples=CASES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=conversions())
def test_python_conversion_equals_contract(preview: PreviewConversion, case: tuple[int, int, int, int, int]) -> None:
    assert tuple(convert(*case)) == preview(*case)
