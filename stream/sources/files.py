"""Reading audit-log files for ``custodes ingest`` and ``custodes replay``: one record at a time.

:func:`read` streams a file (plain or gzip, detected by its magic bytes; ``-`` is standard input) in
constant memory and yields one :class:`Record` per record: the canonical document, or the
:class:`~stream.contract.codec.Invalid` that explains why the record was rejected, with its line number and
original bytes for the dead-letter topic. A bad record never stops the file.

Formats (``fmt``):

* ``canonical`` (or ``ecs``): JSON lines already in the canonical/ECS shape, passed through unchanged (the worker
  validates them; ``check=True`` validates here too).
* ``device``: managed-device notification export, CSV or JSON lines (:mod:`.device`).
* ``mapping``: any CSV or JSON lines log, through a mapping file (:mod:`.mapping`).
* ``m365``, ``google-workspace``, ``okta``: vendors' audit records, JSON lines (:mod:`.m365`,
  :mod:`.google_workspace`, :mod:`.okta`; docs/sources.md). A Google Workspace activity holding several
  events yields several records with the same line number. ``org_domains`` tells their readers which
  recipients are inside the organisation.
* ``auto``: a mapping if one is given; else by suffix (``.gz`` ignored): ``.jsonl``, ``.json`` and
  ``.ndjson`` are canonical JSON lines unless the first record has the device-notification keys or is
  a Microsoft 365, Google Workspace or Okta record;
  ``.csv``/``.tsv`` with the device-notification header are ``device``; other suffixes are sniffed
  (a first line starting with ``{`` is JSON lines, otherwise a CSV header). A CSV that is not a device
  export needs a mapping: :class:`FormatError`.

Problems with the file as a whole (no such file, unknown format, a JSON array, a CSV header that
lacks a mapped column) raise when :func:`read` is called, before any record.
"""

from __future__ import annotations

import gzip
import io
import os
import sys
from collections.abc import Callable, Iterator
from itertools import chain
from pathlib import Path
from typing import IO, Any

import orjson

from stream.contract.codec import DEFAULT_LIMITS, Invalid, Limits, check_depth, decode, validate
from stream.sources import device, ecs, google_workspace, m365, okta
from stream.sources.csv_rows import csv_records, header_text, split_header
from stream.sources.file_records import FormatError, Line, Record
from stream.sources.mapping import FieldMapping, load

FORMATS = ("auto", "canonical", "ecs", "device", "mapping", "m365", "google-workspace", "okta")
"""``ecs`` is another name for ``canonical``."""
VENDORS = {"m365": m365, "google-workspace": google_workspace, "okta": okta}
"""Built-in readers of vendors' audit records (JSON lines), by format name."""
_SNIFF = (("m365", m365.is_m365), ("google-workspace", google_workspace.is_google_workspace),
          ("okta", okta.is_okta))
JSON_SUFFIXES = (".jsonl", ".json", ".ndjson")
CSV_SUFFIXES = (".csv", ".tsv")
_BOM = b"\xef\xbb\xbf"

