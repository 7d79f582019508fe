"""``custodes run --demo``: a small synthetic organisation streamed live into the broker.

:func:`run_demo` writes the organisation's reference data to ``<data_dir>/demo/reference/`` and
publishes it to the compacted reference topics (:func:`stream.detection.reference.push`), which every worker
follows, so the detectors know the demo's staff, cases and registers without a restart. It then
produces the organisation's ordinary activity at a steady ``rate_eps``, stamped with the current time
(a working day is compressed into minutes), and every ``scenario_every_s`` seconds one insider
scenario (:func:`scenario_burst`), so alerts appear within a minute. Messages hold newline-delimited
canonical events packed per home partition of their user, like ``custodes ingest``.

``after_hours`` is never played: unusual_volume needs 14 days of a user's history first. Because
days are compressed, a demo left running for hours also raises volume-type false positives.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from stream.contract.settings import Settings
from stream.sources import device

from .behaviour import near
from .generate import merged
from .organisation import Organisation, Person, build, colleague_record
from .render import iso, render
from .scenarios import ABROAD, DATE_OF_BIRTH, REGISTRATIONS

DEMO_SCENARIOS = ("bulk_export_third_party", "group_chat_personal_data", "neighbour_lookups", "impossible_travel",
                  "leaver_still_active", "small_cell_export", "low_and_slow")
LEAVERS = 4
"""Staff marked as having left yesterday (the leaver_still_active scenario uses them)."""


def demo_organisation(seed: int, staff: int, today: datetime | None = None) -> tuple[Organisation, list[Person]]:
    """The demo organisation (a week from yesterday, no joiners) and the people who left yesterday."""
    today = today or datetime.now(UTC)
    start = (today - timedelta(days=1)).date()
    org = build(seed, staff + LEAVERS, 7, start, joiner_rate=0.0, leaver_rate=0.0)
    leavers = org.staff[-LEAVERS:]
    for p in leavers:
        p.leave_day = 0  # last day yesterday: any activity from midnight UTC is after leaving
    return org, leavers


def canonical(line: bytes, is_device: bool) -> dict[str, Any]:
    doc = orjson.loads(line)
    return device.normalise(doc) if is_device else doc


def ordinary(org: Organisation, leavers: list[Person]) -> Iterator[dict[str, Any]]:
    """The staff's ordinary events (canonical documents), in order, round and round (fresh ids each time)."""
    staying = Organisation(org.seed, org.start, org.days, [p for p in org.staff if p not in leavers], org.cases)
    run = 0
    while True:
        run += 1
        for _, _, _, is_device, line in merged(staying, [], None, travel=False):
            doc = canonical(line, is_device)
            doc["event"]["id"] = f"{doc['event']['id']}-r{run}"
            yield doc


def scenario_burst(org: Organisation, leavers: list[Person], name: str, n: int, now: float,
                   rng: random.Random) -> list[dict[str, Any]]:
    """One insider scenario's events, stamped ``now`` onwards (a second or so apart)."""
    staying = [p for p in org.staff if p not in leavers]
    p = leavers[n % len(leavers)] if name == "leaver_still_active" else staying[(n * 7919) % len(staying)]
    if name == "small_cell_export":
        p = next((q for q in staying[n % len(staying):] + staying if q.pattern == "office"), p)
    here = near(rng, p.station.lat, p.station.lon)
    plan: list[tuple[str, dict[str, Any]]] = []
    if name == "bulk_export_third_party":
        plan = [("export", {"dataset": "firearm-certificates", "sensitivity": "high", "count": 30000,
                            "file": "holders.csv"}),
                ("upload", {"url": "upload.directmail-agency.example", "dataset": "firearm-certificates",
                            "sensitivity": "high", "count": 30000, "file": "holders.csv"})]
    elif name == "group_chat_personal_data":
        text = (f"Anyone know this one? Jane Example, DOB {rng.choice(DATE_OF_BIRTH)}, lives "
                f"{p.station.districts[0]} 2RD, drives {rng.choice(REGISTRATIONS)}")
        plan = [("group_msg", {"app": "com.whatsapp", "policy_set": "managed-phone", "group": "wa-response-241",
                               "text": text, "media": [("licence.jpg", "image/jpeg")], "host": p.phone, **here})]
    elif name == "neighbour_lookups":
        plan = [("lookup", {"case": None, "record": f"P-NB{p.idx:05d}-{k:03d}", "district": p.home_district,
                            "dataset": "pnc-persons", "sensitivity": "high"}) for k in range(3)]
        plan.append(("lookup", {"case": None, "record": colleague_record(staying[0]), "district": None,
                                "dataset": "niche-nominals", "sensitivity": "medium"}))
    elif name == "impossible_travel":
        lat, lon = rng.choice(ABROAD)
        plan = [("logon", dict(here)), ("logon", {"lat": lat, "lon": lon, "host": "UNMANAGED-000001"})]
    elif name == "leaver_still_active":
        case = p.cases[0]
        plan = [("logon", near(rng, p.home_lat, p.home_lon)),
                ("lookup", {"case": case.ref, "record": case.records[0], "district": case.district,
                            "dataset": "pnc-persons", "sensitivity": "high"})]
    elif name == "small_cell_export":
        plan = [("export", {"dataset": "cell-site-footfall", "sensitivity": "medium", "count": 400,
                            "min_group": 3, "file": "footfall.csv"})]
    elif name == "low_and_slow":
        plan = [("email", {"to": [f"{p.name.split()[0].lower()}77@gmail.com"], "dataset": "pnc-persons",
                           "sensitivity": "high", "count": 40, "file": "notes.xlsx"})]
    else:
        raise ValueError(f"no demo for scenario {name!r}")
    out = []
    for i, (kind, payload) in enumerate(plan):
        is_device, doc = render(p, kind, payload, now + i, f"demo-{org.seed}-{int(now)}-{name}-{i}")
        out.append(device.normalise(doc) if is_device else doc)
    return out


