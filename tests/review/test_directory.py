"""The staff reference of the person pages: the files, plus the reference topics when a broker is set
(as the worker reads them), so a site that feeds HR data through Kafka sees teams, peers and notice
dates on the People pages too."""

from __future__ import annotations

import orjson
import pytest

from review.directory import FileDirectory, TopicDirectory, directory_for
from stream.contract.settings import load
from stream.detection.reference import push
from tests.stream.processes import wait_until


def _settings(tmp_path, **overrides):
    return load(None, env={"CUSTODES_CONFIG": ""}, data_dir=str(tmp_path / "data"), **overrides)


def _staff_file(directory, *people):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "staff.jsonl").write_bytes(b"\n".join(orjson.dumps(p) for p in people) + b"\n")


def test_without_a_broker_the_files_are_read_and_re_read_when_they_change(tmp_path):
    ref = tmp_path / "reference"
    _staff_file(ref, {"user_id": "u-ann", "team": "burglary"})
    directory = directory_for(_settings(tmp_path, reference_dir=str(ref)))
    assert isinstance(directory, FileDirectory)
    directory.start()
    assert directory.current().staff["u-ann"].team == "burglary"
    _staff_file(ref, {"user_id": "u-ann", "team": "fraud"}, {"user_id": "u-bo", "team": "fraud"})
    assert directory.current().staff["u-ann"].team == "fraud" and "u-bo" in directory.current().staff
    directory.stop()


def test_with_a_broker_but_no_reachable_topics_the_files_still_serve(tmp_path):
    ref = tmp_path / "reference"
    _staff_file(ref, {"user_id": "u-ann", "team": "burglary"})
    directory = TopicDirectory(_settings(tmp_path, reference_dir=str(ref), broker="127.0.0.1:1"))
    assert directory.current().staff["u-ann"].team == "burglary"  # before and without any topic


@pytest.mark.kafka
def test_reference_topics_apply_on_top_of_the_files_as_they_arrive(kafka_broker, topic_prefix, tmp_path):
    ref = tmp_path / "reference"
    _staff_file(ref, {"user_id": "u-ann", "team": "burglary"}, {"user_id": "u-cy", "team": "burglary"})
    settings = _settings(tmp_path, reference_dir=str(ref), broker=kafka_broker.bootstrap,
                         reference_topic_prefix=f"{topic_prefix}ref-", reference_reload_s=1)
    pushed = tmp_path / "pushed" / "staff.jsonl"
    _staff_file(pushed.parent, {"user_id": "u-ann", "team": "fraud", "notice_date": "2026-11-20"},
                {"user_id": "u-dee", "team": "fraud"})
    assert push(settings, [pushed]) == {"staff": 2}
    directory = directory_for(settings)
    assert isinstance(directory, TopicDirectory)
    directory.start()
    try:
        current = wait_until(lambda: (r := directory.current()).staff.get("u-dee") and r, 60,
                             message="the pushed staff record")
        assert current.staff["u-ann"].team == "fraud"  # the topic's record replaces the file's
        assert current.staff["u-ann"].notice_at is not None
        assert current.staff["u-cy"].team == "burglary"  # the files' other records stay
        deleted = tmp_path / "deleted" / "staff.jsonl"
        _staff_file(deleted.parent, {"user_id": "u-dee", "deleted": True})
        push(settings, [deleted])
        wait_until(lambda: "u-dee" not in directory.current().staff, 60, message="the tombstone applied")
        # a file edit reloads the files and keeps the topics' records on top
        _staff_file(ref, {"user_id": "u-ann", "team": "burglary"}, {"user_id": "u-cy", "team": "robbery"})
        wait_until(lambda: directory.current().staff["u-cy"].team == "robbery", 30, message="the file reload")
        assert directory.current().staff["u-ann"].team == "fraud"
    finally:
        directory.stop()
    assert not directory._thread.is_alive() and not directory.failed
