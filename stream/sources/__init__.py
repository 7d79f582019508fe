"""Input formats -> canonical audit events (schema v1): canonical/ECS JSON lines, managed-device
notification exports, and any CSV/JSON-lines log through a TOML mapping file. :func:`read` streams a
file as :class:`Record` s for ``custodes ingest``/``replay``; :func:`canonical_bytes` encodes one event."""

from stream.sources.file_records import FormatError, Record, canonical_bytes
from stream.sources.files import FORMATS, read
from stream.sources.mapping import FieldMapping, MappingError
from stream.sources.mapping import load as load_mapping

__all__ = [
    "FORMATS", "FieldMapping", "FormatError", "MappingError", "Record", "canonical_bytes", "load_mapping",
    "read",
]
