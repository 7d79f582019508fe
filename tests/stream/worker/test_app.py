import asyncio

import pytest

from stream.contract.settings import load
from stream.worker.app import _ConsumerThread, create_app, set_fetch_max_wait


def test_the_producer_builds_record_batches_as_large_as_configured():
    # the producer has one request in flight per broker: with faust's default 16 KiB batches a
    # micro-batch's state writes took dozens of round trips (bench/README.md, streaming)
    app = create_app(load(env={"CUSTODES_BROKER": "127.0.0.1:9", "CUSTODES_WORKER_PORT": "0"}))
    assert app.conf.producer_max_batch_size == 1_000_000
    app = create_app(load(env={"CUSTODES_BROKER": "127.0.0.1:9", "CUSTODES_WORKER_PORT": "0",
                               "CUSTODES_PRODUCER_BATCH_MAX_BYTES": "65536"}))
    assert app.conf.producer_max_batch_size == 65_536


def test_worker_port_zero_turns_the_web_server_off():
    app = create_app(load(env={"CUSTODES_BROKER": "127.0.0.1:9", "CUSTODES_WORKER_PORT": "0"}))
    assert app.conf.web_enabled is False
    app = create_app(load(env={"CUSTODES_BROKER": "127.0.0.1:9", "CUSTODES_WORKER_PORT": "7001"}))
    assert app.conf.web_enabled is True and app.conf.web_port == 7001


def test_the_worker_consumer_fetches_with_the_configured_wait():
    # faust hard-codes fetch_max_wait_ms=1500, which held steady input back ~1.8 s (bench/latency.py)
    async def made() -> int:
        app = create_app(load(env={"CUSTODES_BROKER": "127.0.0.1:9", "CUSTODES_WORKER_PORT": "0",
                                   "CUSTODES_FETCH_MAX_WAIT_S": "0.25"}))
        thread = app.consumer._thread  # the consumer is built, not started: no connection
        assert isinstance(thread, _ConsumerThread)
        return thread._create_worker_consumer(app.transport)._fetch_max_wait_ms

    assert asyncio.run(made()) == 250


def test_fetch_wait_refuses_an_aiokafka_without_the_setting():
    with pytest.raises(RuntimeError, match="set_fetch_max_wait"):
        set_fetch_max_wait(object(), 0.1)
