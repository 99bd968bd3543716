"""Kubernetes resource quantities (``500m``, ``2Gi``, ``1e3``) read as exact numbers.

The API server keeps a quantity as the user or a defaulting webhook wrote
it (``1`` and ``"1"``, ``2048Mi`` and ``2Gi`` are all kept as sent), so a
desired ``resources.limits`` compared to the live one as strings differs
forever. ``value`` turns the canonical forms of the API's ``resource.Quantity``
(a decimal number, then a binary suffix, a decimal suffix or an exponent)
into a ``Fraction``; ``equal`` compares two quantities by value.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Final

_BINARY: Final = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL: Final = {
    "n": Fraction(1, 10**9), "u": Fraction(1, 10**6), "m": Fraction(1, 10**3), "": Fraction(1),
    "k": Fraction(10**3), "M": Fraction(10**6), "G": Fraction(10**9), "T": Fraction(10**12),
    "P": Fraction(10**15), "E": Fraction(10**18),
}  # fmt: skip
_FORM: Final = re.compile(r"([+-]?(?:\d+\.?\d*|\.\d+))(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?)")


def value(quantity: object) -> Fraction | None:
    """The exact value of ``quantity`` (a number or its string form); None when
    it is not a quantity."""
    if isinstance(quantity, bool):
        return None
    if isinstance(quantity, int):
        return Fraction(quantity)
    if isinstance(quantity, float):
        return Fraction(quantity).limit_denominator(10**9)
    if not isinstance(quantity, str):
        return None
    match = _FORM.fullmatch(quantity.strip())
    if match is None:
        return None
    number, exponent, suffix = match.groups()
    amount = Fraction(number)
    if exponent is not None:
        return amount * Fraction(10) ** int(exponent[1:])
    if suffix in _BINARY:
        return amount * _BINARY[suffix]
    return amount * _DECIMAL[suffix or ""]


def equal(want: object, have: object) -> bool:
    """Whether two quantities have the same value (equal as written counts too)."""
    if want == have and type(want) is type(have):
        return True
    a, b = value(want), value(have)
    return a is not None and a == b
