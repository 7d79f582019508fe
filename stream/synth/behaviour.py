"""Ordinary work: one member of staff's day as planned activities ``(time, kind, payload)``.

Shift patterns: ``response`` staff rotate over ten days (two earlies, two lates, two nights, four rest
days); ``detective`` staff work weekdays and are on call from home every twelfth night; ``office``
staff work weekdays. At work people log on to their laptop at their station, unlock their phone, look
up records of cases they are assigned to, message on sanctioned apps, e-mail colleagues, the CPS
and partners, and download reports. Benign spikes are built in, so false positives are possible:
month-end reporting (many large low-sensitivity downloads), on-call nights (bursts of look-ups at
hours the person otherwise never works), the odd WhatsApp message on a managed phone, a look-up
recorded without its case, a referral e-mailed to a school outside the county's information-sharing
agreement. Some days are spent
elsewhere (legitimate travel: a day at the national training centre).
"""

from __future__ import annotations

import math
import random
from typing import Any

from .organisation import INTERNAL_DOMAIN, Organisation, Person

HOUR = 3600.0
Plan = list[tuple[float, str, dict[str, Any]]]

ROTA = ("E", "E", "L", "L", "N", "N", "-", "-", "-", "-")
SHIFT_HOURS = {"E": (7, 10), "L": (14, 10), "N": (22, 9), "D": (8.5, 9), "O": (8, 8.5)}

TRAVEL_PLACES = ((52.5867, -1.9830, "Birmingham"), (51.5916, -0.2310, "Hendon"), (53.4794, -2.2453, "Manchester"))

BENIGN_TEXT = (
    "On my way back to the station now", "Can you pick up the next job?", "Briefing moved to 14:30",
    "Statement done, will upload shortly", "Anyone free to cover the front desk?", "Thanks, got it",
    "Custody is full, heading elsewhere", "Meeting in room 2 in ten minutes", "Report is on the shared drive",
    "Will call you after the briefing", "Running late, stuck in traffic", "Can someone check the log?",
)

RATES = {
    # pattern: look-ups, laptop messages, phone messages, e-mails, report downloads per shift
    "response": (14, 3, 8, 2, 0.05),
    "detective": (22, 8, 4, 7, 0.3),
    "office": (8, 10, 1, 10, 1.5),
}
ROLE_EXTRA = {"records officer": {"lookups": 30}, "analyst": {"exports": 2.5}}

DATASETS = (("pnc-persons", "high"), ("niche-nominals", "medium"), ("niche-occurrences", "medium"),
            ("intelligence-logs", "high"))
SITES = ("www.bbc.co.uk", "www.gov.uk", "www.college.police.uk", "www.legislation.gov.uk", "www.theguardian.com",
         "www.met.police.uk", "www.nottinghampost.com", "www.ons.gov.uk", "www.google.co.uk", "www.nhs.uk")
"""Ordinary browsing (uncategorised)."""
OCCASIONAL_SITES = (("mail.google.com", 0.03), ("www.dropbox.com", 0.02), ("www.linkedin.com", 0.03),
                    ("www.indeed.co.uk", 0.005), ("outlook.live.com", 0.02))
"""Sites anyone visits now and then (per shift probability): personal webmail at lunch, a shared link."""
JOB_SITES = ("www.indeed.co.uk", "www.reed.co.uk", "www.totaljobs.com", "www.civilservicejobs.service.gov.uk",
             "www.policenow.org.uk", "www.glassdoor.co.uk")
USB_FILES = (("briefing.pptx", "low"), ("court-bundle.pdf", "medium"), ("training-notes.docx", "low"),
             ("minutes.docx", "low"))
REPORTS = (("crime-performance-weekly", "low"), ("response-times", "low"), ("stop-search-monthly", "medium"),
           ("custody-throughput", "low"))


def poisson(rng: random.Random, mean: float) -> int:
    if mean <= 0:
        return 0
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def day_rng(org: Organisation, person: Person, day: int, salt: str = "") -> random.Random:
    return random.Random(f"{org.seed}/{person.idx}/{day}/{salt}")


