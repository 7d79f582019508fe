"""Recognising kinds of UK personal data in free text (precompiled regular expressions).

Used for scoring only: :func:`kinds_in` returns the KINDS seen (``postcode``), never the matches, so
nothing of the text reaches an alert's title or explanation.
"""

from __future__ import annotations

import re

PATTERNS: dict[str, re.Pattern[str]] = {
    # current format (AB12 CDE), and the prefix format of 1983-2001 (A123 BCD) in capitals
    "vehicle_registration": re.compile(
        r"(?<![A-Za-z0-9])(?:[A-Za-z]{2}[0-9]{2}\s?[A-Za-z]{3}|[A-Z][0-9]{1,3}\s?[A-Z]{3})(?![A-Za-z0-9])"
    ),
    # +44 / 0044 / 0 followed by 9-10 digits, spaces or hyphens allowed between digits
    "phone_number": re.compile(
        r"(?<![\d+])(?:(?:\+|00)44\s?(?:\(0\)\s?)?|0)[1-9](?:[\s-]?\d){8,9}(?!\d)"
    ),
    # a date after "DOB"/"born"/"date of birth", or any dd/mm/19yy
    "date_of_birth": re.compile(
        r"(?i:\b(?:d\.?o\.?b\.?|date\s+of\s+birth|born(?:\s+on)?)\W{0,3}"
        r"\d{1,2}[/.\-\s]\d{1,2}[/.\-\s]\d{2,4})"
        r"|(?<!\d)(?:0?[1-9]|[12]\d|3[01])[/.\-](?:0?[1-9]|1[0-2])[/.\-]19\d{2}(?!\d)"
    ),
    "postcode": re.compile(
        r"(?<![A-Za-z0-9])(?:[A-Za-z]{1,2}[0-9][A-Za-z0-9]?\s?[0-9][A-Za-z]{2})(?![A-Za-z0-9])"
    ),
    # two prefix letters (D, F, I, Q, U, V never; O not second), six digits, suffix A-D
    "national_insurance_number": re.compile(
        r"(?<![A-Za-z0-9])(?!(?i:BG|GB|NK|KN|TN|NT|ZZ))(?i:[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z])"
        r"\s?\d{2}\s?\d{2}\s?\d{2}\s?(?i:[A-D])(?![A-Za-z0-9])"
    ),
    "email_address": re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}"),
}
KINDS = tuple(PATTERNS)

WORDS = {
    "vehicle_registration": "a vehicle registration",
    "phone_number": "a phone number",
    "date_of_birth": "a date of birth",
    "postcode": "a postcode",
    "national_insurance_number": "a National Insurance number",
    "email_address": "an e-mail address",
}


def kinds_in(text: str | None, limit: int = 20_000) -> tuple[str, ...]:
    """The kinds of personal data that appear in the first ``limit`` characters of ``text``."""
    if not text:
        return ()
    head = text[:limit]
    return tuple(kind for kind, pattern in PATTERNS.items() if pattern.search(head))


def describe(kinds: tuple[str, ...] | list[str]) -> str:
    """``a postcode and a vehicle registration`` (in :data:`KINDS` order)."""
    words = [WORDS[k] for k in KINDS if k in kinds]
    if len(words) <= 1:
        return "".join(words)
    return f"{', '.join(words[:-1])} and {words[-1]}"
