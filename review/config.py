"""The review app's own knobs, read from ``CUSTODES_REVIEW_*`` environment variables.

``stream.contract.settings.Settings`` is frozen and forbids unknown keys, so until it grows a ``[review]``
section these live here. Every value has a safe default: reveals last 15 minutes, the proxy identity
header is OFF, no proxy is trusted for the client address or the scheme, cookies are Secure.

A list (``trusted_proxies``) is given in the environment as comma-separated values.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from ipaddress import ip_network

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

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
    trusted_proxies: tuple[str, ...] = ()
    """Addresses or networks (``10.0.0.5``, ``10.0.0.0/24``) of reverse proxies whose ``X-Forwarded-For``
    and ``X-Forwarded-Proto`` are believed. Login throttling counts failures per client: behind a
    trusted proxy by the forwarded client address, otherwise by the connecting peer. Empty: no proxy
    is trusted (behind an untrusted proxy every client shares the proxy's address and its limit)."""
    hsts_max_age_s: int = Field(31_536_000, ge=0)
    """``Strict-Transport-Security: max-age`` sent on responses served over TLS (directly, or by a
    trusted proxy that says ``X-Forwarded-Proto: https``). 0: no HSTS header."""
    retention_warning_days: int = Field(30, ge=0, le=365)
    """Alert and case pages warn this many days before the retention job deletes them."""

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for v in value:
            try:
                ip_network(v, strict=False)
            except ValueError:
                raise ValueError(f"{v!r} is not an IP address or network") from None
        return value

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