def shift(org: Organisation, person: Person, day: int) -> tuple[float, float] | None:
    """Start and end (POSIX seconds) of the person's shift starting on ``day``, or None (rest day)."""
    if not person.employed(day):
        return None
    rng = day_rng(org, person, day, "shift")
    if person.pattern == "response":
        code = ROTA[(day + person.rota) % len(ROTA)]
        if code == "-":
            return None
    elif org.weekday(day) >= 5:
        return None
    else:
        code = "D" if person.pattern == "detective" else "O"
    begin, length = SHIFT_HOURS[code]
    if person.leave_day is not None and day == person.leave_day:
        length = min(length, 6)
        if code == "N":  # a leaver is not rostered on a final night: their last shift is a late
            begin = SHIFT_HOURS["L"][0]
    start = org.day_start(day) + begin * HOUR + rng.uniform(-0.4, 0.4) * HOUR
    return start, start + length * HOUR + rng.uniform(-0.3, 0.8) * HOUR


def near(rng: random.Random, lat: float, lon: float, km: float = 1.5) -> dict[str, float]:
    return {"lat": round(lat + rng.uniform(-km, km) / 111.0, 5),
            "lon": round(lon + rng.uniform(-km, km) / 67.0, 5)}


def lookup(rng: random.Random, person: Person, case_share_none: float = 0.0002) -> dict[str, Any]:
    case = rng.choice(person.cases)
    dataset, sensitivity = rng.choice(DATASETS)
    payload = {"case": case.ref, "record": rng.choice(case.records), "district": case.district,
               "dataset": dataset, "sensitivity": sensitivity}
    if rng.random() < case_share_none:
        payload["case"] = None  # recorded without its case reference (a benign false positive)
    return payload


def plan_day(org: Organisation, person: Person, day: int, travel: bool = True) -> Plan:
    """The person's ordinary activities for the shift starting on ``day`` (and an on-call night)."""
    plan: Plan = []
    rng = day_rng(org, person, day)
    when = shift(org, person, day)
    if when is not None:
        start, end = when
        span = end - start
        place_lat, place_lon = person.station.lat, person.station.lon
        if travel and person.pattern != "office" and rng.random() < 0.01:
            place_lat, place_lon, _ = rng.choice(TRAVEL_PLACES)
        here = near(rng, place_lat, place_lon)
        plan.append((start, "logon", dict(here)))
        plan.append((start + rng.uniform(60, 900), "unlock", near(rng, place_lat, place_lon)))
        n_look, n_msg, n_phone, n_mail, n_exp = RATES[person.pattern]
        extra = ROLE_EXTRA.get(person.role, {})
        n_look, n_exp = extra.get("lookups", n_look), extra.get("exports", n_exp)

        def t() -> float:
            return start + rng.uniform(0.02, 0.98) * span

        for _ in range(poisson(rng, n_look)):
            plan.append((t(), "lookup", lookup(rng, person)))
        for _ in range(poisson(rng, n_msg)):
            plan.append((t(), "teams", {"text": rng.choice(BENIGN_TEXT)}))
        for _ in range(poisson(rng, n_phone)):
            app = rng.choice(("uk.police.pronto", "com.microsoft.teams"))
            plan.append((t(), "phone_msg", {"app": app, "text": rng.choice(BENIGN_TEXT),
                                            **near(rng, place_lat, place_lon, 4)}))
        if rng.random() < 0.003:  # the odd message on an unsanctioned app (a benign false positive)
            plan.append((t(), "phone_msg", {"app": "com.whatsapp", "text": rng.choice(BENIGN_TEXT[-4:]),
                                            **near(rng, place_lat, place_lon, 4)}))
        for _ in range(poisson(rng, n_mail)):
            plan.append((t(), "email", _email(rng, person)))
        for _ in range(poisson(rng, 1.5)):
            plan.append((t(), "visit", {"url": rng.choice(SITES)}))
        for site, p_site in OCCASIONAL_SITES:
            if rng.random() < p_site:
                plan.append((t(), "visit", {"url": site}))
        _traits(org, person, day, rng, plan, t)
        month_end = person.role == "analyst" and org.month_end(day)
        for _ in range(poisson(rng, n_exp + (6 if month_end else 0))):
            name, sensitivity = rng.choice(REPORTS)
            mu = 6.3 if month_end and sensitivity == "low" else (5.5 if sensitivity == "low" else 4.2)
            count = int(rng.lognormvariate(mu, 0.7))
            payload: dict[str, Any] = {"dataset": name, "sensitivity": sensitivity, "count": max(1, count),
                                       "file": f"{name}.xlsx"}
            if rng.random() < 0.3:
                payload["min_group"] = rng.randint(50, 5000)
            plan.append((t(), "export", payload))
        plan.append((end, "logoff", near(rng, place_lat, place_lon)))
    if person.pattern == "detective" and person.employed(day) and (day + person.rota) % 12 == 0:
        # on call: woken in the night, works a job from home for an hour or so
        begin = org.day_start(day) + 24 * HOUR + rng.uniform(0.5, 4.0) * HOUR
        home = near(rng, person.home_lat, person.home_lon, 0.2)
        plan.append((begin, "logon", {**home, "host": person.laptop}))
        n = poisson(rng, 7)
        for _ in range(n):
            plan.append((begin + rng.uniform(60, 3000), "lookup", lookup(rng, person)))
        plan.append((begin + 3300 + rng.uniform(0, 1800), "logoff", home))
    return plan


