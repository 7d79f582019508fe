"""``--format m365``: Microsoft 365 unified audit log records (Office 365 Management Activity API
content, Purview audit search ``AuditData``, Microsoft Sentinel's ``OfficeActivity`` table with its
``TimeGenerated``/``OfficeWorkload``/``OfficeObjectId``/``OfficeId``/``Client_IPAddress`` names), one JSON
object per line, keys in any case.

Every record becomes one canonical event: ``CreationTime`` (UTC when it has no offset) ->
``@timestamp``, ``Id`` -> ``event.id``, ``UserId`` -> ``user.id`` (the UPN as given), ``Operation`` ->
``event.action``, ``Workload`` -> ``event.provider``, ``ClientIP`` (with or without a port) ->
``source.ip``, ``ResultStatus`` -> ``event.outcome``, ``event.dataset = o365.audit`` (as Elastic's o365
integration names it, so the activity table covers both). The activity comes from the table
(config/activities.toml: FileDownloaded -> export, FileAccessed -> record_access, SharingSet -> share,
Send -> message, UserLoggedIn -> logon …) except where the record itself decides:

* sharing (``SharingSet``, ``AddedToSecureLink``, ``SharingInvitationCreated``, ``AnonymousLinkCreated``,
  ``CompanyLinkCreated`` …): ``custodes.share.visibility`` is ``anyone`` for anonymous links, ``domain``
  for organisation-wide links, else ``external`` when the target (``TargetUserOrGroupName``) is a guest or
  an address outside the organisation's domains, ``internal`` otherwise; the target address goes in
  ``email.to.address``.
* Exchange ``New-InboxRule``/``Set-InboxRule``/``Set-Mailbox``/``New-TransportRule``… whose ``Parameters``
  (a Name/Value list) set a forwarding target (``ForwardTo``, ``ForwardingSmtpAddress``,
  ``ForwardingAddress``, ``RedirectTo``, ``ForwardAsAttachmentTo``, ``BlindCopyTo``…): activity
  ``mail_forward`` with the targets in ``email.to.address``; a cmdlet that clears forwarding stays what
  the table says.
* SharePoint/OneDrive file operations: ``custodes.object.id`` is ``ObjectId`` (the item's URL; else
  ``ListItemUniqueId``), ``file.name``/``file.extension`` from ``SourceFileName``/``SourceFileExtension``.
* ``MailItemsAccessed``: ``custodes.record.count`` is the number of items in ``Folders[].FolderItems``
  (when the record lists them).
* ``UserLoginFailed`` is outcome ``failure``, ``UserLoggedIn`` ``success``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from stream.contract.schema import Invalid, validate
from stream.sources.ecs import put, stable_id
from stream.sources.records import domain_of, emails, extension, ip, is_internal, items, record, text, timestamp

DATASET = "o365.audit"
FORWARDING_PARAMETERS = ("forwardto", "forwardingsmtpaddress", "forwardingaddress", "redirectto",
                         "forwardasattachmentto", "redirectmessageto", "blindcopyto", "copyto", "addtorecipients")
"""Parameters of Exchange cmdlets (inbox rules, mailbox, transport rules) that send mail elsewhere,
lower-cased. ``DeliverToMailboxAndForward`` only says whether a copy stays: it is recorded, not a target."""
FORWARDING_OPERATIONS = frozenset({"new-inboxrule", "set-inboxrule", "set-mailbox", "new-transportrule",
                                   "set-transportrule", "updateinboxrules"})
ANONYMOUS = frozenset({"anonymouslinkcreated", "anonymouslinkupdated"})
ORGANISATION = frozenset({"companylinkcreated"})
SHARING = frozenset({"sharingset", "addedtosecurelink", "securelinkcreated", "sharinginvitationcreated"}) \
    | ANONYMOUS | ORGANISATION
_OUTCOMES = {"succeeded": "success", "success": "success", "true": "success", "partiallysucceeded": "success",
             "failed": "failure", "failure": "failure", "false": "failure"}


_SENTINEL = {"timegenerated": "creationtime", "officeworkload": "workload", "officeobjectid": "objectid",
             "officeid": "id", "client_ipaddress": "clientipaddress"}
"""Microsoft Sentinel / Log Analytics ``OfficeActivity`` columns -> the Management Activity API's names."""


def is_m365(first: Any) -> bool:
    """Whether a decoded record looks like a unified audit log record."""
    if not isinstance(first, dict):
        return False
    keys = {str(k).lower() for k in first}
    if "operation" not in keys:
        return False
    if "creationtime" in keys:
        return bool(keys & {"userid", "workload", "recordtype"})
    return "timegenerated" in keys and "officeworkload" in keys  # Sentinel's OfficeActivity table


