"""stream.sources.files.read: format detection, streaming (also gzip), bad records as Records."""

from __future__ import annotations

import gzip
import shutil
import tracemalloc
from pathlib import Path

import orjson
import pytest

from stream.contract.schema import Limits, parse
from stream.sources import FormatError, canonical_bytes, read

DATA = Path(__file__).resolve().parents[2] / "data"
T = "2024-03-05T14:03:22Z"


def write(path: Path, data: bytes) -> Path:
    if path.suffix == ".gz":
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def test_canonical_lines_pass_through_unchanged(tmp_path: Path) -> None:
    docs = [{"@timestamp": T, "user.id": "u", "custodes": {"activity": "export"}},
            {"@timestamp": T, "user": {"id": "v"}, "extra": [1, 2]},
            {"no": "user"}]
    path = write(tmp_path / "events.jsonl", b"\n".join(orjson.dumps(d) for d in docs) + b"\n")
    records = list(read(path))
    assert [r.doc for r in records] == docs  # not validated here: the worker dead-letters the third
    assert all(r.ok for r in records)
    checked = list(read(path, check=True))
    assert [r.ok for r in checked] == [True, True, False]
    assert checked[2].error is not None and checked[2].error.reason == "missing_timestamp"


def test_bad_lines_are_records_with_reasons_and_line_numbers(tmp_path: Path) -> None:
    lines = [
        orjson.dumps({"@timestamp": T, "user.id": "u"}),
        b"",
        b"{not json",
        b"   ",
        b"[1, 2]",
        b'{"a": "\xff"}',
        orjson.dumps({"@timestamp": T, "user.id": "w"}) + b"\r",
    ]
    path = write(tmp_path / "events.ndjson", b"\n".join(lines))
    records = list(read(path))
    assert [(r.line, r.error.reason if r.error else None) for r in records] == [
        (1, None), (3, "invalid_json"), (5, "not_an_object"), (6, "not_utf8"), (7, None)]
    assert records[1].raw == b"{not json"
    assert records[3].raw == b'{"a": "\xff"}'
    assert records[4].raw.endswith(b"}")  # CRLF line end removed


def test_device_detection_csv_and_jsonl() -> None:
    csv_records = list(read(DATA / "device_notifications.csv"))
    assert [(r.line, r.error.reason if r.error else None) for r in csv_records] == [
        (2, None), (3, None), (4, None), (5, None), (7, "bad_value"), (8, "missing_timestamp"), (9, None)]
    assert csv_records[3].doc is not None and csv_records[3].doc["message"] == "Address is\n12 Acacia Avenue"
    assert csv_records[3].raw.count(b"\n") == 1  # a quoted new line: two physical lines, one record
    jsonl = list(read(DATA / "device_notifications.jsonl"))
    assert [(r.line, r.error.reason if r.error else None) for r in jsonl] == [
        (1, None), (2, None), (3, None), (4, "invalid_json"), (5, "bad_timestamp")]
    assert all(r.doc is None or r.doc["event"]["dataset"] == "device.notification" for r in csv_records + jsonl)


def test_gzip_inputs(tmp_path: Path) -> None:
    plain = list(read(DATA / "device_notifications.csv"))
    gz = tmp_path / "notifications.csv.gz"
    with (DATA / "device_notifications.csv").open("rb") as src, gzip.open(gz, "wb") as dst:
        shutil.copyfileobj(src, dst)
    assert [(r.line, r.raw, r.doc) for r in read(gz)] == [(r.line, r.raw, r.doc) for r in plain]
    hidden = tmp_path / "export.csv"  # gzip without the suffix: recognised by its magic bytes
    hidden.write_bytes(gz.read_bytes())
    assert len(list(read(hidden))) == len(plain)
    lines = write(tmp_path / "events.jsonl.gz", orjson.dumps({"@timestamp": T, "user.id": "u"}) + b"\n")
    assert [r.doc for r in read(lines)] == [{"@timestamp": T, "user.id": "u"}]


