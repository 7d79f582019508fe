"""The review app's own knobs, read from ``CUSTODES_REVIEW_*`` environment variables.

``stream.settings.Settings`` is frozen and forbids unknown keys, so until it grows a ``[review]``
section these live here. Every value has a safe default: reveals last 15 minutes, the proxy identity
header is OFF, cookies are Secure.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError

ENV_PREFIX = "CUSTODES_REVIEW_"


class ReviewConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    reveal_minutes: int = Field(15, ge=1, le=24 * 60)
    """How long a reveal of identity or content lasts."""
    reveal_needs_approval: bool = False
    """When true a reveal takes effect only once a supervisor (not the requester) approves it."""
    reveal_reason_min_chars: int = Field(10, ge=1, le=1000)
    proxy_auth: bool = False
    """Trust an identity header set by a single-sign-on reverse proxy. Only enable behind such a proxy."""
    proxy_header: str = "X-Remote-User"
    cookie_secure: bool = True
    """Set false only for plain-HTTP use on localhost."""
    session_idle_minutes: int = Field(30, ge=1, le=24 * 60)
    session_max_hours: int = Field(12, ge=1, le=24 * 7)
    login_max_failures_per_account: int = Field(5, ge=1)
    login_max_failures_per_client: int = Field(20, ge=1)
    login_window_s: int = Field(900, ge=1)
    audit_verify_minutes: float = Field(10.0, gt=0)
    page_size: int = Field(25, ge=1, le=500)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> ReviewConfig:
        env = os.environ if env is None else env
        data: dict[str, object] = {}
        for name in cls.model_fields:
            value = env.get(ENV_PREFIX + name.upper())
            if value not in (None, ""):
                data[name] = value
        data.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return cls(**data)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ValueError(f"invalid review settings: {problems}") from None
