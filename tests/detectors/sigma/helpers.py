"""Compiling Sigma rules from YAML text for the tests (pySigma parses; the pipeline as shipped)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sigma.collection import SigmaCollection

from detectors.sigma import SigmaConfig, SigmaRules
from detectors.sigma.ruleset import RuleSet, compile_rules

ROOT = Path(__file__).resolve().parents[3]


def ruleset(*texts: str, placeholders: tuple[str, ...] = ("names",), **kwargs: Any) -> RuleSet:
    from stream.detection.rules import _field_map, load_pipeline

    pipeline = load_pipeline(ROOT / "config" / "sigma-pipeline.yml")
    parsed = []
    for n, text in enumerate(texts):
        for rule in SigmaCollection.from_yaml(text, resolve_references=False).rules:
            pipeline.apply(rule)
            parsed.append((rule, f"rule{n}.yml"))
    return compile_rules(parsed, placeholders=placeholders, field_map=_field_map(pipeline), **kwargs)


def unit(*texts: str, config: SigmaConfig | None = None, **kwargs: Any) -> SigmaRules:
    rs = ruleset(*texts, **kwargs)
    assert not rs.refused, [r.message() for r in rs.refused]
    return SigmaRules(rs, config or SigmaConfig(placeholders={"names": ("alice", "bob")}))


def detection(body: str, extra: str = "") -> str:
    """A rule with ``body`` as its detection (indented YAML) and a fixed id."""
    return f"""title: t
id: 11111111-1111-4111-8111-111111111111
logsource:
    product: custodes
{extra}detection:
{body}
level: medium
"""
