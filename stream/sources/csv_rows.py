"""CSV files as records: the header line, and rows read by :mod:`csv` (quoted fields across lines
included) with each row's original bytes and line, a bad row refused with a reason, never stopping
the file."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from typing import Any

from stream.contract.codec import Invalid
from stream.sources.file_records import FormatError, Line, Record


def header_text(line: Line, name: str) -> str:
    number, raw, cut = line
    if cut:
        raise FormatError(f"{name}: the header line is too long")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise FormatError(f"{name}: the header line is not UTF-8") from None


def split_header(header: str, delimiter: str, quotechar: str) -> list[str]:
    return [c.strip() for c in next(csv.reader([header], delimiter=delimiter, quotechar=quotechar))]


class _Feed:
    """Text lines for :mod:`csv` that remember the bytes and problems of the record being read."""

    def __init__(self, lines: Iterator[Line]) -> None:
        self.lines = lines
        self.start = 0
        self.pending: list[bytes] = []
        self.not_utf8 = False
        self.cut = False

    def __iter__(self) -> _Feed:
        return self

    def __next__(self) -> str:
        number, raw, cut = next(self.lines)
        if not self.pending:
            self.start = number
        self.pending.append(raw)
        self.cut |= cut
        try:
            return raw.decode("utf-8") + "\n"
        except UnicodeDecodeError:
            self.not_utf8 = True
            return raw.decode("utf-8", "replace") + "\n"

    def take(self) -> tuple[int, bytes, Invalid | None]:
        error = None
        if self.cut:
            error = Invalid("event_too_large", "a line of the record is longer than the size limit (cut)")
        elif self.not_utf8:
            error = Invalid("not_utf8", "the record is not valid UTF-8")
        out = self.start, b"\n".join(self.pending), error
        self.pending, self.not_utf8, self.cut = [], False, False
        return out


def csv_records(lines: Iterator[Line], columns: list[str], normalise: Callable[[Any], dict[str, Any]],
         delimiter: str, quotechar: str) -> Iterator[Record]:
    feed = _Feed(lines)
    reader = csv.reader(feed, delimiter=delimiter, quotechar=quotechar, strict=True)
    width = len(columns)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            if feed.pending:  # a quoted field still open at the end of the file
                number, raw, error = feed.take()
                yield Record(number, raw, error=error or Invalid("bad_value", "the file ends inside a quoted field"))
            return
        except csv.Error as exc:
            number, raw, error = feed.take()
            reason = "oversized_field" if "field limit" in str(exc) else "bad_value"
            yield Record(number, raw, error=error or Invalid(reason, f"not valid CSV ({exc})"))
            continue
        number, raw, error = feed.take()
        if error is None and not any(cell.strip() for cell in row):
            continue
        try:
            if error is not None:
                raise error
            if len(row) > width:
                raise Invalid("bad_value", f"the row has {len(row)} cells, the header {width}")
            doc = normalise(dict(zip(columns, row, strict=False)))
        except Invalid as exc:
            yield Record(number, raw, error=exc)
        else:
            yield Record(number, raw, doc=doc)
