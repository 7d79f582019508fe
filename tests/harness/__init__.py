"""Test-session harness: starts REAL services (Apache Kafka in KRaft mode, PostgreSQL) for end-to-end tests.

The fixtures are registered from ``tests/conftest.py``:

* ``kafka_broker`` (session) -- a single-node KRaft broker on 127.0.0.1, see :mod:`.kafka`;
* ``topic_prefix`` (function) -- a unique ``t<uuid8>-`` prefix for topic names;
* ``postgres_server`` (session), ``postgres_url`` and ``database_url`` (function), see :mod:`.postgres`.

A missing service skips the test locally and fails it under ``CI=true`` (:func:`.services.service_unavailable`).
"""
