import sys

from click.testing import CliRunner
from sqlalchemy import select

from review.tables import users
from stream.cli import main
from stream.store.alerts import engine_for


def run(args, url, tmp_path, stdin=None):
    return CliRunner().invoke(main, ["--data-dir", str(tmp_path), *args], input=stdin,
                              env={"CUSTODES_DATABASE_URL": url, "CUSTODES_CONFIG": ""})


def test_users_add_reads_the_password_from_stdin_and_disable_ends_access(database_url, tmp_path):
    r = run(["users", "add", "pat", "--role", "supervisor", "--linked-user-id", "u-pat", "--password-stdin"],
            database_url, tmp_path, stdin="a very long password\n")
    assert r.exit_code == 0, r.output
    assert "a very long password" not in r.output
    assert run(["users", "add", "pat", "--role", "reviewer", "--password-stdin"], database_url, tmp_path,
               stdin="another long password\n").exit_code == 1  # exists already
    assert run(["users", "add", "x", "--role", "reviewer", "--password-stdin"], database_url, tmp_path,
               stdin="short\n").exit_code == 1
    assert run(["users", "disable", "pat"], database_url, tmp_path).exit_code == 0
    listing = run(["users", "list"], database_url, tmp_path).output
    assert "pat" in listing and "disabled" in listing
    engine = engine_for(database_url)
    with engine.connect() as conn:
        row = conn.execute(select(users).where(users.c.name == "pat")).one()
    engine.dispose()
    assert row.password_hash.startswith("$argon2") and row.disabled and row.linked_user_id == "u-pat"
    out = run(["audit", "verify"], database_url, tmp_path)
    assert out.exit_code == 0 and "2 records" in out.output  # user_add and user_disable


def test_commands_are_registered():
    out = CliRunner().invoke(main, ["--help"]).output
    assert all(name in out for name in ("review", "users", "audit"))


def _store_alert(url):
    from detectors.alert import Alert
    from stream.store.alerts import AlertStore

    t = 1_770_000_000.0
    alert = Alert(id="a1", detector="third_party_transfer", detector_version=1, severity="high", score=70.0,
                  subject="u-alice", title="Personal data to an unapproved third party: pnc to {recipient_party}",
                  explanation="This user sent pnc to the party {recipient_party}.", ts=t, first_seen=t, last_seen=t,
                  evidence=({"id": "e1", "ts": t, "kind": "export", "recipient_party": "Jane Doe Ltd"},),
                  facts={"dataset": "pnc", "masked": {"recipient_party": "Jane Doe Ltd"}})
    store = AlertStore(url)
    store.upsert_alerts([alert])
    store.dispose()
    return alert


def test_alerts_reveal_is_recorded_in_the_audit_trail_before_anything_is_shown(database_url, tmp_path):
    from review.audit import query, verify

    alert = _store_alert(database_url)
    plain = run(["alerts", "--json"], database_url, tmp_path)
    assert plain.exit_code == 0, plain.output
    assert "u-alice" not in plain.output and "Jane Doe" not in plain.output
    assert "[masked recipient party]" in plain.output
    short = run(["alerts", "--reveal", "--reason", "why"], database_url, tmp_path)
    assert short.exit_code == 1 and "at least 10 characters" in short.output and "u-alice" not in short.output
    engine = engine_for(database_url)
    assert query(engine, action="reveal")[1] == 0  # refused: nothing shown, nothing recorded
    shown = run(["alerts", "--reveal", "--reason", "PSD referral 2026/14"], database_url, tmp_path)
    assert shown.exit_code == 0, shown.output
    assert "u-alice" in shown.output and "to Jane Doe Ltd" in shown.output
    records, total = query(engine, action="reveal", target=alert.id)
    assert total == 1 and records[0]["actor"].startswith("cli")
    assert records[0]["detail"] == {"scope": "identity+content", "reason": "PSD referral 2026/14",
                                    "via": "custodes alerts"}
    from stream.contract.settings import load
    from stream.store.audit_chain import load_key

    key = load_key(load(None, env={"CUSTODES_CONFIG": ""}, data_dir=tmp_path), create=False)
    assert verify(engine, key=key).ok  # the CLI's records are links of the keyed chain
    engine.dispose()


