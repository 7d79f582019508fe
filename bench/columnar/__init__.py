"""Columnar prototype (issue 19 item 4): Arrow micro-batches and vectorised kernels for bulk_export and
unusual_volume, checked against the product detectors. Not in the product path; see README.md."""
