"""The detectors' view of one canonical audit event.

``stream.contract`` validates a decoded JSON object (ECS field names, ``custodes.*`` extensions) and
builds an :class:`Event`, with models derived from the annotations of :class:`Event`.
Detectors read the typed attributes; ``doc`` keeps the validated document
for evidence snapshots. Times are POSIX seconds (float, UTC).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, get_args, get_type_hints

import orjson
from msgspec import Meta

ACTIVITY_KINDS = frozenset(
    {
        "logon",
        "logoff",
        "message",
        "record_access",
        "export",
        "share",
        "print",
        "removable_media",
        "web_upload",
        "membership",
        "review",
        "mail_forward",
        "other",
    }
)
"""``custodes.activity``. ``membership`` (joins/leaves of a monitored group) and ``review`` (a
reviewer's own action in the review app) extend the list in the foundation issue; ``mail_forward`` (a
mailbox auto-forwarding, inbox or redirect rule created or changed; its targets in ``email.to.address``)
came with real sources (issue 16); ``other`` is an event that carries none of the signals the detectors
use (an ECS document shipped as it is)."""

ShareVisibility = Literal["anyone", "external", "domain", "internal"]
SHARE_VISIBILITIES: tuple[str, ...] = get_args(ShareVisibility)
"""``custodes.share.visibility`` of a ``share``: ``anyone`` = public / anyone with the link / anonymous
link; ``external`` = named recipients outside the organisation; ``domain`` = the whole organisation;
``internal`` = named people inside it."""

Sensitivity = Literal["low", "medium", "high", "special"]
SENSITIVITIES: tuple[str, ...] = get_args(Sensitivity)
"""``custodes.dataset.sensitivity``, ascending. ``special`` is special-category personal data."""

MAX_COUNT = 10**12
"""The largest record count (or group size) an event may carry."""


def at(path: str, read: str = "value", limit: int | None = None, evidence: bool = True, doc: str = "",
       **constraints: Any) -> Meta:
    """Where an :class:`Event` attribute comes from in the canonical (ECS) document, as ``msgspec.Meta``.

    ``path``: the dotted field path; ``read``: how the value is read when not as it is (``first`` item of
    a keyword list, ``extension``, ``count`` of a list of objects, and the few read by hand: ``id``,
    ``timestamp``, ``user``, ``activity``, ``location``); ``limit``: a fixed string length (else the
    ``max_string_chars`` limit of the settings); ``evidence``: copied into alerts' evidence snapshots
    (detectors.base.SNAPSHOT_FIELDS; not for people's identifiers); ``doc``: the field's description in
    the JSON Schema; ``constraints``: msgspec's (``ge``, ``le``, ``max_length``) on the value.
    """
    return Meta(extra={"path": path, "read": read, "limit": limit, "evidence": evidence}, description=doc or None,
                **constraints)


Count = Annotated[int, Meta(ge=0, le=MAX_COUNT)]


@dataclass(slots=True)
class Event:
    """One validated audit event: the canonical audit event contract, defined here once.

    Every attribute but ``doc`` and ``raw`` is annotated with :func:`at`: the field of the canonical
    document it is read from and its constraints. From these annotations ``stream.contract`` derives the
    msgspec models that decode and validate documents, the JSON Schema
    (``stream/contract/schemas/audit-event-1.json``) and the list of fields read; ``detectors.base``
    derives the evidence snapshot. Adding an optional field is one line here (and the schema file
    regenerated: ``python -m stream.contract.json_schema --write``).
    """

    id: Annotated[str, at("event.id", read="id", evidence=True,
                          doc="The event's id at its source; absent: derived from the event's bytes.")]
    ts: Annotated[float, at("@timestamp", read="timestamp",
                            doc="When the audited action happened: ISO 8601 with a timezone. Required.")]
    user_id: Annotated[str, at("user.id", read="user", evidence=False,
                               doc="Who did it: the monitored member of staff. user.id or user.name is "
                                   "required; without user.id, user.name is the user.")]
    kind: Annotated[str, at("custodes.activity", read="activity", limit=32,
                            doc="What kind of activity (ACTIVITY_KINDS); absent or empty: other.")] = "other"
    action: Annotated[str, at("event.action", read="first",
                              doc="The source's name for the action (ECS allows an array: its first item).")
                      ] | None = None
    outcome: Annotated[str, at("event.outcome", limit=32, doc="success, failure, unknown.")] | None = None
    user_name: Annotated[str, at("user.name", evidence=False,
                                 doc="The user's name; the user when user.id is absent or empty.")] | None = None
    host_id: Annotated[str, at("host.id", evidence=False, doc="The device used.")] | None = None
    record_ids: Annotated[tuple[str, ...], at("custodes.record.ids", evidence=False,
                                              doc="Ids of the records touched (one string or a list).")] = ()
    record_count: Annotated[Count, at("custodes.record.count", doc="How many records were touched.")
                            ] | None = None
    dataset: Annotated[str, at("custodes.dataset.name", doc="The data set or system the records are in.")
                       ] | None = None
    sensitivity: Annotated[Sensitivity, at("custodes.dataset.sensitivity", limit=16,
                                            doc="How sensitive the data set is.")] | None = None
    case_ref: Annotated[str, at("custodes.case.ref", doc="The case the user cited as the reason.")] | None = None
    recipient_party: Annotated[str, at("custodes.recipient.party", doc="Who data was sent or shown to.")
                               ] | None = None
    destination_domain: Annotated[str, at("destination.domain", doc="Where data went (domain).")] | None = None
    email_to: Annotated[tuple[str, ...], at("email.to.address", evidence=False,
                                            doc="Recipients of a message or forwarding rule.")] = ()
    url_domain: Annotated[str, at("url.domain", doc="Domain of a URL visited or uploaded to.")] | None = None
    file_name: Annotated[str, at("file.name", doc="The file exported, printed or copied.")] | None = None
    channel: Annotated[str, at("custodes.channel", limit=64, doc="How data left (usb, email, print …).")
                       ] | None = None
    app_id: Annotated[str, at("custodes.application.id", doc="The application used.")] | None = None
    policy_set: Annotated[str, at("custodes.policy_set", doc="The policy set that applies to the user.")
                          ] | None = None
    group_id: Annotated[str, at("custodes.group.id", doc="The group of a membership event.")] | None = None
    min_group_size: Annotated[Count, at("custodes.aggregate.min_group_size",
                                        doc="The smallest group an aggregate query returned.")] | None = None
    lat: Annotated[float, at("source.geo.location.lat", read="location", ge=-90, le=90,
                             doc="Where the user was: latitude (with lon).")] | None = None
    lon: Annotated[float, at("source.geo.location.lon", read="location", ge=-180, le=180,
                             doc="Where the user was: longitude (with lat).")] | None = None
    content: Annotated[str, at("message", read="text",
                               doc="Free text (a message's content); up to max_content_chars.")] | None = None
    media: Annotated[tuple[dict[str, Any], ...], at("custodes.media", read="objects", evidence=False, max_length=100,
                                                    doc="Attachments of a message (objects).")] = ()
    object_id: Annotated[str, at("custodes.object.id", evidence=False,
                                 doc="The document, file, drive item or SharePoint object the event touched.")
                         ] | None = None
    """``custodes.object.id``: the document, file, drive item or SharePoint object the event touched."""
    share_visibility: Annotated[ShareVisibility, at("custodes.share.visibility", limit=16,
                                                    doc="For activity share: who the share reaches.")
                                ] | None = None
    """``custodes.share.visibility``: one of :data:`SHARE_VISIBILITIES`."""
    file_extension: Annotated[str, at("file.extension", read="extension",
                                      doc="The file's extension (a leading dot and case are ignored).")
                              ] | None = None
    """``file.extension``, lower-case, without the dot."""
    attachment_count: Annotated[int, at("email.attachments", read="count",
                                        doc="ECS email.attachments: a list of objects, read as how many.")
                                ] | None = None
    """How many entries ECS ``email.attachments`` holds (None when absent)."""
    identity_alias: Annotated[str, at("custodes.identity.alias", evidence=False,
                                      doc="The id the source gave for the person when the staff directory "
                                          "resolved it to the person id in user.id.")] | None = None
    """``custodes.identity.alias``: the id the source gave (UPN, e-mail, DOMAIN\\sam, staff number …) when
    the staff directory resolved it to the person id now in ``user_id``."""
    doc: dict[str, Any] | None = field(default_factory=dict, repr=False, compare=False)
    """The validated document; None when only ``raw`` is kept (see :attr:`document`)."""
    raw: bytes | None = field(default=None, repr=False, compare=False)
    """The JSON text of a document whose every field is one of the attributes above (a closed
    document), kept instead of its decoded dict: a micro-batch of many thousand events then holds one
    bytes object per event rather than a tree of dicts, which is measurably faster (bench/README.md)."""

    @property
    def document(self) -> dict[str, Any]:
        """The validated document, decoded again from :attr:`raw` when only that was kept (rare: a
        failure's evidence, a field that has no attribute)."""
        if self.doc is not None:
            return self.doc
        return orjson.loads(self.raw) if self.raw is not None else {}

    @property
    def records(self) -> int:
        """How many records the event touched: ``record.count`` if given, else the distinct ids."""
        if self.record_count is not None:
            return self.record_count
        return len(self.record_ids)


def _meta_of(hint: Any) -> Meta | None:
    """The :func:`at` Meta inside an attribute's annotation (None for ``doc`` and ``raw``)."""
    for arg in get_args(hint):
        if isinstance(arg, Meta) and arg.extra and "path" in arg.extra:
            return arg
        found = _meta_of(arg)
        if found is not None:
            return found
    return None


FIELD_META: dict[str, Meta] = {
    name: meta for name, hint in get_type_hints(Event, include_extras=True).items()
    if (meta := _meta_of(hint)) is not None
}
"""Event attribute -> its :func:`at` annotation, in Event's order (stream.contract.event reads the rest)."""

EVIDENCE_FIELDS: tuple[str, ...] = tuple(name for name, meta in FIELD_META.items() if meta.extra["evidence"])
"""The attributes copied into an alert's evidence (detectors.base.snapshot): ``at(…, evidence=False)``
marks people's identifiers, record ids and lists, which would need masking in the review app."""
