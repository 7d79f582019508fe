"""The detectors' view of one canonical audit event.

``stream.contract.schema`` validates a decoded JSON object (ECS field names, ``custodes.*`` extensions) and
builds an :class:`Event`. Detectors read the typed attributes; ``doc`` keeps the validated document
for evidence snapshots. Times are POSIX seconds (float, UTC).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

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

SHARE_VISIBILITIES = ("anyone", "external", "domain", "internal")
"""``custodes.share.visibility`` of a ``share``: ``anyone`` = public / anyone with the link / anonymous
link; ``external`` = named recipients outside the organisation; ``domain`` = the whole organisation;
``internal`` = named people inside it."""

SENSITIVITIES = ("low", "medium", "high", "special")
"""``custodes.dataset.sensitivity``, ascending. ``special`` is special-category personal data."""


@dataclass(slots=True)
class Event:
    id: str
    ts: float
    user_id: str
    kind: str = "other"
    action: str | None = None
    outcome: str | None = None
    user_name: str | None = None
    host_id: str | None = None
    record_ids: tuple[str, ...] = ()
    record_count: int | None = None
    dataset: str | None = None
    sensitivity: str | None = None
    case_ref: str | None = None
    recipient_party: str | None = None
    destination_domain: str | None = None
    email_to: tuple[str, ...] = ()
    url_domain: str | None = None
    file_name: str | None = None
    channel: str | None = None
    app_id: str | None = None
    policy_set: str | None = None
    group_id: str | None = None
    min_group_size: int | None = None
    lat: float | None = None
    lon: float | None = None
    content: str | None = None
    media: tuple[dict[str, Any], ...] = ()
    object_id: str | None = None
    """``custodes.object.id``: the document, file, drive item or SharePoint object the event touched."""
    share_visibility: str | None = None
    """``custodes.share.visibility``: one of :data:`SHARE_VISIBILITIES`."""
    file_extension: str | None = None
    """``file.extension``, lower-case, without the dot."""
    attachment_count: int | None = None
    """How many entries ECS ``email.attachments`` holds (None when absent)."""
    identity_alias: str | None = None
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
