"""Hostile and extreme input for property-based fuzz tests of a plugin's input surfaces.

    from hypothesis import given
    from vllm_ref_harness.hostile import FUZZ, hostile_values

    @FUZZ
    @given(hostile_values())
    def test_my_parser_refuses_cleanly(value):
        ...  # a valid result, or the plugin's own error naming the plugin: never another exception

One home for what "hostile" means, so that every plugin's fuzz tests try the same things: huge
and tiny numbers, integers too long for float() or for str() (more than 4300 digits), NaN and
infinities, numbers as text (with exponents that would take forever to expand), wrong types,
deep nesting, long strings, lone surrogates (what JSON's "\\ud800" becomes) and bytes that are not
UTF-8. Needs `hypothesis` (a test tool of this repository, not a dependency of the harness).
"""

from __future__ import annotations

import sys
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

__all__ = ["FUZZ", "deep", "hostile_text", "hostile_values", "numbers", "number_texts"]

# Small, reproducible runs: the default suite must fit its time budget on two cores, and a
# failure must come back on the next run (derandomize: the examples are a function of the test;
# no example database, so nothing is written into the checkout).
FUZZ = settings(max_examples=200, deadline=None, derandomize=True, database=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])

_EDGE_NUMBERS: list[Any] = [
    0, -0.0, 1, -1, 2**31, 2**53 + 1, 2**63, 2**64, 10**308, 10**309, 10**400, -(10**400), int("9" * 4000),
    1e-320, 5e-324, 1e-308, 1e308, 1.7976931348623157e308, -1e308, float("nan"), float("inf"), float("-inf"),
]
_EDGE_TEXTS = [
    "", " ", "0", "-0", "+1", "1e-320", "1e308", "1e309", "1e999999999", "1e-999999999", "9" * 4000, "9" * 5000,
    "1/" + "9" * 400, "1" * 400, "nan", "NaN", "inf", "-inf", "Infinity", "1/0", "0/0", "1_000", "0x10", "١٢", "²",
    "1,2", "1=2", "3 4", "\x00", "\ud800", "1\ud800", " 1 ", "1.", ".5", "1e", "e5", "--1", "1/-3", "1.5/2",
]


def numbers() -> st.SearchStrategy[Any]:
    """Ints and floats from the ordinary to the absurd: subnormals, the float limits, NaN,
    infinities, and integers far beyond any float (10^400, 4000 digits)."""
    return st.one_of(st.sampled_from(_EDGE_NUMBERS), st.integers(min_value=-(10**400), max_value=10**400),
                     st.integers(min_value=-1000, max_value=1000), st.floats(allow_nan=True, allow_infinity=True),
                     st.floats(min_value=-1000, max_value=1000))


def number_texts() -> st.SearchStrategy[str]:
    """Text that is, or nearly is, a number: huge digit strings, fractions, exponents, spellings
    of NaN and infinity, non-ASCII digits, separators of other formats."""
    digits = st.text(alphabet="0123456789", min_size=1, max_size=5000)
    return st.one_of(st.sampled_from(_EDGE_TEXTS), digits, numbers().map(str),
                     st.builds(lambda a, b: f"{a}/{b}", digits, digits),
                     st.builds(lambda a, e: f"{a}e{e}", st.integers(0, 999), st.integers(-10**12, 10**12)),
                     st.text(alphabet="0123456789.eE+-/_ ", max_size=40))


def hostile_text(max_size: int = 200) -> st.SearchStrategy[str]:
    """Strings with every kind of character, lone surrogates and controls included, and some
    very long ones."""
    anything = st.characters(codec=None, exclude_categories=())  # Cs (surrogates) and Cc included
    return st.one_of(st.text(anything, max_size=max_size), st.sampled_from(_EDGE_TEXTS),
                     st.builds(lambda c, n: c * n, st.sampled_from(["a", "9", "\ud800", "é", " ", ",", "="]),
                               st.integers(10_000, 200_000)),
                     st.binary(max_size=50).map(lambda b: b.decode("utf-8", "surrogateescape")))


def deep(depth: int, leaf: Any = 1) -> Any:
    """Lists and dicts nested `depth` deep, alternating (built without recursion, so any depth works)."""
    value = leaf
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


def hostile_values(max_size: int = 200) -> st.SearchStrategy[Any]:
    """Anything a JSON body, a vllm_xargs value or an offline caller could hand over, and a
    bit more: numbers, number-like and hostile text, bytes, wrong types, nesting (some of it
    deeper than repr() can go)."""
    scalars = st.one_of(st.none(), st.booleans(), numbers(), number_texts(), hostile_text(max_size),
                        st.binary(max_size=50))
    nested = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                           st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                          max_leaves=12)
    too_deep = st.sampled_from([deep(50), deep(sys.getrecursionlimit() + 100)])
    return st.one_of(scalars, nested, too_deep, st.just(object()), st.just(complex(1, 1)), st.just({1, 2}))
