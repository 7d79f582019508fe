"""A secret key kept in a file of the data directory (mode 0600), made once when absent.

The pseudonym key and the audit key both live this way when no setting gives them; the key is never
printed or logged.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def read_or_create(path: Path, what: str, create: bool = True) -> bytes | None:
    """The key in ``path`` (at least 32 characters); a new random one written first when the file is
    absent and ``create``; None when it is absent and not ``create``. Another process creating it at
    the same moment wins the race and its key is used."""
    if not path.exists():
        if not create:
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32) + "\n")
    if path.stat().st_mode & 0o077:
        os.chmod(path, 0o600)
    key = path.read_text().strip()
    if len(key) < 32:
        raise ValueError(f"{path} holds no usable {what}")
    return key.encode()
