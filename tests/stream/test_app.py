from stream.app import create_app
from stream.settings import load


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
