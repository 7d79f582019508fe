"""Server-rendered pages for reviewers, supervisors, auditors and admins."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from detectors.alert import SEVERITIES
from stream.store.tables import ALERT_STATUSES

from . import audit, queries
from .actions import ActionError, NotFound
from .auth import COOKIE, Account, add_user, disable_user
from .charts import window_chart
from .runbooks import runbook
from .security import ADMIN, AUDITOR, SUPERVISOR, TRIAGE, page, page_write
from .tables import DISPOSITIONS, REVEAL_SCOPES, ROLES

router = APIRouter(include_in_schema=False)

Triage = Annotated[Account, Depends(page(*TRIAGE))]
TriageWrite = Annotated[Account, Depends(page_write(*TRIAGE))]
SupervisorPage = Annotated[Account, Depends(page(*SUPERVISOR))]
SupervisorWrite = Annotated[Account, Depends(page_write(*SUPERVISOR))]
AuditorPage = Annotated[Account, Depends(page(*AUDITOR))]
AdminPage = Annotated[Account, Depends(page(*ADMIN))]
AdminWrite = Annotated[Account, Depends(page_write(*ADMIN))]
AnyWrite = Annotated[Account, Depends(page_write())]
AnyPage = Annotated[Account, Depends(page())]


def render(request: Request, name: str, account: Account, status_code: int = 200, **ctx: Any) -> Response:
    st = request.app.state.review
    return st.templates.TemplateResponse(request, name, {
        "account": account, "nav": name.split(".")[0], "notice": request.query_params.get("done"), **ctx,
    }, status_code=status_code)


def back(path: str, done: str) -> RedirectResponse:
    return RedirectResponse(f"{path}?done={done}", status_code=303)


def _seconds(value: Any) -> float | None:
    """POSIX seconds of a stored time (a datetime, naive = UTC as SQLite returns it)."""
    from datetime import UTC, datetime

    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    return float(value) if isinstance(value, int | float) else None


@router.get("/")
def home(account: AnyPage) -> Response:
    return RedirectResponse({"auditor": "/audit", "admin": "/admin/users"}.get(account.role, "/queue"),
                            status_code=303)


@router.post("/logout")
def logout(request: Request, account: AnyWrite) -> Response:
    st = request.app.state.review
    st.review.logout(account)
    st.sessions.drop(account.session)
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(COOKIE, path="/")
    return resp


def queue_filter(request: Request) -> queries.QueueFilter:
    q = request.query_params

    def opt(name: str, allowed: tuple[str, ...] | None = None) -> str | None:
        v = (q.get(name) or "").strip()[:255]
        if not v or (allowed is not None and v not in allowed):
            return None
        return v

    try:
        page_no = max(1, min(int(q.get("page", "1")), 1_000_000))
    except ValueError:
        page_no = 1
    return queries.QueueFilter(
        status=opt("status", ALERT_STATUSES), detector=opt("detector"), severity=opt("severity", SEVERITIES),
        since=queries.parse_day(q.get("from")), until=queries.parse_day(q.get("to"), end=True),
        assignee=opt("assignee"), subject=opt("subject"), sort=opt("sort", ("newest", "risk")) or "newest",
        page=page_no,
    )


@router.get("/queue", response_class=HTMLResponse)
def queue_page(request: Request, account: Triage) -> Response:
    st = request.app.state.review
    f = queue_filter(request)
    with st.engine.connect() as conn:
        result = queries.queue(conn, account, f, st.pseudo, st.config.page_size)
        detectors = queries.detectors(conn)
        assignable = queries.assignable(conn)
    params = {k: v for k, v in request.query_params.items() if k != "page" and v}
    base_status = {k: v for k, v in params.items() if k != "status"}
    return render(request, "queue.html", account, result=result, f=f, detectors=detectors,
                  assignable=assignable, severities=SEVERITIES, statuses=ALERT_STATUSES,
                  query=urlencode(params), status_query=urlencode(base_status),
                  raw=request.query_params)


@router.get("/subjects", response_class=HTMLResponse)
def subjects_page(request: Request, account: Triage) -> Response:
    st = request.app.state.review
    with st.engine.connect() as conn:
        ranked = queries.subjects(conn, account, st.review.now(), st.risk,
                                  st.pseudo)
    return render(request, "subjects.html", account, ranked=ranked, half_life=st.risk.half_life_days)


@router.get("/alerts/{alert_id}", response_class=HTMLResponse)
def alert_page(request: Request, alert_id: str, account: Triage) -> Response:
    st = request.app.state.review
    view = st.review.view_alert(account, alert_id[:64])
    chart = window_chart(view.get("facts") or {}, view.get("evidence") or [], _seconds(view.get("first_seen")),
                         _seconds(view.get("last_seen")))
    return render(request, "alert.html", account, a=view, runbook=runbook(view["detector"]), chart=chart,
                  deletion=_deletion_notice(st, "alert", view["id"]),
                  dispositions=DISPOSITIONS, scopes=REVEAL_SCOPES, statuses=ALERT_STATUSES,
                  needs_approval=st.config.reveal_needs_approval, reveal_minutes=st.config.reveal_minutes,
                  min_reason=st.config.reveal_reason_min_chars, now=st.review.now())


@router.post("/alerts/{alert_id}/assign")
def assign(request: Request, alert_id: str, account: TriageWrite, assignee: str = Form("")) -> Response:
    request.app.state.review.review.assign(account, alert_id, assignee)
    return back(f"/alerts/{alert_id}", "assigned")


@router.post("/alerts/{alert_id}/status")
def status(request: Request, alert_id: str, account: TriageWrite, status: str = Form(""),
           disposition: str = Form(""), note: str = Form("")) -> Response:
    request.app.state.review.review.set_status(account, alert_id, status, disposition or None, note)
    return back(f"/alerts/{alert_id}", "status")


@router.post("/alerts/{alert_id}/comments")
def comment(request: Request, alert_id: str, account: TriageWrite, body: str = Form("")) -> Response:
    request.app.state.review.review.comment(account, body, alert_id=alert_id)
    return back(f"/alerts/{alert_id}", "commented")


@router.post("/alerts/{alert_id}/reveal")
def reveal(request: Request, alert_id: str, account: TriageWrite, scope: str = Form(""),
           reason: str = Form("")) -> Response:
    result = request.app.state.review.review.request_reveal(account, alert_id, scope, reason)
    return back(f"/alerts/{alert_id}", "revealed" if result["status"] == "approved" else "reveal_requested")


@router.post("/alerts/{alert_id}/case")
def to_case(request: Request, alert_id: str, account: TriageWrite, case_id: str = Form(""),
            title: str = Form("")) -> Response:
    review = request.app.state.review.review
    if case_id.strip():
        try:
            cid = int(case_id)
        except ValueError:
            raise ActionError("no such case") from None
        review.add_to_case(account, cid, alert_id)
    else:
        cid = review.create_case(account, alert_id, title)
    return back(f"/cases/{cid}", "added")


@router.get("/reveals", response_class=HTMLResponse)
def reveals_page(request: Request, account: SupervisorPage) -> Response:
    st = request.app.state.review
    with st.engine.connect() as conn:
        pending = queries.pending_reveals(conn, account)
    for p in pending:
        p["pseudonym"] = st.pseudo(p.pop("subject"))
    return render(request, "reveals.html", account, pending=pending)


@router.post("/reveals/{reveal_id}/decision")
def decide(request: Request, reveal_id: int, account: SupervisorWrite, decision: str = Form("")) -> Response:
    if decision not in ("approve", "deny"):
        raise ActionError("decision must be approve or deny")
    request.app.state.review.review.decide_reveal(account, reveal_id, decision == "approve")
    return back("/reveals", "decided")


@router.get("/cases", response_class=HTMLResponse)
def cases_page(request: Request, account: Triage, status: str | None = None) -> Response:
    st = request.app.state.review
    with st.engine.connect() as conn:
        rows = queries.case_list(conn, account, st.pseudo, status if status in ("open", "closed") else None)
        from .deletion_notice import cases_due

        due = cases_due(conn, st.settings.retention_s, st.config.retention_warning_days, st.review.now())
    return render(request, "cases.html", account, cases=rows, status=status, due=due)


@router.get("/cases/{case_id}", response_class=HTMLResponse)
def case_page(request: Request, case_id: int, account: Triage) -> Response:
    st = request.app.state.review
    view = st.review.view_case(account, case_id)
    return render(request, "case.html", account, c=view, deletion=_deletion_notice(st, "case", case_id))


def _deletion_notice(st: Any, kind: str, target: Any) -> Any:
    """When the retention job will delete this alert or case, if that is within the warning period."""
    from . import deletion_notice

    find = deletion_notice.for_alert if kind == "alert" else deletion_notice.for_case
    with st.engine.connect() as conn:
        return find(conn, target, st.settings.retention_s, st.config.retention_warning_days, st.review.now())


@router.post("/cases/{case_id}")
def case_update(request: Request, case_id: int, account: TriageWrite, status: str = Form(""),
                notes: str | None = Form(None)) -> Response:
    request.app.state.review.review.update_case(account, case_id, status=status or None, notes=notes)
    return back(f"/cases/{case_id}", "saved")


@router.post("/cases/{case_id}/comments")
def case_comment(request: Request, case_id: int, account: TriageWrite, body: str = Form("")) -> Response:
    request.app.state.review.review.comment(account, body, case_id=case_id)
    return back(f"/cases/{case_id}", "commented")


@router.post("/cases/{case_id}/hold")
def hold(request: Request, case_id: int, account: SupervisorWrite, hold: str = Form(""),
         reason: str = Form("")) -> Response:
    request.app.state.review.review.set_hold(account, case_id, hold == "on", reason)
    return back(f"/cases/{case_id}", "hold")


@router.get("/cases/{case_id}/export")
def export(request: Request, case_id: int, account: SupervisorPage) -> Response:
    data = request.app.state.review.review.export_case(account, case_id)
    body = orjson.dumps(data, default=str, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS)
    return Response(body, media_type="application/json",
                    headers={"Content-Disposition": f'attachment; filename="case-{case_id}.json"'})


@router.get("/audit", response_class=HTMLResponse)
def audit_page(request: Request, account: AuditorPage) -> Response:
    st = request.app.state.review
    q = request.query_params
    filters = {"actor": q.get("actor") or None, "action": q.get("action") or None,
               "target": q.get("target") or None}
    since, until = queries.parse_day(q.get("from")), queries.parse_day(q.get("to"), end=True)
    try:
        page_no = max(1, int(q.get("page", "1")))
    except ValueError:
        page_no = 1
    size = 100
    st.review.view_audit(account, {**filters, "from": q.get("from"), "to": q.get("to")})
    rows, total = audit.query(st.engine, **filters, since=since, until=until, limit=size,
                              offset=(page_no - 1) * size)
    from .app import verify_chain

    report = verify_chain(st)
    params = {k: v for k, v in q.items() if k != "page" and v}
    return render(request, "audit.html", account, rows=rows, total=total, page=page_no,
                  pages=max(1, -(-total // size)), report=report, actions=audit.ACTIONS, raw=q,
                  query=urlencode(params))


@router.get("/admin/deadletters", response_class=HTMLResponse)
def dead_letters_page(request: Request, account: AdminPage) -> Response:
    """Recent dead letters by reason and source, with the field path and a redacted excerpt (the same
    data as ``custodes deadletters``): for the operator fixing a source, not for reviewing people."""
    from .app import DEAD_LETTER_SCAN

    st = request.app.state.review
    reason = (request.query_params.get("reason") or "").strip()[:64] or None
    st.review.view_dead_letters(account, reason)
    letters, counts, error = [], {}, None
    if st.dead_letters is not None:
        try:
            letters, counts = st.dead_letters(200, reason)
        except Exception as exc:  # noqa: BLE001 - a broker problem is shown, not a 500
            error = f"could not read the dead-letter topic ({type(exc).__name__}); check the broker"
    letters = list(reversed(letters))  # newest first
    by_source: dict[tuple[str, str], int] = {}
    for one in letters:
        key = (one.reason, one.source.split(" ", 1)[0].rsplit(":", 1)[0])
        by_source[key] = by_source.get(key, 0) + 1
    return render(request, "deadletters.html", account, letters=letters, counts=sorted(counts.items()),
                  by_source=sorted(by_source.items(), key=lambda kv: (-kv[1], kv[0])), reason=reason,
                  error=error, configured=st.dead_letters is not None, topic=st.settings.topics.dead_letter,
                  scan=DEAD_LETTER_SCAN)


@router.get("/admin/users", response_class=HTMLResponse)
def users_page(request: Request, account: AdminPage) -> Response:
    from sqlalchemy import select

    from .tables import users

    st = request.app.state.review
    with st.engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(
            select(users.c.name, users.c.role, users.c.disabled, users.c.linked_user_id, users.c.created_at)
            .order_by(users.c.name))]
    return render(request, "users.html", account, users=rows, roles=ROLES)


@router.post("/admin/users")
def users_add(request: Request, account: AdminWrite, name: str = Form(""), role: str = Form(""),
              password: str = Form(""), linked_user_id: str = Form("")) -> Response:
    st = request.app.state.review
    with st.review.act(account) as a:
        try:
            add_user(a.conn, name, role, password or None, linked_user_id or None, st.review.now())
        except ValueError as exc:
            raise ActionError(str(exc)) from None
        a.log("user_add", "account", name.strip(), role=role, linked=bool(linked_user_id))
    return back("/admin/users", "added")


@router.post("/admin/users/{name}/disable")
def users_disable(request: Request, name: str, account: AdminWrite) -> Response:
    st = request.app.state.review
    if name == account.name:
        raise ActionError("you cannot disable your own account")
    with st.review.act(account) as a:
        if not disable_user(a.conn, name, st.review.now()):
            raise NotFound("no such account")
        a.log("user_disable", "account", name)
    return back("/admin/users", "disabled")
