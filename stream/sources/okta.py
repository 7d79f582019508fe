"""``--format okta``: Okta System Log events (``/api/v1/logs``), one JSON object per line.

``published`` -> ``@timestamp``, ``uuid`` -> ``event.id``, ``eventType`` -> ``event.action``,
``actor.alternateId`` (the login, usually an e-mail; else ``actor.id``) -> ``user.id``,
``actor.displayName`` -> ``user.name``, ``client.ipAddress`` -> ``source.ip``,
``client.geographicalContext`` -> ``source.geo`` (``geolocation.lat``/``lon`` -> ``location``, city,
country), ``outcome.result`` -> ``event.outcome`` (SUCCESS/ALLOW -> success, FAILURE/DENY -> failure),
``target[]`` (type, alternateId, displayName of up to 10) -> ``okta.target``;
``event.dataset = okta.system``. The activity comes from the table
(user.session.start -> logon …).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from stream.contract.schema import Invalid, validate
from stream.sources.ecs import put, stable_id
from stream.sources.records import ip, items, obj, record, text, timestamp

_OUTCOMES = {"success": "success", "allow": "success", "failure": "failure", "deny": "failure"}


def is_okta(first: Any) -> bool:
    return isinstance(first, dict) and "eventType" in first and "published" in first and "actor" in first


def normalise(raw: Any, org_domains: Iterable[str] = ()) -> list[dict[str, Any]]:
    rec = record(raw)
    doc: dict[str, Any] = {"@timestamp": timestamp(rec.get("published"), "published")}
    event_type = text(rec, "eventtype", "eventType", required=True)
    actor = obj(rec, "actor", "actor")
    user = text(actor, "alternateid", "actor.alternateId") or text(actor, "id", "actor.id")
    if not user or user == "unknown":
        raise Invalid("missing_user", "actor.alternateId (or actor.id) is missing", "actor.alternateId")
    put(doc, "user.id", user)
    if (name := text(actor, "displayname", "actor.displayName")) and name != "unknown":
        put(doc, "user.name", name)
    put(doc, "event.action", event_type)
    put(doc, "event.dataset", "okta.system")
    put(doc, "event.module", "okta")
    if (uuid := text(rec, "uuid", "uuid")) is not None:
        put(doc, "event.id", uuid)
    outcome = obj(rec, "outcome", "outcome")
    result = outcome.get("result")
    if isinstance(result, str) and result.lower() in _OUTCOMES:
        put(doc, "event.outcome", _OUTCOMES[result.lower()])
    client = obj(rec, "client", "client")
    if (address := ip(client.get("ipaddress"))) is not None:
        put(doc, "source.ip", address)
    geo = obj(client, "geographicalcontext", "client.geographicalContext")
    location = obj(geo, "geolocation", "client.geographicalContext.geolocation")
    lat, lon = location.get("lat"), location.get("lon")
    if _number(lat) and _number(lon) and -90 <= lat <= 90 and -180 <= lon <= 180:
        put(doc, "source.geo.location", {"lat": float(lat), "lon": float(lon)})
    for key, path in (("city", "source.geo.city_name"), ("country", "source.geo.country_name")):
        if isinstance(geo.get(key), str) and geo[key]:
            put(doc, path, geo[key])
    targets = rec.get("target")
    if targets is not None and not isinstance(targets, list):
        raise Invalid("wrong_type", "target must be a list", "target")
    if targets:  # what the event acted on (an app, a group, a user): kept for the reviewer
        kept = [{k: t[k] for k in ("type", "alternateid", "displayname") if isinstance(t.get(k), str)}
                for t in items(targets[:10]) if isinstance(t, dict)]
        put(doc, "okta.target", [t for t in kept if t])
    put(doc, "custodes.schema_version", 1)
    if "id" not in doc["event"]:
        put(doc, "event.id", stable_id(doc))
    validate(doc)
    return [doc]


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == value