def _traits(org: Organisation, person: Person, day: int, rng: random.Random, plan: Plan, t: Any) -> None:
    """The benign look-alikes' habits, on a day they work (see organisation.TRAITS)."""
    if not person.traits:
        return
    if "usb_weekly" in person.traits and org.weekday(day) == person.idx % 5:
        for _ in range(rng.randint(2, 6)):
            name, sensitivity = rng.choice(USB_FILES)
            plan.append((t(), "removable", {"file": name, "dataset": "team-documents", "sensitivity": sensitivity}))
    if "job_browser" in person.traits and rng.random() < 0.4:
        for _ in range(rng.randint(1, 3)):
            plan.append((t(), "visit", {"url": rng.choice(JOB_SITES)}))
    if "partner_sharer" in person.traits and rng.random() < 0.3:
        case = rng.choice(person.cases)
        to = rng.choice((f"reviewing.lawyer{rng.randrange(40)}@cps.gov.uk",
                         f"mash{rng.randrange(9)}@nottinghamcity.gov.uk"))
        dataset = "case-files" if "cps" in to else "safeguarding-referrals"
        plan.append((t(), "email", {"to": [to], "dataset": dataset, "sensitivity": "high", "count": rng.randint(1, 5),
                                    "file": f"{case.ref}-bundle.pdf", "attachments": rng.randint(1, 4)}))
    if "night_worker" in person.traits and org.weekday(day) in (1, 3):  # Tuesday and Thursday evenings, from home
        begin = org.day_start(day) + rng.uniform(20.0, 21.0) * HOUR
        home = near(rng, person.home_lat, person.home_lon, 0.2)
        plan.append((begin, "logon", {**home, "host": person.laptop}))
        for _ in range(rng.randint(3, 8)):
            plan.append((begin + rng.uniform(60, 7000), "lookup", lookup(rng, person)))
        if rng.random() < 0.3:
            name, sensitivity = rng.choice(REPORTS)
            report = {"dataset": name, "sensitivity": sensitivity, "count": rng.randint(20, 200),
                      "file": f"{name}.xlsx"}
            plan.append((begin + rng.uniform(600, 7000), "export", report))
        plan.append((begin + 7200 + rng.uniform(0, 1800), "logoff", home))


def _email(rng: random.Random, person: Person) -> dict[str, Any]:
    r = rng.random()
    if person.pattern == "detective" and r < 0.25:
        case = rng.choice(person.cases)
        return {"to": [f"reviewing.lawyer{rng.randrange(40)}@cps.gov.uk"], "dataset": "case-files",
                "sensitivity": "high", "count": rng.randint(1, 6), "file": f"{case.ref}-mg5.pdf", "attachments": 1}
    if person.team == "Public Protection" and r < 0.45:
        if rng.random() < 0.01:  # a referral to a school's safeguarding lead (Operation Encompass)
            area = "example" if rng.random() < 0.9 else "derbyshire.example"  # out of county: not registered
            return {"to": [f"dsl{rng.randrange(90)}@school{rng.randrange(90)}.{area}.sch.uk"],
                    "dataset": "safeguarding-referrals", "sensitivity": "special", "count": 1}
        return {"to": [f"mash{rng.randrange(9)}@nottinghamcity.gov.uk"], "dataset": "safeguarding-referrals",
                "sensitivity": "special", "count": rng.randint(1, 3)}
    if r < 0.85:
        return {"to": [f"user{rng.randrange(5000)}@{INTERNAL_DOMAIN}"]}
    return {"to": [f"enquiries@supplier{rng.randrange(30)}.example"]}