def wait_until_ready(settings: Settings, stop_event: threading.Event, timeout_s: float) -> bool:
    """Poll the local worker's ``/ready`` until it answers 200 (True) or ``timeout_s`` passes (False)."""
    import urllib.error
    import urllib.request

    host = "127.0.0.1" if settings.web_bind in ("0.0.0.0", "::", "") else settings.web_bind
    url = f"http://{host}:{settings.worker_port}/ready"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not stop_event.is_set():
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - a local URL
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        stop_event.wait(1.0)
    return False


def write_reference(settings: Settings, org: Organisation) -> list[Path]:
    return org.write_reference(Path(settings.data_dir) / "demo" / "reference")


def run_demo(settings: Settings, stop_event: threading.Event, seed: int = 7, staff: int = 60,
             rate_eps: float = 20.0, scenario_every_s: float = 20.0, settle_s: float = 3.0,
             wait_for_worker_s: float = 120.0) -> None:
    """Stream the demo organisation into ``settings.broker`` until ``stop_event`` is set.

    Before the first event it waits (at most ``wait_for_worker_s``) for the local worker's ``/ready``
    (partitions assigned), then ``settle_s`` more, so the worker has applied the demo's reference data
    (it polls the reference topics every second) before any event that needs it arrives."""
    from kafka import KafkaProducer

    from stream.contract.partitioning import home_partition
    from stream.contract.topics import ensure_topics
    from stream.detection.reference import push

    org, leavers = demo_organisation(seed, staff)
    push(settings, write_reference(settings, org))
    ensure_topics(settings, settings.broker or "")
    wait_until_ready(settings, stop_event, wait_for_worker_s)
    if stop_event.wait(settle_s):
        return
    producer = KafkaProducer(bootstrap_servers=(settings.broker or "").split(","), acks="all",
                             client_id="custodes-demo", linger_ms=20)
    topic = settings.topics.events
    partitions = len(producer.partitions_for(topic) or ()) or settings.partitions
    rng = random.Random(seed)
    events = ordinary(org, leavers)
    tick_s = 0.5
    per_tick = max(1, round(rate_eps * tick_s))
    next_scenario = time.time() + min(5.0, scenario_every_s)
    n_scenario = 0
    try:
        while not stop_event.is_set():
            now = time.time()
            batch = []
            for _ in range(per_tick):
                doc = next(events)
                doc["@timestamp"] = iso(now)
                batch.append(doc)
            if now >= next_scenario:
                name = DEMO_SCENARIOS[n_scenario % len(DEMO_SCENARIOS)]
                batch.extend(scenario_burst(org, leavers, name, n_scenario, now, rng))
                n_scenario += 1
                next_scenario = now + scenario_every_s
            by_partition: dict[int, list[bytes]] = {}
            for doc in batch:
                by_partition.setdefault(home_partition(doc["user"]["id"], partitions), []).append(orjson.dumps(doc))
            for p, lines in by_partition.items():
                producer.send(topic, value=b"\n".join(lines), partition=p, timestamp_ms=int(now * 1000))
            producer.flush()
            stop_event.wait(max(0.0, tick_s - (time.time() - now)))
    finally:
        producer.close()