def test_format_detection_and_errors(tmp_path: Path) -> None:
    other = write(tmp_path / "site.csv", b"Officer,When\nPC1,2024-03-05\n")
    with pytest.raises(FormatError, match="give a mapping file"):
        read(other)
    array = write(tmp_path / "events.json", b'[{"@timestamp": "2024-03-05T14:03:22Z"}]')
    with pytest.raises(FormatError, match="JSON array"):
        read(array)
    with pytest.raises(FormatError, match="unknown format"):
        read(other, fmt="xml")
    with pytest.raises(FormatError, match="needs a mapping"):
        read(other, fmt="mapping")
    with pytest.raises(FormatError, match="was given with format"):
        read(other, fmt="device", mapping=Path(__file__).parents[3] / "config/mappings/example-records-system.toml")
    with pytest.raises(FileNotFoundError):
        read(tmp_path / "missing.jsonl")
    sniffed = write(tmp_path / "audit.log", orjson.dumps({"@timestamp": T, "user.id": "u"}) + b"\n")
    assert [r.ok for r in read(sniffed)] == [True]
    device_log = write(tmp_path / "export.txt", (DATA / "device_notifications.csv").read_bytes())
    assert sum(r.ok for r in read(device_log)) == 5
    forced = list(read(DATA / "device_notifications.jsonl", fmt="ecs"))  # device keys, read as canonical
    assert forced[0].doc is not None and "Uid" in forced[0].doc
    assert list(read(write(tmp_path / "empty.csv", b""))) == []
    assert list(read(write(tmp_path / "blank.jsonl", b"\n\n"))) == []


def test_csv_edge_cases(tmp_path: Path) -> None:
    header = (DATA / "device_notifications.csv").read_bytes().splitlines()[0]
    good = b'PC1,,,,Log On,,,,,,,2024-03-05 08:00:00'
    rows = [
        b"\xef\xbb\xbf" + header.replace(b",", b";"),  # a BOM and semicolons (Excel in Europe)
        good.replace(b",", b";"),
        b"",
        b"PC1;;;;Log On;;;;;;;2024-03-05 08:00:00;surplus",
        b"PC1;;;;Message Sent;;;;caf\xe9;;;2024-03-05 08:00:00",
        good.replace(b",", b";"),
        b'PC1;;;;Message Sent;;;;"never closed;;;2024-03-05 08:00:00',
        good.replace(b",", b";"),
    ]
    path = write(tmp_path / "notifications.csv", b"\r\n".join(rows) + b"\r\n")
    records = list(read(path))
    assert [(r.line, r.error.reason if r.error else None) for r in records] == [
        (2, None), (4, "bad_value"), (5, "not_utf8"), (6, None), (7, "bad_value")]
    assert "cells" in str(records[1].error)
    assert records[2].raw == rows[4]
    assert records[4].raw == rows[6] + b"\n" + rows[7]  # the open quote swallowed the last line


def test_oversized_records_are_cut_and_reading_goes_on(tmp_path: Path) -> None:
    big = orjson.dumps({"@timestamp": T, "user.id": "u", "message": "x" * 5000})
    small = orjson.dumps({"@timestamp": T, "user.id": "u"})
    path = write(tmp_path / "events.jsonl", b"\n".join([small, big, small]))
    records = list(read(path, limits=Limits(max_event_bytes=1000)))
    assert [(r.line, r.error.reason if r.error else None) for r in records] == [
        (1, None), (2, "event_too_large"), (3, None)]
    assert len(records[1].raw) == 1000


def test_canonical_bytes() -> None:
    doc = next(iter(read(DATA / "device_notifications.csv"))).doc
    assert doc is not None
    line = canonical_bytes(doc)
    assert b"\n" not in line and orjson.loads(line) == doc
    event = parse(line)
    assert (event.id, event.user_id, event.kind) == (doc["event"]["id"], "PC4412", "message")


def test_reading_streams_in_constant_memory(tmp_path: Path) -> None:
    line = orjson.dumps({"@timestamp": T, "user.id": "u", "message": "m" * 200}) + b"\n"
    path = tmp_path / "big.jsonl.gz"
    with gzip.open(path, "wb", compresslevel=1) as f:
        for _ in range(20):
            f.write(line * 5000)  # 100 000 records, ~25 MB uncompressed
    tracemalloc.start()
    try:
        count = sum(1 for record in read(path) if record.ok)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 100_000
    assert peak < 2_000_000, peak


@pytest.mark.parametrize("depth", [17, 300, 1000])
def test_a_record_nested_too_deeply_is_rejected_by_the_reader_not_a_crash(tmp_path: Path, depth: int) -> None:
    """A canonical record is passed on unvalidated and encoded again; orjson refuses to encode deep
    nesting, which crashed replay and ingest (found by the fuzz through the readers)."""
    good = orjson.dumps({"@timestamp": "2024-01-01T00:00:00Z", "user": {"id": "u"}})
    deep = good[:-1] + b', "x": ' + b"[" * depth + b"]" * depth + b"}"
    path = tmp_path / "deep.jsonl"
    path.write_bytes(good + b"\n" + deep + b"\n" + good + b"\n")
    records = list(read(path))
    assert [r.error.reason if r.error else "ok" for r in records] == ["ok", "too_deeply_nested", "ok"]
    assert all(canonical_bytes(r.doc) for r in records if r.ok)