def normalise(raw: Any, org_domains: Iterable[str] = ()) -> list[dict[str, Any]]:
    rec = record(raw)
    for sentinel, api in _SENTINEL.items():  # Sentinel's OfficeActivity names for the API's fields
        if api not in rec and sentinel in rec:
            rec[api] = rec[sentinel]
    doc: dict[str, Any] = {"@timestamp": timestamp(rec.get("creationtime"), "CreationTime")}
    operation = text(rec, "operation", "Operation", required=True)
    assert operation is not None
    op = operation.lower()
    user = text(rec, "userid", "UserId")
    if not user:
        raise Invalid("missing_user", "UserId is missing", "UserId")
    put(doc, "user.id", user)
    put(doc, "event.action", operation)
    put(doc, "event.dataset", DATASET)
    put(doc, "event.module", "o365")
    if (workload := text(rec, "workload", "Workload")) is not None:
        put(doc, "event.provider", workload)
    if (event_id := text(rec, "id", "Id")) is not None:
        put(doc, "event.id", event_id)
    if (address := ip(rec.get("clientip") or rec.get("clientipaddress"))) is not None:
        put(doc, "source.ip", address)
    status = rec.get("resultstatus")
    outcome = _OUTCOMES.get(status.lower()) if isinstance(status, str) else None
    if op == "userloginfailed":
        outcome = "failure"
    elif op == "userloggedin":
        outcome = outcome or "success"
    if outcome:
        put(doc, "event.outcome", outcome)

    object_id = text(rec, "objectid", "ObjectId") or text(rec, "listitemuniqueid", "ListItemUniqueId")
    if object_id is not None:
        put(doc, "custodes.object.id", object_id)
    if (name := text(rec, "sourcefilename", "SourceFileName")) is not None:
        put(doc, "file.name", name)
        ext = text(rec, "sourcefileextension", "SourceFileExtension")
        if ext := (ext.lower().lstrip(".") if ext else extension(name)):
            put(doc, "file.extension", ext)

    if op in SHARING:
        _share(doc, rec, op, org_domains)
    elif op in FORWARDING_OPERATIONS:
        _forwarding(doc, rec)
    elif op == "mailitemsaccessed":
        count = _mail_items(rec)
        if count is not None:
            put(doc, "custodes.record.count", count)

    put(doc, "custodes.schema_version", 1)
    if "event" not in doc or "id" not in doc["event"]:
        put(doc, "event.id", stable_id(doc))
    validate(doc)
    return [doc]


def _share(doc: dict[str, Any], rec: dict[str, Any], op: str, org_domains: Iterable[str]) -> None:
    org = list(org_domains)
    tenant = rec.get("organizationname")
    if isinstance(tenant, str) and "." in tenant:
        org.append(tenant.lower())
    target = text(rec, "targetuserorgroupname", "TargetUserOrGroupName")
    target_type = (text(rec, "targetuserorgrouptype", "TargetUserOrGroupType") or "").lower()
    addresses = emails([target]) if target else []
    if op in ANONYMOUS:
        visibility = "anyone"
    elif op in ORGANISATION:
        visibility = "domain"
    elif target_type == "guest" or any(not is_internal(domain_of(a), org) for a in addresses):
        visibility = "external"
    else:
        visibility = "internal"
    put(doc, "custodes.activity", "share")
    put(doc, "custodes.share.visibility", visibility)
    if addresses:
        put(doc, "email.to.address", addresses)


def _parameters(rec: dict[str, Any]) -> dict[str, Any]:
    """``Parameters`` as name (lower case) -> value: a Name/Value list (the API's form), an object, or
    either one as JSON text (Sentinel's OfficeActivity table keeps it as a string)."""
    value = rec.get("parameters")
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise Invalid("bad_value", "Parameters is text that is not JSON", "Parameters") from None
    if value is None:
        return {}
    if isinstance(value, dict):
        return {str(k).lower(): v for k, v in value.items()}
    if not isinstance(value, list):
        raise Invalid("wrong_type", "Parameters must be a list of Name/Value objects", "Parameters")
    out: dict[str, Any] = {}
    for i, item in enumerate(items(value)):
        if not isinstance(item, dict):
            raise Invalid("wrong_type", f"Parameters[{i}] must be an object with Name and Value", f"Parameters[{i}]")
        name = item.get("name")
        if not isinstance(name, str):
            raise Invalid("wrong_type", f"Parameters[{i}].Name must be a string", f"Parameters[{i}].Name")
        out[name.lower()] = item.get("value")
    return out


def _forwarding(doc: dict[str, Any], rec: dict[str, Any]) -> None:
    params = _parameters(rec)
    targets = [params[name] for name in FORWARDING_PARAMETERS if params.get(name) not in (None, "", "$null", [])]
    if not targets:
        return
    addresses = emails(targets)
    if not addresses:  # a recipient named, not addressed (ForwardingAddress = a contact's name)
        addresses = [str(t) for t in targets if isinstance(t, str | int)][:10]
    put(doc, "custodes.activity", "mail_forward")
    put(doc, "email.to.address", addresses)
    keep = params.get("delivertomailboxandforward")
    if isinstance(keep, str | bool):
        put(doc, "custodes.forward.keeps_copy", str(keep).lower() == "true")


def _mail_items(rec: dict[str, Any]) -> int | None:
    folders = rec.get("folders")
    if not isinstance(folders, list):
        return None
    count = 0
    for folder in items(folders):
        listed = folder.get("folderitems") if isinstance(folder, dict) else None
        if isinstance(listed, list):
            count += len(listed)
    return count or None


__all__ = ["DATASET", "is_m365", "normalise"]
