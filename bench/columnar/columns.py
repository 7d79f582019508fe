"""Newline-delimited events -> one columnar micro-batch (Arrow's JSON reader, then numpy arrays).

Only the fields the two prototype kernels read are decoded (an explicit schema; every other field is
skipped by the C++ reader). Validation is reduced to what the kernels need: a row without ``user.id``
or a parsable ``@timestamp``, or with an unknown ``custodes.activity``, is counted as invalid and left
out (the product dead-letters it with a reason; the prototype only counts it). Arrival order is the
row order.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from detectors.event import ACTIVITY_KINDS, SENSITIVITIES

SCHEMA = pa.schema([
    ("@timestamp", pa.timestamp("us", tz="UTC")),
    ("user", pa.struct([("id", pa.string())])),
    ("event", pa.struct([("id", pa.string()), ("outcome", pa.string())])),
    ("file", pa.struct([("name", pa.string())])),
    ("custodes", pa.struct([
        ("activity", pa.string()),
        ("record", pa.struct([("count", pa.int64()), ("ids", pa.list_(pa.string()))])),
        ("dataset", pa.struct([("sensitivity", pa.string())])),
        ("object", pa.struct([("id", pa.string())])),
    ])),
])
_READ = pj.ReadOptions(use_threads=False, block_size=1 << 24)
_PARSE = pj.ParseOptions(explicit_schema=SCHEMA, unexpected_field_behavior="ignore")
KINDS = ("other", "export", "record_access", "print", "removable_media", "web_upload", "share", "message")
"""Activity codes the kernels test (any other known activity gets code 0, "other")."""
_KNOWN_KINDS = pa.array(sorted(ACTIVITY_KINDS))
_KIND_VALUES = pa.array(KINDS[1:])
_SENS_VALUES = pa.array(list(SENSITIVITIES))


@dataclass
class Batch:
    """One micro-batch as columns, in arrival order (valid rows only)."""

    n: int
    invalid: int
    user: pa.Array  # string
    ts: np.ndarray  # float64 POSIX seconds, as the product's datetime.timestamp()
    kind: np.ndarray  # int8 code into KINDS
    sens: np.ndarray  # int8 index into SENSITIVITIES, -1 when absent or unknown
    record_count: np.ndarray  # int64, -1 when absent
    id_offsets: np.ndarray  # int64 offsets of each row's record ids into ``ids``
    ids: pa.Array  # string, the record ids of all rows
    event_id: pa.Array  # string (may be null)
    outcome: pa.Array
    file_name_set: np.ndarray  # bool
    object_id_set: np.ndarray  # bool


def _codes(values: pa.Array, table: pa.Array, missing: int) -> np.ndarray:
    idx = pc.index_in(values, value_set=table)
    return pc.fill_null(idx, missing - 1).to_numpy(zero_copy_only=False).astype(np.int8) + 1


def decode(data: bytes) -> Batch:
    """Decode newline-delimited JSON events into a :class:`Batch`."""
    t = pj.read_json(io.BytesIO(data), read_options=_READ, parse_options=_PARSE)
    stamp = t.column("@timestamp").combine_chunks()
    user = pc.struct_field(t.column("user").combine_chunks(), "id")
    activity = pc.struct_field(t.column("custodes").combine_chunks(), "activity")
    ok = pc.and_(pc.and_(pc.is_valid(stamp), pc.is_valid(user)), pc.greater(pc.utf8_length(user), 0))
    ok = pc.and_(ok, pc.or_(pc.is_null(activity), pc.is_in(activity, value_set=_KNOWN_KINDS)))
    ok = pc.fill_null(ok, False)
    n_all = len(t)
    invalid = n_all - pc.sum(ok).as_py() if n_all else 0
    if invalid:
        t = t.filter(ok)
        stamp = t.column("@timestamp").combine_chunks()
        user = pc.struct_field(t.column("user").combine_chunks(), "id")
    cust = t.column("custodes").combine_chunks()
    record = pc.struct_field(cust, "record")
    ids_list = pc.struct_field(record, "ids")
    offsets = ids_list.offsets.to_numpy().astype(np.int64)
    if ids_list.null_count and (np.diff(offsets)[~pc.is_valid(ids_list).to_numpy(zero_copy_only=False)] != 0).any():
        ids_list = pc.fill_null(ids_list, pa.scalar([], pa.list_(pa.string())))  # a null slot holding values
        offsets = ids_list.offsets.to_numpy().astype(np.int64)
    counts = pc.struct_field(record, "count")
    event = t.column("event").combine_chunks()
    micros = stamp.cast(pa.int64()).to_numpy(zero_copy_only=False)
    return Batch(
        n=len(t), invalid=invalid, user=user,
        ts=micros.astype(np.float64) / 1e6,  # exact integer micros / 1e6: what timedelta.total_seconds() gives
        kind=_codes(pc.struct_field(cust, "activity"), _KIND_VALUES, 0),
        sens=_codes(pc.struct_field(pc.struct_field(cust, "dataset"), "sensitivity"), _SENS_VALUES, 0) - 1,
        record_count=pc.fill_null(counts, -1).to_numpy(zero_copy_only=False).astype(np.int64),
        id_offsets=offsets - offsets[0],
        ids=ids_list.values.slice(offsets[0], offsets[-1] - offsets[0]),
        event_id=pc.struct_field(event, "id"),
        outcome=pc.struct_field(event, "outcome"),
        file_name_set=pc.is_valid(pc.struct_field(t.column("file").combine_chunks(), "name")).to_numpy(
            zero_copy_only=False),
        object_id_set=pc.is_valid(pc.struct_field(pc.struct_field(cust, "object"), "id")).to_numpy(
            zero_copy_only=False),
    )
