"""Running a corpus case: canonical events through validation and the whole CATALOG, as the runtime
does (events grouped by user in arrival order, one Engine.run per user, state through JSON)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from detectors.alert import Alert
from detectors.engine import Engine
from detectors.registry import build
from stream.contract.schema import validate
from stream.contract.settings import load as load_settings

from .helpers import example_reference

CORPUS = Path(__file__).parent / "corpus"


@dataclass
class Case:
    name: str
    description: str
    expect: list[str]
    docs: list[dict[str, Any]]


def read_case(path: Path) -> Case:
    lines = [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
    header, docs = lines[0], lines[1:]
    return Case(path.stem, header["case"], sorted(header["expect"]), docs)


def cases() -> list[Case]:
    return [read_case(p) for p in sorted(CORPUS.glob("*.jsonl"))]


def run_case(case: Case, batch: int | None = None) -> list[Alert]:
    """All alerts (latest version of each id). ``batch``: events per message, like ingest batching."""
    settings = load_settings(env={})
    engine = Engine(build(settings.detectors, example_reference()), clock=lambda: 1_900_000_000.0)
    events = [validate(doc) for doc in case.docs]
    size = batch or len(events) or 1
    states: dict[str, Any] = {}
    alerts: dict[str, Alert] = {}
    for start in range(0, len(events), size):
        groups: dict[str, list] = {}
        for ev in events[start:start + size]:
            groups.setdefault(ev.user_id, []).append(ev)
        for user, evs in groups.items():
            state, got, failures = engine.run(user, evs, states.get(user))
            assert not failures, failures
            if state is None:
                states.pop(user, None)
            else:
                states[user] = orjson.loads(orjson.dumps(state))
            for a in got:
                if a.id not in alerts or a.count >= alerts[a.id].count:
                    alerts[a.id] = a
    return list(alerts.values())
