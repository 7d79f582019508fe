"""UK postcode parts: normalise a postcode, district or area to its outward code and compare two at
the coarser of their granularities (need_to_know's neighbour look-ups)."""

from __future__ import annotations

import re

_POSTCODE = re.compile(r"^([A-Z]{1,2})(\d[A-Z\d]?)?(?:\s*\d[A-Z]{2})?$")


def postcode_area(value: str | None) -> str | None:
    """Normalise a postcode, district or area to its outward part: ``ng7 2rd`` -> ``NG7``,
    ``NG7`` -> ``NG7``, ``ng`` -> ``NG``. None if it does not look like a UK postcode."""
    if not value:
        return None
    v = " ".join(value.upper().split())
    m = _POSTCODE.match(v)
    if m is None:
        return None
    return m.group(1) + (m.group(2) or "")


def same_area(a: str | None, b: str | None) -> bool:
    """Two postcode parts in the same place, compared at the coarser of their two granularities
    (district ``NG7`` with district; area ``NG`` with anything in NG)."""
    a, b = postcode_area(a), postcode_area(b)
    if a is None or b is None:
        return False
    if a.isalpha() or b.isalpha():
        return _letters(a) == _letters(b)
    return a == b


def _letters(outward: str) -> str:
    """The postcode area (leading letters) of an outward code: ``NG7`` -> ``NG``, ``B15`` -> ``B``."""
    n = 2 if len(outward) > 1 and outward[1].isalpha() else 1
    return outward[:n]
