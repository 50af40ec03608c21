"""Bad input at every public boundary of the library (issue 13 items 1 and 5): each case
asserts the error type (TypeError for a value of the wrong type, ValueError for a wrong
value) and that the message names the argument. The table is tests/boundary/_cases.py."""

from __future__ import annotations

import pytest

from ._cases import cases

CASES = cases()


@pytest.mark.parametrize(
    ("call", "value", "exc", "arg"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_refused_naming_the_argument(call, value, exc, arg):
    with pytest.raises(exc) as info:
        call(value)
    assert arg in str(info.value), f"{arg!r} not named in {str(info.value)!r}"
