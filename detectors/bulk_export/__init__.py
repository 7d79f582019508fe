"""bulk_export: a user exporting or looking up more records than their sensitivity allows in a window.

Counts, per dataset sensitivity, the records a user touched through the configured channels (report
download/export, record look-up, print, removable media, web upload, share, and a message carrying
an attachment) within a sliding window of event time, two ways: the records each event reports
(``custodes.record.count``, or the number of record ids), and the distinct record ids. More than the
threshold for that sensitivity raises one alert for the window; further hits within ``suppress_s``
of its first are folded into the same alert (its ``count``) instead of raising new ones.

Events are counted and checked one at a time in arrival order, so how a stream is cut into batches
does not change the alerts. State per user and sensitivity (bounded): record counts in ``bucket_s``
buckets covering twice the window plus grace (a late event's window reaches that far back); a map
of at most ``threshold + 1`` hashed record ids with the bucket last seen; the last few
contributing event ids for evidence (events whose window holds at least ``evidence_from`` of a
threshold, since the last in-order event whose window held less: most users, far below, hold none); an
upper bound of the records in all its buckets (an event is only checked against the window when that
bound or the number of ids held is over a threshold); plus the open alert windows
(:mod:`detectors.suppression`). The window is measured in whole buckets,
so its edge is exact to ``bucket_s``.

Documents, not only records: a document download or export (a Drive or SharePoint file, an attachment
saved) touches no records, so it also counts the *distinct documents* a person downloads or exports
(``document_kinds``) within ``document_window_s`` (5 minutes by default), per sensitivity:
``min_documents`` or more raises an alert (20 for medium, the default sensitivity of a document whose
source says none: a common public rule fires at 20 in 5 minutes). A document is its
``custodes.object.id`` (drive item, SharePoint object, file path), else its ``file.name`` when the
event reports no records (an export of records with a file name is a record export, counted above).
A failed download (``event.outcome`` failure) is not counted. The same document again is not counted
again: it is remembered with the time it was last seen. State
per sensitivity: at most twice ``min_documents`` short hashes (6 bytes) with that time, the oldest
making way when full (so an alert reports up to twice the threshold exactly, "at least" beyond), and
the last few contributing event ids for evidence (as for records).

State layout (version 3; :func:`upgrade` reads the layouts of earlier versions, so stored state
written by any release still loads and counts on)::

    {"newest": <newest counted event time>,
     "records": {<sensitivity>: {"buckets": [[<bucket start>, <records>], ...],   # sorted
                                 "record_ids": {<6-byte hash, hex>: <bucket last seen>},
                                 "evidence": [<event id>, ...],
                                 "records_at_most": <upper bound of the records in "buckets">}},
     "documents": {<sensitivity>: {"document_ids": {<hash>: <last seen>}, "evidence": [...]}},
     "open": {<key>: <open alert window (detectors.suppression.Folding's record)
                      + "records", "distinct_records" or "documents": the most seen in it>}}

Version 2 had the same content under one-letter keys (``n``, ``l`` with ``b``/``d``/``e``/``t``, ``m``
with ``d``/``e``, ``o`` with ``r``/``u``/``m``); version 1 (the first release) only the record levels,
keyed by sensitivity at the top.
"""

from .config import BulkExportConfig
from .detector import BulkExport
from .state import upgrade

__all__ = ["BulkExport", "BulkExportConfig", "upgrade"]
