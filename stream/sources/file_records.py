"""What a file reader yields: one :class:`Record` per record of a file (its canonical document or why
it was refused, with its line and original bytes), and the :class:`FormatError` of a file that cannot
be read at all."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from stream.contract.codec import Invalid

Line = tuple[int, bytes, bool]
"""(1-based line number, the line without its end-of-line, whether it was cut at the size limit)"""


class FormatError(ValueError):
    """The file cannot be read in the requested or detected format (a usage error, not a bad record)."""


@dataclass(slots=True)
class Record:
    """One record of a file: ``doc`` (canonical) or ``error``; ``raw`` is its original bytes."""

    line: int
    """1-based number of the line the record starts on (for CSV, the header is line 1)."""
    raw: bytes
    doc: dict[str, Any] | None = None
    error: Invalid | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def canonical_bytes(doc: dict[str, Any]) -> bytes:
    """A canonical document -> one line of JSON (no newline): the value of a Kafka event message."""
    return orjson.dumps(doc)
