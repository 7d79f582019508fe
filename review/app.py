"""The review app: ``create_app(settings)`` builds the FastAPI application.

Pages are server-rendered (Jinja2, autoescaped, no JavaScript); the JSON API lives under /api with its
OpenAPI document at /api/openapi.json (login required). Only /login, /health, /ready and /metrics are
reachable without logging in. The stylesheet is inlined and allowed by hash in the Content-Security-
Policy, so not even static files are served to anonymous clients.

The login page shows messages from a fixed set only (``/login?error=<code>``, see ``LOGIN_ERRORS``).
Failed logins are audit records (``login_failed``) as well as a metric. HSTS is sent when the request
came over TLS (directly, or through a trusted proxy); a Permissions-Policy turns off browser features
the app never uses.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
import threading
import time
from collections.abc import Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from sqlalchemy import Engine, text

from detectors.risk import RiskConfig
from stream.contract.settings import Settings
from stream.store import audit_chain
from stream.store.alerts import engine_for, migrate

from .actions import ActionError, Review
from .audit import AuditTrail
from .auth import COOKIE, LOGIN_CSRF_COOKIE, Sessions, Throttle, csrf_ok
from .config import ReviewConfig
from .directory import directory_for
from .events import Emitter, emitter_for
from .metrics import ReviewMetrics
from .proxies import client_address, over_tls
from .pseudonym import Pseudonymiser, load_key
from .security import Denied, LoginRequired, current_account
from .state import DeadLetterReader, State, kafka_dead_letters, verify_chain

log = logging.getLogger("custodes.review")
HERE = Path(__file__).resolve().parent

LOGIN_ERRORS = {
    "expired": "Your login form expired. Please try again.",
    "throttled": "Too many failed logins. Wait a few minutes and try again.",
    "failed": "Wrong account name or password.",
}
"""The only messages the login page shows; ``/login?error=<code>`` with any other code shows none."""

PERMISSIONS_POLICY = ", ".join(f"{feature}=()" for feature in (
    "accelerometer", "autoplay", "camera", "display-capture", "encrypted-media", "fullscreen", "geolocation",
    "gyroscope", "magnetometer", "microphone", "midi", "payment", "picture-in-picture", "publickey-credentials-get",
    "screen-wake-lock", "serial", "usb", "xr-spatial-tracking",
))
"""Every powerful browser feature off: the app uses none of them (and has no JavaScript)."""


def _templates(css: str) -> Jinja2Templates:
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True),
                      trim_blocks=True, lstrip_blocks=True)
    from . import views

    env.filters.update(views.FILTERS)
    env.globals["css"] = Markup(css)
    return Jinja2Templates(env=env)


def create_app(settings: Settings, registry: CollectorRegistry | None = None,
               clock: Callable[[], float] = time.time, *, config: ReviewConfig | None = None,
               emitter: Emitter | None = None, engine: Engine | None = None,
               dead_letters: DeadLetterReader | None = None, directory: Any = None) -> FastAPI:
    config = config or ReviewConfig.from_env()
    registry = registry if registry is not None else CollectorRegistry()
    engine = engine or engine_for(settings.db_url)
    migrate(engine)
    emitter = emitter if emitter is not None else emitter_for(settings)
    pseudo = Pseudonymiser(load_key(settings))
    css = (HERE / "static" / "review.css").read_text(encoding="utf-8")
    css_hash = base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()
    metrics = ReviewMetrics(registry, engine, clock)
    trail = AuditTrail(engine, clock, key=audit_chain.load_key(settings))
    trail.seal("custodes-review")  # an upgraded, unkeyed chain gets a keyed record covering it
    state = State(
        settings=settings, config=config, risk=RiskConfig.from_mapping(settings.detectors.get("risk", {})),
        engine=engine, clock=clock,
        sessions=Sessions(engine, clock, timedelta(minutes=config.session_idle_minutes),
                          timedelta(hours=config.session_max_hours)),
        trail=trail, review=Review(engine, trail, emitter, metrics, clock, config, pseudo), metrics=metrics,
        registry=registry, templates=_templates(css), pseudo=pseudo, emitter=emitter,
        throttle_account=Throttle(config.login_max_failures_per_account, config.login_window_s),
        throttle_client=Throttle(config.login_max_failures_per_client, config.login_window_s),
        css_hash=css_hash, head_file=Path(settings.data_dir) / audit_chain.HEAD_FILE,
        dead_letters=dead_letters if dead_letters is not None else kafka_dead_letters(settings),
        directory=directory if directory is not None else directory_for(settings),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        stop = threading.Event()

        def verifier() -> None:
            while True:
                try:
                    verify_chain(state)
                except Exception:  # noqa: BLE001 - keep verifying; the gauge shows the problem
                    state.metrics.chain_valid.set(0)
                    log.exception("audit chain verification failed to run")
                if stop.wait(config.audit_verify_minutes * 60):
                    return

        thread = threading.Thread(target=verifier, name="custodes-audit-verify", daemon=True)
        thread.start()
        state.directory.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=10)
            state.directory.stop()
            emitter.close()

    app = FastAPI(title="Custodes review", version="1", lifespan=lifespan, openapi_url=None, docs_url=None,
                  redoc_url=None)
    app.state.review = state

    @app.middleware("http")
    async def headers(request: Request, call_next):
        response = await call_next(request)
        token = getattr(request.state, "new_session", None)
        if token:
            set_session_cookie(response, token, config)
        h = response.headers
        h["Content-Security-Policy"] = (
            f"default-src 'none'; style-src 'sha256-{css_hash}'; img-src 'self' data:; form-action 'self'; "
            "frame-ancestors 'none'; base-uri 'none'"
        )
        h["X-Content-Type-Options"] = "nosniff"
        h["X-Frame-Options"] = "DENY"
        h["Referrer-Policy"] = "no-referrer"
        h["Permissions-Policy"] = PERMISSIONS_POLICY
        if config.hsts_max_age_s and over_tls(request, config.trusted_proxies):
            h["Strict-Transport-Security"] = f"max-age={config.hsts_max_age_s}; includeSubDomains"
        h.setdefault("Cache-Control", "no-store")
        return response

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, exc: LoginRequired):
        if exc.api:
            return JSONResponse({"detail": "login required"}, status_code=401)
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)

    @app.exception_handler(Denied)
    async def denied(request: Request, exc: Denied):
        if exc.api:
            return JSONResponse({"detail": exc.message}, status_code=403)
        return error_page(request, 403, exc.message)

    @app.exception_handler(ActionError)
    async def action_error(request: Request, exc: ActionError):
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": str(exc)}, status_code=exc.status)
        return error_page(request, exc.status, str(exc))

    # -- public ---------------------------------------------------------------------------------------

    @app.get("/health", include_in_schema=False)
    def health() -> Response:
        return Response(orjson.dumps({"status": "ok"}), media_type="application/json")

    @app.get("/ready", include_in_schema=False)
    def ready() -> Response:
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            ok = True
        except Exception:  # noqa: BLE001
            ok = False
        return Response(orjson.dumps({"ready": ok}), status_code=200 if ok else 503,
                        media_type="application/json")

    @app.get("/metrics", include_in_schema=False)
    def metrics_endpoint() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/login", include_in_schema=False, response_class=HTMLResponse)
    def login_page(request: Request, next: str = "/queue", error: str | None = None):
        if current_account(request) is not None:
            return RedirectResponse(safe_next(next), status_code=303)
        token = secrets.token_urlsafe(24)
        resp = state.templates.TemplateResponse(request, "login.html", {
            "next": safe_next(next), "csrf": token, "error": LOGIN_ERRORS.get(error or ""), "account": None,
            "proxy": config.proxy_auth})
        resp.set_cookie(LOGIN_CSRF_COOKIE, token, max_age=3600, httponly=True, secure=config.cookie_secure,
                        samesite="strict", path="/login")
        return resp

    @app.post("/login", include_in_schema=False)
    def login(request: Request, username: str = Form(""), password: str = Form(""),
              csrf_token: str = Form(""), next: str = Form("/queue")):
        if not csrf_ok(request.cookies.get(LOGIN_CSRF_COOKIE, ""), csrf_token):
            return login_again(request, "expired", next, 403)
        client = client_address(request, config.trusted_proxies)
        name = username.strip()[:255]
        akey, ckey = "a:" + name.lower(), "c:" + client
        if state.throttle_account.blocked(akey) or state.throttle_client.blocked(ckey):
            state.metrics.logins.labels("throttled").inc()
            return login_again(request, "throttled", next, 429)
        acc = state.sessions.authenticate(name, password) if name and password else None
        if acc is None:
            state.throttle_account.fail(akey)
            state.throttle_client.fail(ckey)
            state.metrics.logins.labels("failure").inc()
            record_failed_login(name, "password" if password else "no_password")
            return login_again(request, "failed", next, 401)
        state.throttle_account.reset(akey)
        token, acc = state.sessions.create(acc)
        state.metrics.logins.labels("success").inc()
        state.review.login(acc, "password")
        default = {"auditor": "/audit", "admin": "/admin/users"}.get(acc.role, "/queue")
        target = safe_next(next) if next not in ("", "/", "/queue") else default
        resp = RedirectResponse(target, status_code=303)
        set_session_cookie(resp, token, config)
        resp.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
        return resp

    def record_failed_login(name: str, method: str) -> None:
        """An audit record per failed (not throttled) login, never with the password. The actor is the
        account name when that account exists, as for every other record; an unknown name is recorded
        only as its keyed pseudonym (it may be a mistyped password or someone else's name)."""
        known = state.sessions.account_role(name) if name else None
        actor = name if known is not None else "unknown:" + state.pseudo(name.lower())
        with state.trail.transaction() as conn:
            rec = state.trail.append(conn, actor=actor, role=known or "none", action="login_failed",
                                     target_type="account", target_id=actor,
                                     detail={"method": method, "account_known": known is not None})
        state.metrics.actions.labels("login_failed").inc()
        state.metrics.note_head(rec["seq"], rec["hash"])

    def login_again(request: Request, code: str, next: str, status: int) -> Response:
        token = secrets.token_urlsafe(24)
        resp = state.templates.TemplateResponse(request, "login.html", {
            "next": safe_next(next), "csrf": token, "error": LOGIN_ERRORS[code], "account": None,
            "proxy": config.proxy_auth}, status_code=status)
        resp.set_cookie(LOGIN_CSRF_COOKIE, token, max_age=3600, httponly=True, secure=config.cookie_secure,
                        samesite="strict", path="/login")
        return resp

    def error_page(request: Request, status: int, message: str) -> Response:
        acc = getattr(request.state, "account", None)
        return state.templates.TemplateResponse(request, "error.html", {
            "account": acc, "status": status, "message": message,
            "back": safe_back(request)}, status_code=status)

    from .api import router as api_router
    from .pages import router as pages_router

    app.include_router(pages_router)
    app.include_router(api_router)
    return app


def set_session_cookie(response: Response, token: str, config: ReviewConfig) -> None:
    response.set_cookie(COOKIE, token, httponly=True, secure=config.cookie_secure, samesite="strict", path="/",
                        max_age=config.session_max_hours * 3600)


def safe_next(value: str | None) -> str:
    """Only same-site paths: no scheme, no host, no protocol-relative ``//``, no backslashes."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value or "\n" in value:
        return "/queue"
    return value


def safe_back(request: Request) -> str:
    path = request.url.path
    if request.method == "POST":
        parts = path.rstrip("/").split("/")
        if len(parts) >= 3 and parts[1] in ("alerts", "cases"):
            return "/".join(parts[:3])
    return "/queue"


def serve(settings: Settings, **kwargs: Any) -> None:
    import uvicorn

    from stream.telemetry.logs import dict_config

    app = create_app(settings, **kwargs)
    # structured JSON logs without personal data, as in the worker and the sink; no access log
    # (request paths carry alert ids)
    uvicorn.run(app, host=settings.web_bind, port=settings.review_port, log_level=settings.log_level,
                access_log=False, proxy_headers=False, log_config=dict_config(settings.log_level))
