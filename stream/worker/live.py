"""Live states: each active person's decoded state kept between micro-batches, bounded by bytes.

A micro-batch reads each person's state as bytes (the Faust table's value, replay's dict), and the
pipeline decodes it into the dict tree the detectors update in place, then encodes the result for the
changelog. :class:`LiveStates` keeps that dict tree, together with the very bytes it was encoded to,
so the next micro-batch of the same person skips the decode. The stored bytes stay the truth:

- an entry is used only when the bytes read from the store are the bytes it was encoded to (the same
  object, or equal bytes); otherwise (the state was not written because delivery failed, another
  worker wrote it before a rebalance, the sweep changed or deleted it) the stored bytes are decoded
  as before;
- :meth:`take` removes the entry before the pipeline applies events to it, and the caller puts the
  object back (:meth:`put`) only after it was encoded successfully, so an exception part-way through
  can never leave a half-updated object behind;
- eviction drops the least recently used entries and writes nothing: the table (and its changelog)
  already holds their bytes.

The bound is on memory, estimated from the encoded size: decoded, a state's dicts, lists, strings and
floats take about :data:`OBJECT_BYTES_PER_BYTE` times its JSON (5.7x measured by tracemalloc on the
replay workload's states, 1.85 KB encoded each). The bytes themselves are shared with the store and
are not counted.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

import orjson

OBJECT_BYTES_PER_BYTE = 6
"""Estimated memory of a decoded state per byte of its JSON."""


class LiveStates:
    def __init__(self, max_bytes: int, *, verify: bool = False) -> None:
        self.max_bytes = max_bytes
        """The most memory (estimated, see the module) the kept objects may take; 0 keeps nothing."""
        self.verify = verify
        """Check on every put that the object equals its bytes decoded (tests: a detector keeping a
        tuple, a NaN or a non-JSON object in its state would behave differently once cached)."""
        self._entries: OrderedDict[bytes, tuple[bytes, Any]] = OrderedDict()
        self.bytes = 0
        """Estimated memory of the kept objects."""
        self.hits = 0
        self.misses = 0
        """Stored states decoded because no usable entry was kept (never kept, evicted, dropped)."""
        self.stale = 0
        """Entries found but not used: the stored bytes were not the ones they were encoded to."""
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: bytes) -> bool:
        return key in self._entries

    def take(self, key: bytes, stored: bytes | None) -> Any:
        """Remove ``key``'s entry and return its object if it was encoded to ``stored`` (else None:
        decode ``stored``). Whatever is returned is the caller's until it :meth:`put`\\ s it back."""
        entry = self._entries.pop(key, None)
        if entry is None:
            if stored is not None:
                self.misses += 1
            return None
        data, obj = entry
        self.bytes -= len(data) * OBJECT_BYTES_PER_BYTE
        if stored is not None and (data is stored or data == stored):
            self.hits += 1
            return obj
        self.stale += 1
        if stored is not None:
            self.misses += 1
        return None

    def put(self, key: bytes, data: bytes, obj: Any) -> None:
        """Keep ``obj``, whose encoding is ``data`` (the bytes going to the store), as ``key``'s most
        recently used entry; evict the least recently used entries beyond the bound."""
        if self.verify:
            decoded = orjson.loads(data)
            if decoded != obj:
                raise AssertionError(f"a live state differs from its bytes decoded: {obj!r} != {decoded!r}")
        cost = len(data) * OBJECT_BYTES_PER_BYTE
        old = self._entries.pop(key, None)
        if old is not None:
            self.bytes -= len(old[0]) * OBJECT_BYTES_PER_BYTE
        if cost > self.max_bytes:
            return
        self._entries[key] = (data, obj)
        self.bytes += cost
        entries = self._entries
        while self.bytes > self.max_bytes:
            _, (evicted, _obj) = entries.popitem(last=False)
            self.bytes -= len(evicted) * OBJECT_BYTES_PER_BYTE
            self.evicted += 1

    def discard(self, keys: Iterable[bytes]) -> None:
        """Forget these keys' entries (e.g. states the sweep rewrote or deleted)."""
        for key in keys:
            entry = self._entries.pop(key, None)
            if entry is not None:
                self.bytes -= len(entry[0]) * OBJECT_BYTES_PER_BYTE

    def drop_partitions(self, partitions: Iterable[int], partition_of: Callable[[bytes], int]) -> int:
        """Forget the entries of keys on these partitions (revoked or reassigned in a rebalance: the
        next micro-batch decodes what the store recovered). Returns how many were dropped."""
        wanted = set(partitions)
        if not wanted or not self._entries:
            return 0
        gone = [key for key in self._entries if partition_of(key) in wanted]
        self.discard(gone)
        return len(gone)

    def clear(self) -> None:
        self._entries.clear()
        self.bytes = 0
