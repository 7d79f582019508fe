"""Masked values stay masked in alert text too (issue 14, item 3).

Every detector is driven, through validation and the detector engine as in the worker, by events that
carry a marker value in every field the review app masks (user name, file name, message content,
case reference, recipient party, record ids, media, e-mail recipients, location; the subjects' user
ids are markers too). The alerts are stored, put into cases, given pending reveal requests, and then
every GET route of the role table (tests/review/test_routes.py, which checks it covers every route) is
read by an account that may use it: no page, API response or export holds a marker. After a reveal of
identity and content the alert page and API show them (and lists and exports still do not).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient

from detectors.engine import Engine
from detectors.masking import MASKED_FACTS, MASKED_FIELDS, secrets_of
from detectors.reference import load as load_reference
from detectors.registry import CATALOG, build
from detectors.signal import Indicator
from review.tables import reveals
from stream.contract.schema import validate
from stream.contract.settings import load as load_settings

from .conftest import ACCOUNTS, Clock
from .conftest import build as build_app
from .seed import login, seed
from .test_routes import TABLE

REFERENCE_DIR = Path(__file__).resolve().parents[2] / "config" / "reference"
SUBJECT = "mrk-subject-7c1f"
REVIEWER = "mrk-reviewer-4d2e"
M = {
    "user_name": "MRK Username q4t",
    "file_name": "mrk-file-3xk.csv",
    "content": "MRK-content-8wz",
    "case_ref": "MRKCASE-9q1",
    "recipient_party": "MRK Party 5zy",
    "record_ids": ["MRK-REC-0001a", "MRK-REC-0002b"],
    "media": "mrk-media-6vb.jpg",
    "email_to": "mrk-mail-2uh@ext-recipient.example",
}
MARKERS = [
    SUBJECT,
    REVIEWER,
    M["user_name"],
    M["file_name"],
    M["content"],
    M["case_ref"],
    M["recipient_party"],
    *M["record_ids"],
    M["media"],
    M["email_to"].split("@")[0],
]
PLACES = [(37.4219, 142.6871), (-33.8568, 151.2153)]  # 7,800 km apart, ten minutes between
PLACE_MARKERS = ["37.42", "142.69", "-33.86", "151.22"]
T = datetime(2026, 3, 2, 9, 0, tzinfo=UTC).timestamp()


def marked(n: int, user: str, activity: str, action: str, minute: float, **extra) -> dict:
    """A canonical document carrying a marker in every masked field."""
    doc = {
        "@timestamp": datetime.fromtimestamp(T + minute * 60, UTC).isoformat(),
        "event": {"id": f"mrk-{n}", "action": action},
        "user": {"id": user, "name": M["user_name"]},
        "file": {"name": M["file_name"]},
        "message": f"{M['content']} lives NG7 2RD",
        "email": {"to": {"address": [M["email_to"]]}},
        "custodes": {
            "activity": activity,
            "case": {"ref": M["case_ref"]},
            "recipient": {"party": M["recipient_party"]},
            "record": {"ids": M["record_ids"]},
            "media": [{"type": "image/jpeg", "name": M["media"]}],
        },
    }
    for path, value in extra.items():
        node = doc
        *parents, leaf = path.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return doc


def _exports(n0: int) -> list[dict]:
    return [
        marked(
            n0 + i,
            SUBJECT,
            "export",
            "report-download",
            i,
            **{
                "custodes.record.count": 5000,
                "custodes.dataset.name": "pnc-persons",
                "custodes.dataset.sensitivity": "special",
                "custodes.channel": "report",
            },
        )
        for i in range(3)
    ]


def _lookups(n0: int) -> list[dict]:  # a case the user is not assigned to, in their own home area
    return [
        marked(
            n0 + i,
            SUBJECT,
            "record_access",
            "record-view",
            5 + i,
            **{
                "custodes.dataset.name": "pnc-persons",
                "custodes.dataset.sensitivity": "high",
                "custodes.record.postcode_area": "NG7",
            },
        )
        for i in range(2)
    ]


def _message(n0: int) -> list[dict]:
    return [
        marked(
            n0,
            SUBJECT,
            "message",
            "message-sent",
            8,
            **{
                "custodes.policy_set": "managed-phone",
                "custodes.application.id": "com.whatsapp",
                "custodes.group.id": "wa-group-1",
            },
        )
    ]


def _aggregate(n0: int) -> list[dict]:
    return [
        marked(
            n0,
            SUBJECT,
            "export",
            "aggregate-export",
            9,
            **{
                "custodes.record.count": 40,
                "custodes.dataset.name": "footfall",
                "custodes.aggregate.min_group_size": 2,
                "custodes.channel": "sftp",
            },
        )
    ]


def _travel(n0: int) -> list[dict]:
    return [
        marked(n0 + k, SUBJECT, "logon", "logon", 10 + 10 * k, **{"source.geo.location": {"lat": lat, "lon": lon}})
        for k, (lat, lon) in enumerate(PLACES)
    ]


def _reviews(n0: int) -> list[dict]:  # a reviewer revealing about their own team; the subject about themself
    docs = [
        marked(n0 + i, REVIEWER, "review", "reveal_identity", 30 + i, **{"custodes.subject.id": SUBJECT})
        for i in range(3)
    ]
    return [*docs, marked(n0 + 3, SUBJECT, "review", "view", 34, **{"custodes.subject.id": SUBJECT})]


def _later(n0: int) -> list[dict]:  # hours later: person_risk adds the earlier hours' alerts and signals
    return [marked(n0, SUBJECT, "logon", "logon", 240)]


STREAMS = {
    # detector id -> events (with markers in every masked field) that make it raise at least one alert.
    # A detector added to CATALOG needs an entry here (the test fails until it has one).
    "bulk_export": _exports,
    "third_party_transfer": _exports,  # named party and e-mail recipients
    "need_to_know": _lookups,
    "unsanctioned_messaging": _message,
    "small_cell_export": _aggregate,
    "impossible_travel": _travel,
    "leaver_activity": _message,  # any activity of someone who has left (staff directory below)
    "unusual_volume": _exports,  # "hours": warm-up off, 5 events in an hour never worked before (knobs below)
    "reviewer_watch": _reviews,
    "person_risk": _later,  # the subject's alerts above (their titles become its contribution notes)
}
SIGNAL_ONLY = frozenset(cls.id for cls in CATALOG if issubclass(cls, Indicator))
"""Behaviour indicators raise no alerts of their own: their signals reach reviewers only as person_risk's
contributions (plain-word notes, checked through person_risk's alert like every other text)."""
KNOBS = {"unusual_volume": {"warmup_days": 0, "off_hours_min_events": 5}, "reviewer_watch": {"max_reveals": 1}}


def stream() -> list[dict]:
    docs: list[dict] = []
    for make in dict.fromkeys(STREAMS.values()):  # each builder once, all detectors see every event
        docs += make(len(docs))
    return docs


def reference():
    texts = {p.name: p.read_text() for p in sorted(REFERENCE_DIR.iterdir()) if p.suffix in (".jsonl", ".csv")}
    texts["staff.jsonl"] += (
        "\n".join(
            orjson.dumps(r).decode()
            for r in (
                {
                    "user_id": SUBJECT,
                    "team": "Response North",
                    "role": "constable",
                    "home_postcode_area": "NG7",
                    "start_date": "2015-09-01",
                    "leave_date": "2026-01-31",
                },
                {"user_id": REVIEWER, "team": "Response North", "role": "reviewer", "start_date": "2015-09-01"},
            )
        )
        + "\n"
    )
    texts["cases.jsonl"] += orjson.dumps({"case_ref": M["case_ref"], "assigned": ["someone-else"]}).decode() + "\n"
    return load_reference(texts)


def run_detectors() -> list:
    knobs = {k: dict(v) for k, v in load_settings(env={}).detectors.items()}
    for det_id, more in KNOBS.items():
        knobs.setdefault(det_id, {}).update(more)
    engine = Engine(build(knobs, reference()), clock=lambda: T + 3600)
    by_user: dict[str, list] = {}
    for doc in stream():
        ev = validate(doc)
        by_user.setdefault(ev.user_id, []).append(ev)
    out = {}
    for user, events in by_user.items():
        _, got, failures = engine.run(user, events, None)
        assert not failures, failures
        out.update({a.id: a for a in got})
    return list(out.values())


@pytest.fixture
def alerts():
    missing = {cls.id for cls in CATALOG} - set(STREAMS) - SIGNAL_ONLY
    assert not missing, f"add marker events for {sorted(missing)} to STREAMS"
    got = run_detectors()
    silent = {cls.id for cls in CATALOG} - SIGNAL_ONLY - {a.detector for a in got}
    assert not silent, f"STREAMS raise no alert from {sorted(silent)}"
    return got


def account_for(role: str) -> str:
    return {"reviewer": "rob", "supervisor": "sam", "auditor": "aud", "admin": "adam"}[role]


def read_everything(app, clients: dict[str, TestClient], ids: dict[str, list[str]]) -> dict[str, str]:
    """Every GET route of the role table, by an account allowed to use it, for every object."""
    texts = {}
    for method, path, _, allowed in TABLE:
        if method != "GET":
            continue
        role = next((r for r in ("reviewer", "supervisor", "auditor", "admin") if allowed[r] == 200), None)
        if role is None:
            continue
        keys = [k for k in ("alert", "case", "reveal") if "{" + k + "}" in path]
        values = ids[keys[0]] if keys else [""]
        for v in values:
            url = path.format(**({keys[0]: v} if keys else {}))
            resp = clients[role].get(url)
            assert resp.status_code == 200, (url, resp.status_code)
            texts[url] = resp.text
    return texts


def leaks(texts: dict[str, str], markers: list[str]) -> list[tuple[str, str]]:
    return [(url, m) for url, text in texts.items() for m in markers if m.lower() in text.lower()]


def test_alert_text_facts_and_exports_never_show_masked_values_without_a_reveal(alerts, review_url, tmp_path):
    for a in alerts:  # the detectors themselves put no marker into text or plain facts
        plain = {k: v for k, v in a.facts.items() if k != MASKED_FACTS}
        text = (a.title + a.explanation + orjson.dumps(plain).decode()).lower()
        assert not [m for m in MARKERS[2:] + PLACE_MARKERS if m.lower() in text], (a.detector, a.title, a.facts)
    by_detector = {a.detector: a for a in alerts}
    assert "{recipient_party}" in by_detector["third_party_transfer"].title or any(
        "{recipient_party}" in a.title for a in alerts if a.detector == "third_party_transfer"
    )
    seed(review_url, alerts)
    app, _, _ = build_app(review_url, tmp_path, Clock(T + 3600))
    try:
        clients = {}
        for role in ("reviewer", "supervisor", "auditor", "admin"):
            clients[role] = TestClient(app, follow_redirects=False)
            clients[role].__enter__()
        csrf = {role: login(c, account_for(role)) for role, c in clients.items()}
        review = app.state.review.review
        rob = app.state.review.sessions.by_name("rob")
        case_ids, reveal_ids = [], []
        for subject in {a.subject for a in alerts}:
            mine = [a for a in alerts if a.subject == subject]
            cid = review.create_case(rob, mine[0].id, "")
            for a in mine[1:]:
                review.add_to_case(rob, cid, a.id)
            case_ids.append(str(cid))
        with app.state.review.engine.begin() as conn:
            for a in alerts:
                reveal_ids.append(
                    str(
                        conn.execute(
                            reveals.insert().values(
                                account="rita",
                                alert_id=a.id,
                                scope="content",
                                reason="pending request",
                                status="pending",
                                requested_at=datetime.now(UTC),
                            )
                        ).inserted_primary_key[0]
                    )
                )
        ids = {"alert": [a.id for a in alerts], "case": case_ids, "reveal": reveal_ids}

        texts = read_everything(app, clients, ids)
        assert any("/export" in url for url in texts) and any(url.startswith("/api/") for url in texts)
        assert "[masked recipient party]" in texts[f"/alerts/{by_detector['third_party_transfer'].id}"] or any(
            "[masked recipient party]" in texts[f"/alerts/{a.id}"]
            for a in alerts
            if a.detector == "third_party_transfer"
        )
        assert leaks(texts, MARKERS + PLACE_MARKERS) == []

        # rob reveals identity and content: the alert page and API show the values now
        post = {"X-CSRF-Token": csrf["reviewer"]}
        for a in alerts:
            for scope in ("identity", "content"):
                r = clients["reviewer"].post(
                    f"/api/alerts/{a.id}/reveals",
                    headers=post,
                    json={"scope": scope, "reason": "checking the evidence"},
                )
                assert r.status_code == 201
        for a in alerts:
            page = clients["reviewer"].get(f"/alerts/{a.id}").text
            api = clients["reviewer"].get(f"/api/alerts/{a.id}").text
            expected = secrets_of(a.facts, a.evidence) + [a.subject]
            for value in expected:
                assert value in api, (a.detector, value)
                assert value in page.replace("&#39;", "'"), (a.detector, value)
            hidden = a.facts.get(MASKED_FACTS, {})
            if "recipient_party" in hidden:
                assert M["recipient_party"] in orjson.loads(api)["title"]
            if "case_ref" in hidden and "{case_ref}" in a.explanation:
                assert M["case_ref"] in orjson.loads(api)["explanation"]
            if "from" in hidden:
                assert orjson.loads(api)["facts"]["from"] == [37.42, 142.69]
        # ... but a reveal is per alert page: lists and exports stay masked
        sam = clients["supervisor"]
        for a in alerts:
            r = sam.post(
                f"/api/alerts/{a.id}/reveals",
                headers={"X-CSRF-Token": csrf["supervisor"]},
                json={"scope": "content", "reason": "checking the evidence"},
            )
            assert r.status_code == 201
        again = read_everything(app, clients, ids)
        lists = {u: t for u, t in again.items() if not u.startswith(("/alerts/", "/api/alerts/"))}
        assert leaks(lists, MARKERS + PLACE_MARKERS) == []
    finally:
        for c in clients.values():
            c.__exit__(None, None, None)
        app.state.review.engine.dispose()


def test_masked_fields_cover_the_evidence_snapshot():
    """Every snapshot field that can hold a person's words, names or whereabouts is in MASKED_FIELDS
    (the marker test plants values in these)."""
    from detectors.base import SNAPSHOT_FIELDS

    personal = {"content", "file_name", "case_ref", "recipient_party", "lat", "lon"}
    assert personal <= set(SNAPSHOT_FIELDS) and personal | {"record_ids", "media", "email_to"} <= MASKED_FIELDS
    assert set(ACCOUNTS)  # the role accounts the scan logs in as exist
