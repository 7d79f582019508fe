"""Request authentication and authorisation: who is calling (session cookie, or the trusted proxy
header when enabled), whether their role may use the route, and the CSRF check on state changes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Request

from .auth import COOKIE, CSRF_FIELD, CSRF_HEADER, Account, csrf_ok

ALL_ROLES = ("reviewer", "supervisor", "auditor", "admin")
TRIAGE = ("reviewer", "supervisor")
SUPERVISOR = ("supervisor",)
AUDITOR = ("auditor",)
ADMIN = ("admin",)


class LoginRequired(Exception):
    def __init__(self, api: bool) -> None:
        self.api = api


class Denied(Exception):
    def __init__(self, api: bool, message: str = "Your role does not allow this.") -> None:
        self.api = api
        self.message = message


def current_account(request: Request) -> Account | None:
    if "account" in request.state._state:
        return request.state.account
    state = request.app.state.review
    acc = state.sessions.lookup(request.cookies.get(COOKIE))
    cfg = state.config
    if cfg.proxy_auth:
        name = (request.headers.get(cfg.proxy_header) or "").strip()
        if name and (acc is None or acc.name != name):
            if acc is not None:
                state.sessions.drop(acc.session)
            base = state.sessions.by_name(name)
            acc = None
            if base is not None:
                token, acc = state.sessions.create(base)
                request.state.new_session = token
                state.metrics.logins.labels("success").inc()
                state.review.login(acc, "proxy_header")
    request.state.account = acc
    return acc


def _require(roles: tuple[str, ...], api: bool, write: bool) -> Callable[..., Any]:
    async def dependency(request: Request) -> Account:
        acc = current_account(request)
        if acc is None:
            raise LoginRequired(api)
        if acc.role not in roles:
            raise Denied(api)
        if write:
            if api:
                given = request.headers.get(CSRF_HEADER)
            else:
                form = await request.form()
                value = form.get(CSRF_FIELD)
                given = value if isinstance(value, str) else None
            if not csrf_ok(acc.csrf_token, given):
                raise Denied(api, "Missing or wrong CSRF token: reload the page and try again.")
        return acc

    return dependency


def page(*roles: str) -> Callable[..., Any]:
    return _require(roles or ALL_ROLES, api=False, write=False)


def page_write(*roles: str) -> Callable[..., Any]:
    return _require(roles or ALL_ROLES, api=False, write=True)


def api(*roles: str) -> Callable[..., Any]:
    return _require(roles or ALL_ROLES, api=True, write=False)


def api_write(*roles: str) -> Callable[..., Any]:
    return _require(roles or ALL_ROLES, api=True, write=True)
