"""Which partition is a user's home: the Kafka default partitioner (murmur2 of the key), as producers
and Faust compute it, so events of one user meet their detector state on one partition."""

from __future__ import annotations

from functools import lru_cache

from kafka.partitioner.default import murmur2


def _partition(key: bytes, partitions: int) -> int:
    return (murmur2(key) & 0x7FFFFFFF) % partitions


@lru_cache(maxsize=262_144)
def home_partition(user_id: str, partitions: int) -> int:
    return _partition(user_id.encode(), partitions)


@lru_cache(maxsize=262_144)
def key_partition(key: bytes, partitions: int) -> int:
    """The partition the default partitioner (Java's, aiokafka's ``DefaultPartitioner``) gives a
    record key on a topic of ``partitions`` partitions numbered from 0."""
    return _partition(key, partitions)