def read(
    path: str | os.PathLike[str],
    fmt: str = "auto",
    mapping: FieldMapping | str | os.PathLike[str] | None = None,
    *,
    limits: Limits = DEFAULT_LIMITS,
    check: bool = False,
    org_domains: tuple[str, ...] = (),
) -> Iterator[Record]:
    """Stream the records of ``path`` (see the module docstring). ``check`` also validates canonical
    records; device and mapping records are always validated."""
    if fmt not in FORMATS:
        raise FormatError(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")
    if fmt == "ecs":
        fmt = "canonical"
    if mapping is not None and not isinstance(mapping, FieldMapping):
        mapping = load(mapping)
    if fmt == "mapping" and mapping is None:
        raise FormatError("format 'mapping' needs a mapping file")
    if mapping is not None and fmt not in ("auto", "mapping"):
        raise FormatError(f"a mapping file was given with format {fmt!r}")
    name = str(path)
    stream, close = _open(path)
    try:
        lines = _lines(stream, limits.max_event_bytes)
        head, lines = _peek(lines)
        kind = _kind(fmt, mapping, _suffix(name), head)
        array = None
        if head is not None:
            array, lines = _whole_json(lines, head, fmt, kind, name)
        if array is not None:
            kind, items = array
            reader = VENDORS[kind]
            records = _items(items, lambda value: reader.normalise(value, org_domains), limits)
        elif kind != "device-csv" and kind != "mapping-csv" and head is not None and head[1].lstrip()[:1] == b"[":
            raise FormatError(f"{name}: a JSON array; write one JSON object per line (jq -c '.[]')")
        else:
            records = _records(kind, lines, head, mapping, limits, check, name, org_domains)
    except BaseException:
        close()
        raise
    return _closing(records, close)


def _kind(fmt: str, mapping: FieldMapping | None, suffix: str, head: Line | None) -> str:
    if mapping is not None:
        return "mapping-" + mapping.format
    if suffix in JSON_SUFFIXES:
        container = "jsonl"
    elif suffix in CSV_SUFFIXES:
        container = "csv"
    else:
        container = "jsonl" if head is not None and head[1].lstrip()[:1] in (b"{", b"[") else "csv"
    if fmt == "canonical":
        return "canonical"
    if fmt in VENDORS:
        return fmt
    if fmt == "device":
        return "device-" + container
    if container == "jsonl":
        first = _first_json(head)
        if isinstance(first, dict) and device.is_device(first):
            return "device-jsonl"
        return next((vendor for vendor, looks in _SNIFF if looks(first)), "canonical")
    return "device-csv"


def _records(kind: str, lines: Iterator[Line], head: Line | None, mapping: FieldMapping | None,
             limits: Limits, check: bool, name: str, org_domains: tuple[str, ...] = ()) -> Iterator[Record]:
    if kind in VENDORS:
        reader = VENDORS[kind]
        return _json(lines, lambda value: reader.normalise(value, org_domains), limits, False)
    if kind == "canonical":
        return _json(lines, ecs.from_json, limits, check)
    if kind == "device-jsonl":
        return _json(lines, device.normalise, limits, False)
    if kind == "mapping-jsonl":
        assert mapping is not None
        return _json(lines, mapping.normalise, limits, False)
    if head is None:
        return iter(())
    header_line = next(lines)
    header = header_text(header_line, name)
    if kind == "mapping-csv":
        assert mapping is not None
        columns = split_header(header, mapping.delimiter, mapping.quotechar)
        mapping.check_header(columns)
        return csv_records(lines, columns, mapping.normalise, mapping.delimiter, mapping.quotechar)
    delimiter = max(",;\t|", key=header.count)
    columns = split_header(header, delimiter, '"')
    if not device.is_device(columns):
        raise FormatError(
            f"{name}: not a device-notification export (the header lacks Notification Type, "
            "Notification Date/Time and Uid/Owner Name/Device ID); give a mapping file for other CSV logs"
        )
    return csv_records(lines, columns, device.normalise, delimiter, '"')


def _closing(records: Iterator[Record], close: Callable[[], None]) -> Iterator[Record]:
    try:
        yield from records
    finally:
        close()


def _open(path: str | os.PathLike[str]) -> tuple[IO[bytes], Callable[[], None]]:
    """The file's bytes (decompressed if gzip) and how to close it (standard input stays open)."""
    stdin = str(path) == "-"
    raw: Any = sys.stdin.buffer if stdin else Path(path).open("rb")  # noqa: SIM115 (closed by the generator)
    if not hasattr(raw, "peek"):
        raw = io.BufferedReader(raw)
    if raw.peek(2)[:2] != b"\x1f\x8b":
        return raw, (lambda: None) if stdin else raw.close
    unzipped = gzip.GzipFile(fileobj=raw, mode="rb")

    def close() -> None:
        unzipped.close()
        if not stdin:
            raw.close()

    return unzipped, close


def _suffix(name: str) -> str:
    name = name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    return os.path.splitext(name)[1]


def _lines(stream: IO[bytes], max_bytes: int) -> Iterator[Line]:
    """Physical lines, each at most ``max_bytes`` (longer ones are cut and flagged, the rest skipped)."""
    number = 0
    while True:
        line = stream.readline(max_bytes + 2)
        if not line:
            return
        number += 1
        if number == 1 and line.startswith(_BOM):
            line = line[len(_BOM):]
        cut = False
        if not line.endswith(b"\n") and len(line) >= max_bytes + 2:
            cut = True
            while True:
                rest = stream.readline(1 << 20)
                if not rest or rest.endswith(b"\n"):
                    break
            line = line[:max_bytes]
        else:
            line = line.removesuffix(b"\n").removesuffix(b"\r")
        yield number, line, cut


def _peek(lines: Iterator[Line]) -> tuple[Line | None, Iterator[Line]]:
    """The first non-blank line, and all the lines again (blank ones before it dropped)."""
    for line in lines:
        if line[1].strip():
            return line, chain([line], lines)
    return None, iter(())


MAX_DOCUMENT_BYTES = 512 << 20
"""The largest whole-file JSON document (an API response page) read at once."""


def _whole_json(lines: Iterator[Line], head: Line, fmt: str, kind: str, name: str
                ) -> tuple[tuple[str, list[Any]] | None, Iterator[Line]]:
    """A vendor's API response saved as it came (a JSON array of records, or a page object with
    ``items``/``value``/``records``, possibly pretty-printed): its kind and records, or None when the file
    is JSON lines (then the lines to read, as given). Tried for a file that starts with ``[``, for a
    vendor format whose first line is not a whole JSON object, and for ``auto`` when the first line is a
    page object. A file that turns out not to be one JSON document is read as JSON lines (its bad lines
    are dead-lettered one by one, as ever)."""
    start = head[1].lstrip()[:1]
    first = _first_json(head)
    if start == b"{":
        page = first is not None and fmt in ("auto", *VENDORS) and _is_page(first)
        pretty = first is None and kind in VENDORS
        if not (page or pretty):
            return None, lines
    elif start != b"[":
        return None, lines
    chunks: list[Line] = []
    size = 0
    for line in lines:
        size += len(line[1]) + 1
        if line[2] or size > MAX_DOCUMENT_BYTES:
            raise FormatError(f"{name}: a JSON document larger than {MAX_DOCUMENT_BYTES >> 20} MiB (or with a "
                              "line over the size limit); write one record per line (jq -c '.[]')")
        chunks.append(line)
    try:
        document = orjson.loads(b"\n".join(raw for _, raw, _ in chunks))
    except orjson.JSONDecodeError:
        if start == b"[":
            raise FormatError(f"{name}: a JSON array; write one JSON object per line (jq -c '.[]')") from None
        return None, iter(chunks)
    items = document
    if isinstance(document, dict):
        items = next((document[k] for k in ("items", "value", "records") if isinstance(document.get(k), list)), None)
    if not isinstance(items, list):
        if start == b"{":
            return None, iter(chunks)  # one JSON object: a file of one record
        raise FormatError(f"{name}: a JSON document without a list of records")
    if kind not in VENDORS:
        kind = next((vendor for vendor, looks in _SNIFF if items and looks(items[0])), "")
        if not kind:
            raise FormatError(f"{name}: a JSON array; write one JSON object per line (jq -c '.[]')")
    return (kind, items), iter(())


def _is_page(value: Any) -> bool:
    return isinstance(value, dict) and any(isinstance(value.get(k), list) for k in ("items", "value", "records")) \
        and not device.is_device(value)


def _items(items: list[Any], normalise: Callable[[Any], Any], limits: Limits) -> Iterator[Record]:
    """Records of a whole-file JSON document; ``line`` is the record's position in it (1-based)."""
    for number, item in enumerate(items, 1):
        raw = orjson.dumps(item)
        if len(raw) > limits.max_event_bytes:
            yield Record(number, raw[:limits.max_event_bytes], error=_too_large(limits))
            continue
        try:
            out = normalise(item)
        except Invalid as exc:
            yield Record(number, raw, error=exc)
            continue
        except RecursionError:
            yield Record(number, raw, error=Invalid("too_deeply_nested", "the record nests too deeply"))
            continue
        for doc in out if isinstance(out, list) else [out]:
            yield Record(number, raw, doc=doc)


def _first_json(head: Line | None) -> Any:
    if head is None:
        return None
    try:
        return orjson.loads(head[1])
    except orjson.JSONDecodeError:
        return None


def _json(lines: Iterator[Line], normalise: Callable[[Any], dict[str, Any]], limits: Limits,
          check: bool) -> Iterator[Record]:
    for number, raw, cut in lines:
        if not raw.strip():
            continue
        if cut:
            yield Record(number, raw, error=_too_large(limits))
            continue
        try:
            doc = normalise(decode(raw, limits))
            if check:
                validate(doc, raw, limits)
            else:  # passed on and encoded again (canonical_bytes), which fails for deep nesting
                check_depth(doc, raw, limits)
        except Invalid as exc:
            yield Record(number, raw, error=exc)
        except RecursionError:
            yield Record(number, raw, error=Invalid("too_deeply_nested", "the record nests too deeply"))
        else:
            if isinstance(doc, list):  # a record holding several events (Google Workspace)
                for one in doc:
                    yield Record(number, raw, doc=one)
            else:
                yield Record(number, raw, doc=doc)


def _too_large(limits: Limits) -> Invalid:
    return Invalid("event_too_large", f"record is longer than {limits.max_event_bytes} bytes (raw cut there)")
