"""The JSON API under /api: the same operations as the pages, for scripts and integrations.

Authentication is the session cookie; every state-changing call needs the session's CSRF token in the
``X-CSRF-Token`` header (``GET /api/me`` returns it).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from . import audit, queries
from .auth import Account
from .security import AUDITOR, SUPERVISOR, TRIAGE, api, api_write
from .tables import DISPOSITIONS

router = APIRouter(prefix="/api")

AnyUser = Annotated[Account, Depends(api())]
Triage = Annotated[Account, Depends(api(*TRIAGE))]
TriageWrite = Annotated[Account, Depends(api_write(*TRIAGE))]
Supervisor = Annotated[Account, Depends(api(*SUPERVISOR))]
SupervisorWrite = Annotated[Account, Depends(api_write(*SUPERVISOR))]
Auditor = Annotated[Account, Depends(api(*AUDITOR))]
Since = Annotated[datetime | None, Query(alias="from")]
Until = Annotated[datetime | None, Query(alias="to")]
PageNo = Annotated[int, Query(ge=1, le=1_000_000)]


def j(data: Any, status_code: int = 200) -> Response:
    body = orjson.dumps(data, default=str, option=orjson.OPT_NON_STR_KEYS)
    return Response(body, status_code=status_code, media_type="application/json")


class Me(BaseModel):
    name: str
    role: str
    csrf_token: str


class AssignIn(BaseModel):
    assignee: str | None = Field(None, max_length=255)


class StatusIn(BaseModel):
    status: Literal["new", "investigating", "closed"]
    disposition: Literal[DISPOSITIONS] | None = None  # type: ignore[valid-type]
    note: str | None = Field(None, max_length=10_000)


class CommentIn(BaseModel):
    body: str = Field(min_length=1, max_length=10_000)


class RevealIn(BaseModel):
    scope: Literal["identity", "content"]
    reason: str = Field(min_length=1, max_length=2000)


class DecisionIn(BaseModel):
    approve: bool


class CaseIn(BaseModel):
    alert_id: str = Field(max_length=64)
    title: str = Field("", max_length=500)


class CaseUpdateIn(BaseModel):
    status: Literal["open", "closed"] | None = None
    notes: str | None = Field(None, max_length=50_000)


class CaseAlertIn(BaseModel):
    alert_id: str = Field(max_length=64)


class HoldIn(BaseModel):
    hold: bool
    reason: str = Field(min_length=1, max_length=2000)


@router.get("/openapi.json", include_in_schema=False)
def openapi(request: Request, account: AnyUser) -> Response:
    return j(request.app.openapi())


@router.get("/me", response_model=Me)
def me(account: AnyUser) -> Me:
    return Me(name=account.name, role=account.role, csrf_token=account.csrf_token)


@router.get("/alerts")
def list_alerts(request: Request, account: Triage,
                status: Literal["new", "investigating", "closed"] | None = None,
                detector: str | None = None, severity: str | None = None,
                since: Since = None, until: Until = None,
                assignee: str | None = None, subject: str | None = None,
                sort: Literal["newest", "risk"] = "newest", page: PageNo = 1) -> Response:
    st = request.app.state.review
    f = queries.QueueFilter(status=status, detector=detector, severity=severity, since=since, until=until,
                            assignee=assignee, subject=subject, sort=sort, page=page)
    with st.engine.connect() as conn:
        return j(queries.queue(conn, account, f, st.pseudo, st.config.page_size))


@router.get("/alerts/{alert_id}")
def get_alert(request: Request, alert_id: str, account: Triage) -> Response:
    view = request.app.state.review.review.view_alert(account, alert_id[:64])
    view.pop("assignable", None)
    return j(view)


@router.post("/alerts/{alert_id}/assign")
def assign(request: Request, alert_id: str, body: AssignIn, account: TriageWrite) -> Response:
    request.app.state.review.review.assign(account, alert_id, body.assignee)
    return j({"ok": True})


@router.post("/alerts/{alert_id}/status")
def set_status(request: Request, alert_id: str, body: StatusIn, account: TriageWrite) -> Response:
    request.app.state.review.review.set_status(account, alert_id, body.status, body.disposition, body.note)
    return j({"ok": True})


@router.post("/alerts/{alert_id}/comments", status_code=201)
def comment(request: Request, alert_id: str, body: CommentIn, account: TriageWrite) -> Response:
    request.app.state.review.review.comment(account, body.body, alert_id=alert_id)
    return j({"ok": True}, 201)


@router.post("/alerts/{alert_id}/reveals", status_code=201)
def reveal(request: Request, alert_id: str, body: RevealIn, account: TriageWrite) -> Response:
    return j(request.app.state.review.review.request_reveal(account, alert_id, body.scope, body.reason), 201)


@router.get("/subjects")
def subjects(request: Request, account: Triage) -> Response:
    st = request.app.state.review
    with st.engine.connect() as conn:
        return j(queries.subjects(conn, account, st.review.now(), st.risk,
                                  st.pseudo))


@router.get("/people/{pseudonym}/story")
def person_story(request: Request, pseudonym: str, account: Triage,
                 days: Annotated[int, Query(ge=1, le=365)] = 60) -> Response:
    """A person's activity per day by kind, own and peer baselines, alerts, risk signals and departure
    window, for the ``days`` days up to today: the numbers of the person page's chart. Audited as a view."""
    from .story import as_json, viewed

    return j(as_json(viewed(request.app.state.review, account, pseudonym, days)))


