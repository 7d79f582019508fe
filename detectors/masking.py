"""What of an alert stays masked until a reviewer reveals it, and how masked text is shown.

Evidence snapshots keep the fields in :data:`MASKED_FIELDS` as they were; every reader outside a
reveal shows them as :func:`mask_value` (that something is there and how big, never the value).

An alert's title, explanation and facts never hold such a value as plain text. A detector that needs
one in its text writes a placeholder ``{name}`` and puts the value in ``facts["masked"][name]``
(:func:`masked`); readers show the text through :func:`fill` (the value while content is revealed,
else ``[masked name]``) and the facts through :func:`shown_facts`. :func:`scrub` is a second line:
any masked evidence value still found literally in an alert's text (an alert stored before
placeholders, a detector that forgot) is replaced too.

Pure: no I/O; the review app, ``custodes alerts`` and ``custodes replay`` use the same functions.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

MASKED_FIELDS = frozenset(
    {
        "content",
        "file_name",
        "record_ids",
        "case_ref",
        "recipient_party",
        "lat",
        "lon",
        "media",
        "email_to",
        "user_id",
        "user_name",
        "message",
    }
)
"""Evidence snapshot keys masked unless content is revealed."""

MASKED_FACTS = "masked"
"""The facts key that holds the values an alert's placeholders refer to."""

PLACEHOLDER = re.compile(r"\{([a-z][a-z0-9_]{0,63})\}")
SCRUB_MIN_CHARS = 3
"""Shorter masked values are not searched for in text (``r1`` would mask unrelated words)."""


def placeholder(name: str) -> str:
    """``{name}``: what a detector writes into alert text where a masked value belongs."""
    if not PLACEHOLDER.fullmatch("{" + name + "}"):
        raise ValueError(f"not a placeholder name: {name!r}")
    return "{" + name + "}"


def masked(**values: Any) -> dict[str, Any]:
    """``facts`` entries for masked values: ``{**facts, **masked(case_ref=ev.case_ref)}``. None is left out."""
    kept = {k: v for k, v in values.items() if v is not None}
    for k in kept:
        placeholder(k)
    return {MASKED_FACTS: kept} if kept else {}


def token(name: str) -> str:
    return f"[masked {name.replace('_', ' ')}]"


def show(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(show(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def fill(text: str, values: Mapping[str, Any] | None, reveal: bool) -> str:
    """``text`` with each ``{name}`` whose name is in ``values``: the value when ``reveal``, else the
    masked token. Other braces stay as they are. One pass: a revealed value is never re-filled."""
    if not text or "{" not in text or not values:
        return text

    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in values:
            return m.group(0)
        return show(values[name]) if reveal else token(name)

    return PLACEHOLDER.sub(sub, text)


def mask_value(value: Any) -> dict[str, Any]:
    """What a masked field shows: that something is there and how big, never the value."""
    if isinstance(value, str):
        return {"masked": True, "size": f"{len(value):,} characters"}
    if isinstance(value, list | tuple):
        return {"masked": True, "size": f"{len(value):,} items"}
    return {"masked": True, "size": ""}


def masked_evidence(evidence: Iterable[Any], reveal_content: bool) -> list[dict[str, Any]]:
    """Copies of the evidence snapshots with sensitive fields replaced, oldest first."""
    out = []
    for snap in evidence:
        if not isinstance(snap, dict):
            continue
        copy = {}
        for key, value in snap.items():
            copy[key] = mask_value(value) if key in MASKED_FIELDS and not reveal_content else value
        out.append(copy)
    out.sort(key=lambda s: s.get("ts") if isinstance(s.get("ts"), int | float) else 0)
    return out


def secrets_of(facts: Any, evidence: Iterable[Any]) -> list[str]:
    """The masked values of an alert as strings worth searching for (longest first): its
    ``facts["masked"]`` values and its evidence's masked fields."""
    found: set[str] = set()

    def add(value: Any) -> None:
        if isinstance(value, list | tuple):
            for v in value:
                add(v)
        elif isinstance(value, dict):
            for v in value.values():
                add(v)
        elif isinstance(value, str):
            v = value.strip()
            if len(v) >= SCRUB_MIN_CHARS:
                found.add(v)

    if isinstance(facts, dict) and isinstance(facts.get(MASKED_FACTS), dict):
        add(facts[MASKED_FACTS])
    for snap in evidence or ():
        if isinstance(snap, dict):
            for key in MASKED_FIELDS.intersection(snap):
                add(snap[key])
    return sorted(found, key=lambda s: (-len(s), s))


def scrub(value: Any, secrets: list[str]) -> Any:
    """``value`` (text, or lists/dicts of it) with every occurrence of a secret (any case) replaced by
    ``[masked]``."""
    if not secrets:
        return value
    if isinstance(value, str):
        lowered = value.lower()
        if not any(s.lower() in lowered for s in secrets):
            return value
        pattern = re.compile("|".join(re.escape(s) for s in secrets), re.IGNORECASE)
        return pattern.sub("[masked]", value)
    if isinstance(value, list | tuple):
        return [scrub(v, secrets) for v in value]
    if isinstance(value, dict):
        return {k: scrub(v, secrets) for k, v in value.items()}
    return value


def shown_facts(facts: Any, reveal: bool, secrets: list[str] | None = None) -> dict[str, Any]:
    """The facts as a reader sees them: ``facts["masked"]`` entries flattened in under their names,
    as :func:`mask_value` unless ``reveal``; other values scrubbed of ``secrets`` unless ``reveal``."""
    if not isinstance(facts, dict):
        return {}
    out: dict[str, Any] = {}
    for k, v in facts.items():
        if k == MASKED_FACTS and isinstance(v, dict):
            continue
        out[k] = v if reveal else scrub(v, secrets or [])
    hidden = facts.get(MASKED_FACTS)
    if isinstance(hidden, dict):
        for k, v in hidden.items():
            out[k] = v if reveal else mask_value(v)
    return out


def shown_text(text: str, facts: Any, reveal: bool, secrets: list[str] | None = None) -> str:
    """Alert text as a reader sees it: placeholders filled (:func:`fill`), and unless ``reveal`` any
    masked value still there literally scrubbed."""
    values = facts.get(MASKED_FACTS) if isinstance(facts, dict) else None
    text = fill(text, values if isinstance(values, dict) else None, reveal)
    return text if reveal else scrub(text, secrets or [])


def shown_alert(alert: Mapping[str, Any], reveal: bool) -> dict[str, Any]:
    """A copy of a stored or serialised alert (``Alert.to_dict()`` or a store row) with its title,
    explanation, facts and evidence as a reader without (``reveal=False``) or with a content reveal
    sees them. The subject is left alone: pseudonymising it is the caller's business."""
    out = dict(alert)
    facts = alert.get("facts")
    evidence = alert.get("evidence") or ()
    secrets = [] if reveal else secrets_of(facts, evidence)
    for key in ("title", "explanation"):
        if isinstance(out.get(key), str):
            out[key] = shown_text(out[key], facts, reveal, secrets)
    if "facts" in out:
        out["facts"] = shown_facts(facts, reveal, secrets)
    if "evidence" in out:
        out["evidence"] = masked_evidence(evidence, reveal)
    return out
