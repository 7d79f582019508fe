"""The activity table (config/activities.toml, stream.sources.activities) and its use by the pipeline:
events without custodes.activity get one from ECS categorisation; the rest stay other and are counted."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from prometheus_client import CollectorRegistry

from detectors.event import ACTIVITY_KINDS
from stream.contract.settings import load as load_settings
from stream.sources import read
from stream.sources.activities import TableError, default_table, from_dict, load
from stream.telemetry.metrics import PipelineMetrics
from stream.worker.pipeline import Pipeline

ROOT = Path(__file__).resolve().parents[3]
SOURCES = ROOT / "tests" / "data" / "sources"


def doc(**event) -> dict:
    return {"@timestamp": "2026-12-01T10:00:00Z", "user": {"id": "u1"}, "event": event}


def test_shipped_table_loads_and_names_only_known_activities() -> None:
    table = load(ROOT / "config" / "activities.toml")
    assert table.rules and all(r.activity in ACTIVITY_KINDS for r in table.rules)
    assert {"o365.audit", "google_workspace.drive", "okta.system", "system.auth"} <= table.datasets


@pytest.mark.parametrize(("event", "kind"), [
    ({"category": ["authentication"], "type": ["start"], "outcome": "failure"}, "logon"),
    ({"category": "authentication", "type": "end"}, "logoff"),
    ({"category": ["session"], "type": ["start"]}, "logon"),
    ({"category": ["file"], "type": ["access"]}, "record_access"),
    ({"category": ["database"], "type": ["access"]}, "record_access"),
    ({"category": ["file"], "type": ["deletion"]}, "other"),
    ({"category": ["email"], "type": ["info"]}, "message"),
    ({"category": ["web"], "type": ["access"]}, "other"),
    ({"action": ["opened-file"], "category": ["file"], "type": ["info"]}, "record_access"),  # auditd: a list
    ({"action": "SSH_LOGIN", "dataset": "system.auth"}, "logon"),  # case-insensitive
    ({"action": "FileDownloaded", "dataset": "o365.audit"}, "export"),
    ({"action": "FileSyncDownloadedFull", "dataset": "o365.audit"}, "export"),
    ({"action": "download", "dataset": "google_workspace.drive"}, "export"),
    ({"action": "change_user_access", "dataset": "google_workspace.drive"}, "share"),
    ({"action": "login_failure", "dataset": "google_workspace.login"}, "logon"),
    ({"action": "user.session.start", "dataset": "okta.system"}, "logon"),
    ({"code": "4624", "provider": "Microsoft-Windows-Security-Auditing"}, "logon"),
    ({"code": "4634", "provider": "Microsoft-Windows-Security-Auditing"}, "logoff"),
    ({"code": "6416", "provider": "Microsoft-Windows-Security-Auditing"}, "removable_media"),
    ({"code": "4663", "provider": "Microsoft-Windows-Security-Auditing"}, "record_access"),
])
def test_ecs_categorisation_gives_the_activity(event: dict, kind: str) -> None:
    assert default_table().classify(doc(**event)) == kind


def test_web_upload_needs_post_or_put_to_a_domain() -> None:
    table = default_table()
    upload = doc(category=["web"], type=["access"])
    upload["http"] = {"request": {"method": "POST"}}
    upload["url"] = {"domain": "files.example"}
    assert table.classify(upload) == "web_upload"
    upload["http"]["request"]["method"] = "GET"
    assert table.classify(upload) == "other"


def test_unknown_combinations_are_unclassified_with_a_bounded_dataset_label() -> None:
    table = default_table()
    assert table.classify(doc(action="something-new", dataset="o365.audit")) is None
    assert table.classify(doc(category=["nonsense"])) is None
    assert table.dataset_label(doc(dataset="O365.Audit")) == "o365.audit"
    assert table.dataset_label(doc(dataset="acme.homegrown")) == "other"  # not in the table: bounded
    assert table.dataset_label(doc(module="okta")) == "other"
    assert table.dataset_label(doc(action="x")) == "unknown"


def test_table_errors_name_the_rule() -> None:
    with pytest.raises(TableError, match="rule 1: activity"):
        from_dict({"rule": [{"activity": "exfiltrate", "event.action": "x"}]})
    with pytest.raises(TableError, match="needs at least one condition"):
        from_dict({"rule": [{"activity": "export"}]})
    with pytest.raises(TableError, match="non-empty list"):
        from_dict({"rule": [{"activity": "export", "event.action": []}]})
    with pytest.raises(TableError, match="unknown key"):
        from_dict({"rules": []})
    table = from_dict({"rule": [{"activity": "export", "event.action": "*"}], "datasets": {"known": ["Acme"]}})
    assert table.classify(doc(action="anything")) == "export"
    assert table.classify(doc(outcome="success")) is None  # "*" needs a value
    assert "acme" in table.datasets


def pipeline(metrics: PipelineMetrics | None = None) -> Pipeline:
    return Pipeline(load_settings(env={}), [], clock=lambda: 1796119200.0, metrics=metrics)  # 2026-12-01


def test_pipeline_derives_activity_and_counts_the_unclassified() -> None:
    metrics = PipelineMetrics(CollectorRegistry())
    p = pipeline(metrics)
    docs = [
        doc(category=["authentication"], type=["start"]),                      # -> logon
        doc(action=["opened-file"], category=["file"], dataset="auditd_manager.auditd"),  # list action
        doc(action="mystery", dataset="o365.audit"),                           # unclassified, known dataset
        doc(action="mystery", dataset="acme.homegrown"),                       # unclassified, other
        {"@timestamp": "2026-12-01T10:00:00Z", "user": {"id": "u2"}},          # unclassified, unknown
        {**doc(category=["authentication"]), "custodes": {"activity": "other"}},  # said "other": kept
        {**doc(action="FileDownloaded", dataset="o365.audit"), "custodes": {"activity": "print"}},  # said: kept
        {"@timestamp": "2026-12-01T10:00:00Z", "user": {"id": "u3"}, "event": {"action": "ssh_login"}},  # closed
    ]
    value = b"\n".join(orjson.dumps(d) for d in docs)
    split = p.split(value, "t", 0, 0)
    assert not split.dead
    kinds = {user: [ev.kind for ev in evs] for user, evs in split.groups.items()}
    assert kinds == {"u1": ["logon", "record_access", "other", "other", "other", "print"], "u2": ["other"],
                     "u3": ["logon"]}
    events = [ev for evs in split.groups.values() for ev in evs]
    assert events[1].action == "opened-file"
    assert p.unclassified == {"o365.audit": 1, "other": 1, "unknown": 1}
    got = {s.labels["dataset"]: s.value for m in metrics.registry.collect()
           if m.name == "custodes_events_unclassified" for s in m.samples if s.name.endswith("_total")}
    assert got == {"o365.audit": 1.0, "other": 1.0, "unknown": 1.0}


def test_no_table_means_no_derivation() -> None:
    settings = load_settings(env={}).model_copy(update={"activities_file": None})
    p = Pipeline(settings, [], clock=lambda: 1796119200.0)
    split = p.split(orjson.dumps(doc(category=["authentication"], type=["start"])), "t", 0, 0)
    assert [ev.kind for evs in split.groups.values() for ev in evs] == ["other"]


@pytest.mark.parametrize(("name", "kinds"), [
    ("ecs-windows-security.jsonl", ["record_access", "logon", "logon", "logoff", "removable_media"]),
    ("ecs-linux.jsonl", ["logon", "logon", "other", "record_access", "logon"]),
    ("ecs-proxy.jsonl", ["web_upload", "other"]),
    ("ecs-email.jsonl", ["message"]),
])
def test_ecs_fixtures_classify(name: str, kinds: list[str]) -> None:
    records = list(read(SOURCES / name, check=True))
    assert all(r.ok for r in records), [r.error for r in records if not r.ok]
    table = default_table()
    assert [table.classify(r.doc) for r in records] == kinds


def test_windows_event_without_user_takes_it_from_event_data() -> None:
    first = next(read(SOURCES / "ecs-windows-security.jsonl"))
    assert first.doc["user"] == {"name": "dadmin", "domain": "CONTOSO",
                                 "id": "S-1-5-21-3457937927-2839227994-823803824-1104"}


def test_docs_list_every_rule_and_format() -> None:
    from stream.sources.files import FORMATS

    text = (ROOT / "docs" / "sources.md").read_text()
    for rule in default_table().rules:
        assert rule.name and f"| {rule.name} |" in text, rule.name
    for fmt in FORMATS:
        assert f"`{fmt}`" in text, fmt