def test_replay_reveal_is_recorded_and_keeps_the_raw_alerts(database_url, tmp_path):
    import orjson

    from review.audit import query

    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(orjson.dumps({
        "@timestamp": f"2026-03-02T09:0{i}:00Z", "event": {"id": f"x{i}"}, "user": {"id": "u-alice"},
        "custodes": {"activity": "export", "record": {"count": 100},
                     "dataset": {"name": "pnc", "sensitivity": "high"}}}) for i in range(3)))
    out = tmp_path / "alerts.jsonl"
    args = ["replay", str(events), "--alerts-out", str(out), "--as-of", "2026-03-02T10:00:00Z"]
    assert run(args, database_url, tmp_path).exit_code == 0
    assert b"u-alice" not in out.read_bytes() and b"P-" in out.read_bytes()
    r = run([*args, "--reveal", "--reason", "check the detector on this file"], database_url, tmp_path)
    assert r.exit_code == 0, r.output
    (line,) = out.read_bytes().splitlines()
    assert orjson.loads(line)["subject"] == "u-alice"
    engine = engine_for(database_url)
    records, total = query(engine, action="reveal")
    engine.dispose()
    assert total == 1 and records[0]["target_type"] == "offline" and records[0]["target_id"] == "replay"
    assert records[0]["detail"]["alerts"] == 1 and records[0]["detail"]["reason"] == "check the detector on this file"


def test_a_reveal_that_cannot_be_recorded_shows_nothing(database_url, tmp_path, monkeypatch):
    import review.cli

    _store_alert(database_url)

    def broken(settings, d):
        raise RuntimeError("database gone")

    monkeypatch.setattr(review.cli, "record_disclosure", broken)
    r = run(["alerts", "--reveal", "--reason", "PSD referral 2026/14"], database_url, tmp_path)
    assert r.exit_code == 1 and "could not be recorded" in r.output and "u-alice" not in r.output
    monkeypatch.setitem(sys.modules, "review.cli", None)  # the review app not installed
    r = run(["alerts", "--reveal", "--reason", "PSD referral 2026/14"], database_url, tmp_path)
    assert r.exit_code == 1 and "review app" in r.output and "u-alice" not in r.output


def test_cli_reveals_are_emitted_as_review_events_that_reviewer_watch_counts(database_url, tmp_path, monkeypatch):
    """An operator's ``custodes alerts --reveal`` is watched like a reviewer's reveal in the app: one
    ``reveal_identity`` event per alert shown, about the alert's subject, valid canonical events that
    reviewer_watch counts towards ``max_reveals``."""
    import getpass

    import orjson

    import review.events
    from detectors.reviewer_watch import ReviewerWatch, ReviewerWatchConfig
    from stream.contract.codec import parse

    emitted = review.events.MemoryEmitter()
    monkeypatch.setattr(review.events, "emitter_for", lambda settings: emitted)
    _store_alert(database_url)
    assert run(["alerts"], database_url, tmp_path).exit_code == 0
    assert emitted.events == []  # nothing revealed, nothing emitted
    for _ in range(3):
        r = run(["alerts", "--reveal", "--reason", "PSD referral 2026/14"], database_url, tmp_path)
        assert r.exit_code == 0, r.output
    assert len(emitted.events) == 3
    events = [parse(orjson.dumps(e)) for e in emitted.events]
    assert {e.kind for e in events} == {"review"} and {e.action for e in events} == {"reveal_identity"}
    assert {e.user_id for e in events} == {getpass.getuser()}
    assert all(e.doc["custodes"]["subject"]["id"] == "u-alice" for e in events)
    assert len({e.id for e in events}) == 3  # three reveals, three events: none folds as a duplicate
    detector = ReviewerWatch(ReviewerWatchConfig(max_reveals=2))
    state: dict = {}
    keys = [h.key for e in events for h in detector.hits(e.user_id, e, state, _no_reference(), e.ts)]
    assert keys == ["reveals"]  # the third reveal is one more than max_reveals


def test_a_replay_reveal_emits_one_event_per_alert_shown(database_url, tmp_path, monkeypatch):
    import orjson

    import review.events
    from stream.contract.codec import parse

    emitted = review.events.MemoryEmitter()
    monkeypatch.setattr(review.events, "emitter_for", lambda settings: emitted)
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(orjson.dumps({
        "@timestamp": f"2026-03-02T09:0{i}:00Z", "event": {"id": f"x{i}"}, "user": {"id": u},
        "custodes": {"activity": "export", "record": {"count": 100},
                     "dataset": {"name": "pnc", "sensitivity": "high"}}})
        for u in ("u-alice", "u-bob") for i in range(3)))
    out = tmp_path / "alerts.jsonl"
    r = run(["replay", str(events), "--alerts-out", str(out), "--as-of", "2026-03-02T10:00:00Z", "--reveal",
             "--reason", "check the detector on this file"], database_url, tmp_path)
    assert r.exit_code == 0, r.output
    shown = [orjson.loads(line)["id"] for line in out.read_bytes().splitlines()]
    assert len(shown) == 2
    parsed = [parse(orjson.dumps(e)) for e in emitted.events]
    assert sorted(e.doc["custodes"]["record"]["ids"][0] for e in parsed) == sorted(f"alert:{a}" for a in shown)
    assert len({e.id for e in parsed}) == 2


def _no_reference():
    from detectors.reference import Reference

    return Reference()