@router.get("/reveals")
def pending_reveals(request: Request, account: Supervisor) -> Response:
    st = request.app.state.review
    with st.engine.connect() as conn:
        rows = queries.pending_reveals(conn, account)
    for r in rows:
        r["pseudonym"] = st.pseudo(r.pop("subject"))
    return j(rows)


@router.post("/reveals/{reveal_id}/decision")
def decide(request: Request, reveal_id: int, body: DecisionIn, account: SupervisorWrite) -> Response:
    request.app.state.review.review.decide_reveal(account, reveal_id, body.approve)
    return j({"ok": True})


@router.get("/cases")
def list_cases(request: Request, account: Triage, status: Literal["open", "closed"] | None = None) -> Response:
    st = request.app.state.review
    with st.engine.connect() as conn:
        return j(queries.case_list(conn, account, st.pseudo, status))


@router.post("/cases", status_code=201)
def create_case(request: Request, body: CaseIn, account: TriageWrite) -> Response:
    return j({"id": request.app.state.review.review.create_case(account, body.alert_id, body.title)}, 201)


@router.get("/cases/{case_id}")
def get_case(request: Request, case_id: int, account: Triage) -> Response:
    return j(request.app.state.review.review.view_case(account, case_id))


@router.post("/cases/{case_id}")
def update_case(request: Request, case_id: int, body: CaseUpdateIn, account: TriageWrite) -> Response:
    request.app.state.review.review.update_case(account, case_id, status=body.status, notes=body.notes)
    return j({"ok": True})


@router.post("/cases/{case_id}/alerts")
def add_alert(request: Request, case_id: int, body: CaseAlertIn, account: TriageWrite) -> Response:
    request.app.state.review.review.add_to_case(account, case_id, body.alert_id)
    return j({"ok": True})


@router.post("/cases/{case_id}/comments", status_code=201)
def case_comment(request: Request, case_id: int, body: CommentIn, account: TriageWrite) -> Response:
    request.app.state.review.review.comment(account, body.body, case_id=case_id)
    return j({"ok": True}, 201)


@router.post("/cases/{case_id}/hold")
def hold(request: Request, case_id: int, body: HoldIn, account: SupervisorWrite) -> Response:
    request.app.state.review.review.set_hold(account, case_id, body.hold, body.reason)
    return j({"ok": True})


@router.get("/cases/{case_id}/export")
def export(request: Request, case_id: int, account: Supervisor) -> Response:
    return j(request.app.state.review.review.export_case(account, case_id))


@router.get("/audit")
def audit_trail(request: Request, account: Auditor, actor: str | None = None, action: str | None = None,
                target: str | None = None, since: Since = None, until: Until = None,
                limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                offset: Annotated[int, Query(ge=0)] = 0) -> Response:
    st = request.app.state.review
    st.review.view_audit(account, {"actor": actor, "action": action, "target": target, "from": since,
                                   "to": until})
    rows, total = audit.query(st.engine, actor=actor, action=action, target=target, since=since, until=until,
                              limit=limit, offset=offset)
    return j({"total": total, "records": rows})


@router.get("/audit/verify")
def audit_verify(request: Request, account: Auditor) -> Response:
    from .state import verify_chain

    report = verify_chain(request.app.state.review)
    return j({"ok": report.ok, "records": report.records, "head_seq": report.head_seq,
              "broken_seq": report.broken_seq, "problem": report.problem})
