"""Stable pseudonyms for monitored people: a keyed HMAC-SHA256 of the user id, the same in the review
app, `custodes alerts` and `custodes replay`.

The key is ``settings.pseudonym_key``; when unset, one is generated once and kept in
``data_dir/pseudonym.key`` (mode 0600). The key is never printed or logged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from pathlib import Path

from stream.contract.settings import Settings
from stream.privacy.key_file import read_or_create

KEY_FILE = "pseudonym.key"
PREFIX = "P-"


def load_key(settings: Settings) -> bytes:
    if settings.pseudonym_key is not None:
        return settings.pseudonym_key.get_secret_value().encode()
    key = read_or_create(Path(settings.data_dir) / KEY_FILE, "pseudonym key")
    assert key is not None
    return key


class Pseudonymiser:
    def __init__(self, key: bytes) -> None:
        self._key = key
        self._cache: dict[str, str] = {}

    def __call__(self, user_id: str) -> str:
        p = self._cache.get(user_id)
        if p is None:
            digest = hmac.new(self._key, user_id.encode(), hashlib.sha256).digest()
            p = PREFIX + base64.b32encode(digest[:10]).decode().lower()
            if len(self._cache) < 100_000:
                self._cache[user_id] = p
        return p

    def __repr__(self) -> str:  # never show the key
        return "Pseudonymiser(<key hidden>)"
