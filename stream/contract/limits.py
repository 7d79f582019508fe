"""The size limits every event is held to (``[limits]`` in the settings, stream.contract.settings)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    max_event_bytes: int = 1_048_576
    max_string_chars: int = 1024
    max_content_chars: int = 65_536
    max_list_items: int = 10_000
    max_depth: int = 16


DEFAULT_LIMITS = Limits()

