"""``--format google-workspace``: Google Workspace Admin SDK Reports API activities
(``activities.list`` items, ``kind = admin#reports#activity``), one JSON object per line.

One activity may hold several events (``events[]``): each becomes its own canonical event, with
``id.time`` -> ``@timestamp``, ``actor.email`` (else ``actor.profileId``) -> ``user.id``,
``ipAddress`` -> ``source.ip``, ``events[].name`` -> ``event.action``, ``events[].type`` ->
``google_workspace.event.type``, ``event.dataset = google_workspace.<id.applicationName>`` (Elastic's
names, so the activity table serves both), and a deterministic ``event.id`` from
``id.uniqueQualifier``, the event's position and its content. Parameters are read from their typed
values (``value``, ``boolValue``, ``intValue``, ``multiValue``, ``multiIntValue``).

Drive: ``doc_id`` -> ``custodes.object.id``, ``doc_title`` -> ``file.name`` (and ``file.extension``);
``change_document_visibility``/``change_document_access_scope`` -> share with
``custodes.share.visibility`` from the new visibility (``new_value`` and ``visibility``, the most open
of them; ``target_domain = all`` is anyone; ``people_with_link``/``public_on_the_web`` ->
``anyone``, ``*_in_the_domain``/``people_within_domain_with_link`` -> ``domain``, ``shared_externally``
-> ``external``, ``private`` -> not a share); ``change_user_access`` -> ``external`` or ``internal`` by
the ``target_user``'s domain (in ``email.to.address``). Login: ``login_failure`` is outcome
``failure``. The activity itself comes from the table (download -> export, view -> record_access …).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

import orjson

from stream.contract.schema import Invalid, validate
from stream.sources.ecs import put
from stream.sources.records import domain_of, emails, extension, ip, is_internal, items, obj, record, text, timestamp

VISIBILITY = {
    "people_with_link": "anyone",
    "public_on_the_web": "anyone",
    "public_in_the_domain": "domain",
    "people_within_domain_with_link": "domain",
    "shared_externally": "external",
    "shared_internally": "internal",
}
"""Drive visibility values (Reports API drive events) -> custodes.share.visibility."""
_VISIBILITY_EVENTS = frozenset({"change_document_visibility", "change_document_access_scope"})


def is_google_workspace(first: Any) -> bool:
    if not isinstance(first, dict):
        return False
    if first.get("kind") == "admin#reports#activity":
        return True
    ident = first.get("id")
    return isinstance(ident, dict) and "applicationName" in ident and "events" in first


def normalise(raw: Any, org_domains: Iterable[str] = ()) -> list[dict[str, Any]]:
    rec = record(raw)
    ident = obj(rec, "id", "id")
    when = timestamp(ident.get("time"), "id.time")
    app = (text(ident, "applicationname", "id.applicationName") or "unknown").lower()
    qualifier = text(ident, "uniquequalifier", "id.uniqueQualifier")
    actor = obj(rec, "actor", "actor")
    user = text(actor, "email", "actor.email") or text(actor, "profileid", "actor.profileId")
    if not user:
        raise Invalid("missing_user", "actor.email (or actor.profileId) is missing", "actor.email")
    address = ip(rec.get("ipaddress"))
    events = rec.get("events")
    if isinstance(events, dict):  # one event written as an object (Elastic's test logs do)
        events = [events]
    if not isinstance(events, list):
        raise Invalid("wrong_type", "events must be a list of events", "events")
    if not events:
        raise Invalid("bad_value", "events is empty: the activity records nothing", "events")
    org = [d.lower() for d in org_domains]
    owner_domain = rec.get("ownerdomain")
    if isinstance(owner_domain, str) and owner_domain:
        org.append(owner_domain.lower())
    docs = []
    for i, event in enumerate(items(events)):
        where = f"events[{i}]"
        if not isinstance(event, dict):
            raise Invalid("wrong_type", f"{where} must be an object", where)
        name = text(event, "name", f"{where}.name", required=True)
        assert name is not None
        params = _parameters(event.get("parameters"), where)
        doc: dict[str, Any] = {"@timestamp": when}
        put(doc, "user.id", user)
        put(doc, "event.action", name)
        put(doc, "event.dataset", f"google_workspace.{app}")
        put(doc, "event.module", "google_workspace")
        put(doc, "event.provider", app)
        if (kind := text(event, "type", f"{where}.type")) is not None:
            put(doc, "google_workspace.event.type", kind)
        if address is not None:
            put(doc, "source.ip", address)
        if app == "drive":
            _drive(doc, name.lower(), params, org)
        elif app == "login":
            if name == "login_failure":
                put(doc, "event.outcome", "failure")
            elif name == "login_success":
                put(doc, "event.outcome", "success")
            if isinstance(params.get("login_type"), str):
                put(doc, "google_workspace.login.type", params["login_type"])
        try:
            basis = orjson.dumps([when, qualifier, app, user, i, name, event.get("parameters")],
                                 option=orjson.OPT_SORT_KEYS, default=str)
        except TypeError:  # a number beyond 64 bits somewhere in the parameters
            basis = repr([when, qualifier, app, user, i, name, event.get("parameters")]).encode()
        put(doc, "event.id", "gws-" + hashlib.blake2b(basis, digest_size=12).hexdigest())
        put(doc, "custodes.schema_version", 1)
        validate(doc)
        docs.append(doc)
    return docs


def _parameters(value: Any, where: str) -> dict[str, Any]:
    """``parameters[]`` -> name -> its typed value (the first of value, boolValue, intValue, multiValue,
    multiIntValue that is present; intValue is a decimal string in the API)."""
    if value is None:
        return {}
    if not isinstance(value, list):
        raise Invalid("wrong_type", f"{where}.parameters must be a list", f"{where}.parameters")
    out: dict[str, Any] = {}
    for j, item in enumerate(items(value)):
        path = f"{where}.parameters[{j}]"
        if not isinstance(item, dict):
            raise Invalid("wrong_type", f"{path} must be an object", path)
        name = item.get("name")
        if not isinstance(name, str):
            raise Invalid("wrong_type", f"{path}.name must be a string", f"{path}.name")
        for key in ("value", "boolvalue", "intvalue", "multivalue", "multiintvalue"):
            if key in item:
                out[name.lower()] = item[key]
                break
    return out


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [] if value is None else [value]


def _drive(doc: dict[str, Any], name: str, params: dict[str, Any], org: list[str]) -> None:
    doc_id = params.get("doc_id")
    if isinstance(doc_id, str | int) and not isinstance(doc_id, bool) and str(doc_id):
        put(doc, "custodes.object.id", str(doc_id))
    title = params.get("doc_title")
    if isinstance(title, str) and title:
        put(doc, "file.name", title)
        if ext := extension(title):
            put(doc, "file.extension", ext)
    if name in _VISIBILITY_EVENTS:
        # the new visibility: new_value (a list in the API) and the event's visibility parameter
        values = [v for key in ("new_value", "visibility") for v in _listed(params.get(key))]
        found = [VISIBILITY[v] for v in values if isinstance(v, str) and v in VISIBILITY]
        if params.get("target_domain") == "all":
            found.append("anyone")
        if found:
            order = ("anyone", "external", "domain", "internal")
            put(doc, "custodes.activity", "share")
            put(doc, "custodes.share.visibility", min(found, key=order.index))
        else:  # made private, or an unknown value: not a share
            put(doc, "custodes.activity", "other")
    elif name == "change_user_access":
        target = params.get("target_user")
        addresses = emails([target]) if target else []
        target_domain = params.get("target_domain")
        put(doc, "custodes.activity", "share")
        if isinstance(target_domain, str) and target_domain:
            visibility = ("anyone" if target_domain == "all"
                          else "domain" if is_internal(target_domain, org) else "external")
        elif any(not is_internal(domain_of(a), org) for a in addresses):
            visibility = "external"
        else:
            visibility = "internal"
        put(doc, "custodes.share.visibility", visibility)
        if addresses:
            put(doc, "email.to.address", addresses)
