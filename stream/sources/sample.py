"""``custodes mapping check FILE --sample LOG``: what each record of a sample log becomes through a
mapping file (or a built-in format), line by line, or why it is refused (reason, field path, detail)."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator

import orjson

from stream.contract.schema import lookup
from stream.sources.activities import ActivityTable
from stream.sources.files import read
from stream.sources.mapping import FieldMapping


def check(sample: str | os.PathLike[str], mapping: FieldMapping | None, fmt: str = "auto",
          table: ActivityTable | None = None, limit: int | None = None,
          org_domains: tuple[str, ...] = ()) -> Iterator[str]:
    """Lines for people: one per record (up to ``limit``; the rest only counted), then totals."""
    records = events = refused = 0
    by_activity: Counter[str] = Counter()
    by_reason: Counter[str] = Counter()
    shown = 0
    last_line = None
    for record in read(sample, fmt=fmt if mapping is None else "mapping", mapping=mapping,
                       org_domains=org_domains):
        if record.line != last_line:
            records += 1
            last_line = record.line
        show = limit is None or shown < limit
        if record.error is not None:
            refused += 1
            by_reason[record.error.reason] += 1
            if show:
                where = f" at {record.error.field}" if record.error.field else ""
                yield f"line {record.line}: REFUSED {record.error.reason}{where}: {record.error.detail}"
                shown += 1
            continue
        events += 1
        doc = record.doc or {}
        kind = lookup(doc, "custodes.activity")
        if isinstance(kind, str) and kind:
            label = kind
        else:
            derived = table.classify(doc) if table is not None else None
            kind = derived or "other"
            label = f"{derived} (activity table)" if derived else "other (no activity; not classified)"
        by_activity[kind] += 1
        if show:
            yield f"line {record.line}: {label}  {orjson.dumps(doc, option=orjson.OPT_SORT_KEYS).decode()}"
            shown += 1
    yield (f"{records:,} records: {events:,} events, {refused:,} refused"
           + (f"; by activity: {', '.join(f'{k} {n:,}' for k, n in by_activity.most_common())}" if by_activity else "")
           + (f"; refused: {', '.join(f'{k} {n:,}' for k, n in by_reason.most_common())}" if by_reason else ""))
