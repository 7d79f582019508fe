"""Insider scenarios: malicious activities injected into a chosen member of staff's ordinary stream,
with the detectors expected to catch each (the ground truth in ``truth.jsonl``).

========================  ==================================================================  ========================
scenario                  what the insider does                                               expected detector(s)
========================  ==================================================================  ========================
bulk_export_third_party   downloads thousands of high-sensitivity records and uploads them    bulk_export,
                          to an outside agency                                                third_party_transfer
group_chat_personal_data  posts personal details and photos of ID documents to a WhatsApp     unsanctioned_messaging
                          group from a managed phone
leaver_still_active       keeps logging on and looking people up after the leave date         leaver_activity
neighbour_lookups         looks up people in their own postcode district and colleagues,      need_to_know
                          without a case
low_and_slow              e-mails a few dozen records a day to a personal webmail address,    third_party_transfer
                          always under the bulk thresholds
after_hours               starts working in the small hours, which they never did             unusual_volume
impossible_travel         the account logs on abroad minutes after logging on at the station  impossible_travel
small_cell_export         exports an "anonymised" aggregate whose smallest cell is a handful  small_cell_export
departing_thief           resigns; over the next weeks browses job sites, copies more and     person_risk
                          more files (and an archive) to USB, mails attachments to a
                          personal webmail address — each step small and within policy limits
after_hours_leaker        an office worker who never worked nights logs on from home at       person_risk
                          01:00-03:00 on 2-3 nights, copies a few files to USB and uploads to
                          a paste or file-sharing site (3-5 events a night)
masquerader               logs on to a colleague's assigned laptop, copies a keylogger (an    person_risk
                          .exe) there from USB after visiting its vendor's site; next day the
                          colleague's account logs on at the insider's laptop and sends a
                          mass e-mail (``accounts``: both)
========================  ==================================================================  ========================

``after_hours`` needs the baseline of unusual_volume to have warmed up (14 days by default), so it is
only injected when the period is long enough (:data:`AFTER_HOURS_FIRST_DAY` + 2 days).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .behaviour import HOUR, Plan, near, shift
from .organisation import INTERNAL_DOMAIN, Organisation, Person, colleague_record

SCENARIOS: dict[str, tuple[str, ...]] = {
    "bulk_export_third_party": ("bulk_export", "third_party_transfer"),
    "group_chat_personal_data": ("unsanctioned_messaging",),
    "leaver_still_active": ("leaver_activity",),
    "neighbour_lookups": ("need_to_know",),
    "low_and_slow": ("third_party_transfer",),
    "after_hours": ("unusual_volume",),
    "impossible_travel": ("impossible_travel",),
    "small_cell_export": ("small_cell_export",),
    "departing_thief": ("person_risk",),
    "after_hours_leaker": ("person_risk",),
    "masquerader": ("person_risk",),
}
"""Scenario -> the detectors expected to catch it."""

AFTER_HOURS_FIRST_DAY = 16
"""unusual_volume raises nothing in a user's first ``warmup_days`` (14): the first night used."""

ABROAD = ((52.3676, 4.9041), (48.8566, 2.3522), (6.5244, 3.3792), (55.7558, 37.6173), (40.4168, -3.7038))
DATE_OF_BIRTH = ("14/02/1979", "03/11/1985", "22/07/1990", "09/05/1968")
REGISTRATIONS = ("AB12 CDE", "NG19 XYZ", "FD68 KLM", "YR15 OPA")


@dataclass
class Scenario:
    name: str
    person: Person
    days: dict[int, Plan] = field(default_factory=dict)
    accounts: tuple[str, ...] = ()
    """Other accounts the insider used (their activity is part of the scenario, not a benign user's)."""
    """Day index -> the malicious activities planned for that day (times at or after its start)."""

    @property
    def detectors(self) -> tuple[str, ...]:
        return SCENARIOS[self.name]


def _working_day(org: Organisation, person: Person, rng: random.Random, first: int = 0,
                 last: int | None = None) -> int | None:
    last = org.days - 1 if last is None else last
    if last < first:
        return None
    begin = rng.randint(first, last)
    for k in range(last - first + 1):
        day = first + (begin - first + k) % (last - first + 1)
        if shift(org, person, day) is not None and (shift(org, person, day)[0] >= org.day_start(day)):
            return day
    return None


def _at_work(org: Organisation, person: Person, day: int, rng: random.Random, lo: float = 0.2,
             hi: float = 0.8) -> float:
    start, end = shift(org, person, day)  # type: ignore[misc]
    return start + rng.uniform(lo, hi) * (end - start)


def _bulk(org: Organisation, p: Person, rng: random.Random) -> dict[int, Plan] | None:
    day = _working_day(org, p, rng)
    if day is None:
        return None
    t = _at_work(org, p, day, rng, 0.2, 0.6)
    count = rng.choice((2500, 8000, 30000))
    dataset = rng.choice(("firearm-certificates", "pnc-persons"))
    agency = rng.choice(("directmail-agency", "leadgen-partners", "data-brokers"))
    return {day: [
        (t, "export", {"dataset": dataset, "sensitivity": "high", "count": count, "file": "holders.csv"}),
        (t + rng.uniform(300, 2400), "upload", {"url": f"upload.{agency}.example", "dataset": dataset,
                                                "sensitivity": "high", "count": count, "file": "holders.csv"}),
    ]}


def _group_chat(org: Organisation, p: Person, rng: random.Random) -> dict[int, Plan] | None:
    day = _working_day(org, p, rng)
    if day is None:
        return None
    group = f"wa-{p.team.lower().replace(' ', '-')}-{rng.randrange(100, 300)}"
    t = _at_work(org, p, day, rng, 0.1, 0.5)
    out: Plan = []
    for i in range(rng.randint(2, 4)):
        text = (f"Anyone know this one? {rng.choice(('John', 'Jane', 'Mo'))} Example, DOB "
                f"{rng.choice(DATE_OF_BIRTH)}, lives {rng.choice(p.station.districts)} 2RD, drives "
                f"{rng.choice(REGISTRATIONS)}")
        media = [("licence.jpg", "image/jpeg")] if i == 0 else ([("passport.jpg", "image/jpeg")] if i == 1 else [])
        out.append((t + i * rng.uniform(120, 1800), "group_msg", {
            "app": "com.whatsapp", "policy_set": "managed-phone", "group": group, "text": text, "media": media,
            "host": p.phone, **near(rng, p.station.lat, p.station.lon, 3)}))
    return {day: out}


def _leaver(org: Organisation, p: Person, rng: random.Random) -> dict[int, Plan] | None:
    if org.days < 4:
        return None
    leave = rng.randint(0, org.days - 3)
    p.leave_day = leave
    out: dict[int, Plan] = {}
    for day in range(leave + 1, min(org.days, leave + 1 + rng.randint(1, 4))):
        if org.weekday(day) >= 5 and rng.random() < 0.7:
            continue
        t = org.day_start(day) + rng.uniform(9, 20) * HOUR
        here = near(rng, p.home_lat, p.home_lon, 0.3)
        plan: Plan = [(t, "logon", {**here, "host": p.laptop})]
        for _ in range(rng.randint(2, 8)):
            case = rng.choice(p.cases)
            plan.append((t + rng.uniform(60, 3000), "lookup", {
                "case": case.ref, "record": rng.choice(case.records), "district": case.district,
                "dataset": "pnc-persons", "sensitivity": "high"}))
        plan.append((t + 3300, "logoff", here))
        out[day] = plan
    if not out:  # ensure at least one day of activity after leaving
        day = leave + 1
        t = org.day_start(day) + 10 * HOUR
        out[day] = [(t, "logon", {**near(rng, p.home_lat, p.home_lon, 0.3), "host": p.laptop})]
    return out


def _neighbours(org: Organisation, p: Person, rng: random.Random, everyone: list[Person]) -> dict[int, Plan] | None:
    out: dict[int, Plan] = {}
    for _ in range(rng.randint(1, 3)):
        day = _working_day(org, p, rng)
        if day is None:
            return None
        plan = out.setdefault(day, [])
        t = _at_work(org, p, day, rng)
        for i in range(rng.randint(2, 6)):
            plan.append((t + i * rng.uniform(30, 600), "lookup", {
                "case": None, "record": f"P-NB{p.idx:05d}-{rng.randrange(1000):03d}", "district": p.home_district,
                "dataset": "pnc-persons", "sensitivity": "high"}))
        other = rng.choice(everyone)
        plan.append((t + rng.uniform(60, 3600), "lookup", {
            "case": None, "record": colleague_record(other), "district": other.home_district,
            "dataset": "niche-nominals", "sensitivity": "medium"}))
    return out


def _low_and_slow(org: Organisation, p: Person, rng: random.Random) -> dict[int, Plan] | None:
    out: dict[int, Plan] = {}
    first = _working_day(org, p, rng, 0, max(0, org.days // 2))
    if first is None:
        return None
    webmail = rng.choice(("gmail.com", "outlook.com", "proton.me"))
    mailbox = f"{p.name.split()[0].lower()}{rng.randrange(10, 99)}@{webmail}"
    for day in range(first, min(org.days, first + rng.randint(5, 10))):
        if shift(org, p, day) is None:
            continue
        for _ in range(rng.randint(1, 2)):
            t = _at_work(org, p, day, rng)
            out.setdefault(day, []).append((t, "email", {
                "to": [mailbox], "dataset": "pnc-persons", "sensitivity": "high", "count": rng.randint(15, 60),
                "file": f"notes{rng.randrange(100)}.xlsx"}))
    return out or None


def _after_hours(org: Organisation, p: Person, rng: random.Random) -> dict[int, Plan] | None:
    if p.pattern != "office" or org.days < AFTER_HOURS_FIRST_DAY + 2:
        return None
    out: dict[int, Plan] = {}
    first = rng.randint(AFTER_HOURS_FIRST_DAY, org.days - 2)
    for day in range(first, min(org.days, first + rng.randint(2, 4))):
        t = org.day_start(day) + rng.uniform(1.0, 3.0) * HOUR
        here = near(rng, p.home_lat, p.home_lon, 0.2)
        plan: Plan = [(t, "logon", {**here, "host": p.laptop})]
        for _ in range(rng.randint(12, 25)):
            case = rng.choice(p.cases)
            plan.append((t + rng.uniform(30, 3000), "lookup", {
                "case": case.ref, "record": rng.choice(case.records), "district": case.district,
                "dataset": "intelligence-logs", "sensitivity": "high"}))
        plan.append((t + 3200, "logoff", here))
        out[day] = plan
    return out


def _travel(org: Organisation, p: Person, rng: random.Random) -> dict[int, Plan] | None:
    day = _working_day(org, p, rng)
    if day is None:
        return None
    start, _ = shift(org, p, day)  # type: ignore[misc]
    lat, lon = rng.choice(ABROAD)
    t = start + rng.uniform(300, 1500)
    return {day: [(t, "logon", {"lat": lat, "lon": lon, "host": f"UNMANAGED-{rng.randrange(10**6):06d}"}),
                  (t + rng.uniform(300, 900), "lookup", {
                      "case": None, "record": f"P-VIP-{rng.randrange(25):04d}", "district": None,
                      "dataset": "pnc-persons", "sensitivity": "high", "host": None})][: rng.choice((1, 1, 2))]}


def _small_cell(org: Organisation, p: Person, rng: random.Random) -> dict[int, Plan] | None:
    day = _working_day(org, p, rng)
    if day is None:
        return None
    t = _at_work(org, p, day, rng)
    dataset = rng.choice(("cell-site-footfall", "domestic-abuse-by-street", "stop-search-by-postcode"))
    return {day: [(t, "export", {"dataset": dataset, "sensitivity": "medium", "count": rng.randint(100, 900),
                                 "min_group": rng.randint(1, 9), "file": f"{dataset}.csv"})]}


WEBMAIL = ("gmail.com", "outlook.com", "proton.me", "yahoo.co.uk")
LEAK_SITES = ("pastebin.com", "wetransfer.com", "mega.nz", "anonfiles.com", "justpaste.it", "gofile.io")
THEFT_FILES = ("contacts.xlsx", "nominals-export.xlsx", "intel-summary.docx", "case-notes.pdf", "tasking.xlsx")
JOB_SITES = ("www.indeed.co.uk", "www.reed.co.uk", "www.totaljobs.com", "www.cv-library.co.uk")


def _departing(org: Organisation, p: Person, rng: random.Random) -> dict[int, Plan] | None:
    if org.days < 10:
        return None
    notice = rng.randint(2, max(2, org.days - 8))
    p.notice_day = notice
    p.leave_day = None  # leaves after the period: the staff directory has the notice date and the leave date
    mailbox = f"{p.name.split()[0].lower()}{rng.randrange(10, 99)}@{rng.choice(WEBMAIL)}"
    out: dict[int, Plan] = {}
    worked = [d for d in range(notice, min(org.days, notice + 21)) if shift(org, p, d) is not None]
    for k, day in enumerate(worked):
        plan = out.setdefault(day, [])
        stage = min(2, 3 * k // max(1, len(worked)))  # early, middle, late in the notice period
        if rng.random() < 0.6:
            for _ in range(rng.randint(1, 3)):
                plan.append((_at_work(org, p, day, rng), "visit", {"url": rng.choice(JOB_SITES)}))
        if rng.random() < (0.3, 0.5, 0.8)[stage]:
            t = _at_work(org, p, day, rng, 0.5, 0.9)
            for i in range(rng.randint(*((1, 3), (3, 6), (6, 14))[stage])):
                copy = {"file": rng.choice(THEFT_FILES), "dataset": "team-documents", "sensitivity": "medium"}
                plan.append((t + i * rng.uniform(5, 40), "removable", copy))
            if stage == 2 and rng.random() < 0.5:
                plan.append((t + 600, "removable", {"file": "archive.zip", "dataset": "team-documents",
                                                    "sensitivity": "medium"}))
        if rng.random() < (0.05, 0.15, 0.3)[stage]:
            plan.append((_at_work(org, p, day, rng), "email", {"to": [mailbox], "file": rng.choice(THEFT_FILES),
                                                               "attachments": rng.randint(1, 3)}))
    out = {d: plan for d, plan in out.items() if plan}
    return out or None


def _leaker(org: Organisation, p: Person, rng: random.Random) -> dict[int, Plan] | None:
    if p.pattern != "office" or org.days < 14:
        return None
    first = rng.randint(10, org.days - 3)
    site = rng.choice(LEAK_SITES)
    out: dict[int, Plan] = {}
    for day in range(first, min(org.days, first + rng.randint(2, 3))):
        t = org.day_start(day) + rng.uniform(1.0, 3.0) * HOUR
        here = near(rng, p.home_lat, p.home_lon, 0.2)
        plan: Plan = [(t, "logon", {**here, "host": p.laptop})]
        steps = rng.randint(2, 4)
        for i in range(steps):
            if i % 2 == 0:
                copy = {"file": rng.choice(THEFT_FILES), "dataset": "team-documents", "sensitivity": "medium"}
                plan.append((t + 120 + i * 300, "removable", copy))
            else:
                plan.append((t + 120 + i * 300, "upload", {"url": site, "file": rng.choice(THEFT_FILES)}))
        plan.append((t + 120 + steps * 300 + 60, "logoff", here))
        out[day] = plan
    return out


def _masquerader(org: Organisation, p: Person, rng: random.Random, everyone: list[Person]) -> dict[int, Plan] | None:
    colleagues = [q for q in everyone if q.team == p.team and q.idx != p.idx and q.leave_day is None
                  and q.start_day is None]
    if not colleagues or org.days < 5:
        return None
    victim = rng.choice(sorted(colleagues, key=lambda q: (q.role not in ("sergeant", "detective sergeant"), q.idx))[:3])
    day = _working_day(org, p, rng, 1, org.days - 2)
    if day is None:
        return None
    t = _at_work(org, p, day, rng, 0.3, 0.6)
    out: dict[int, Plan] = {
        day - 1: [(org.day_start(day - 1) + rng.uniform(19, 22) * HOUR, "visit",
                   {"url": rng.choice(("www.refog.com", "www.spyrix.com", "www.actualkeylogger.com"))})],
        day: [(t, "logon", {"host": victim.laptop}),
              (t + 300, "removable", {"file": "kl-setup.exe", "host": victim.laptop}),
              (t + 600, "logoff", {"host": victim.laptop})],
    }
    nxt = day + 1
    t2 = org.day_start(nxt) + rng.uniform(7.0, 9.0) * HOUR
    everyone_in = [f"user{rng.randrange(5000)}@{INTERNAL_DOMAIN}" for _ in range(60)]
    out[nxt] = [(t2 - 1800, "logon", {"host": victim.laptop}),  # back at the colleague's desk for the key logs
                (t2 - 1700, "removable", {"file": "kl-log.dat", "host": victim.laptop}),
                (t2, "logon", {"host": p.laptop, "as_user": victim.user_id}),
                (t2 + 240, "email", {"to": everyone_in, "host": p.laptop, "as_user": victim.user_id}),
                (t2 + 300, "logoff", {"host": p.laptop, "as_user": victim.user_id})]
    p.victim = victim.user_id
    return out


def plan_scenarios(org: Organisation, rate: float, seed: int) -> list[Scenario]:
    """Choose ``round(staff * rate)`` insiders (at least one when rate > 0) and plan their scenarios,
    cycling through every scenario so that each appears once there are enough insiders."""
    if rate <= 0 or not org.staff:
        return []
    rng = random.Random(f"custodes-insiders-{seed}")
    wanted = max(1, round(len(org.staff) * rate))
    names = list(SCENARIOS)
    rng.shuffle(names)
    pool = [p for p in org.staff if p.start_day is None and p.leave_day is None]
    rng.shuffle(pool)
    planners: dict[str, Callable[[Organisation, Person, random.Random], dict[int, Plan] | None]] = {
        "bulk_export_third_party": _bulk, "group_chat_personal_data": _group_chat, "leaver_still_active": _leaver,
        "neighbour_lookups": lambda o, p, r: _neighbours(o, p, r, org.staff), "low_and_slow": _low_and_slow,
        "after_hours": _after_hours, "impossible_travel": _travel, "small_cell_export": _small_cell,
        "departing_thief": _departing, "after_hours_leaker": _leaker,
        "masquerader": lambda o, p, r: _masquerader(o, p, r, org.staff),
    }
    out: list[Scenario] = []
    used: set[int] = set()
    for i in range(wanted):
        for k in range(len(names)):
            name = names[(i + k) % len(names)]
            person = next((p for p in pool if p.idx not in used and _suits(name, p)), None)
            if person is None:
                continue
            days = planners[name](org, person, rng)
            if days:
                used.add(person.idx)
                victim = person.victim
                if victim is not None:
                    used.update(q.idx for q in org.staff if q.user_id == victim)
                out.append(Scenario(name=name, person=person, days=days,
                                    accounts=(victim,) if victim is not None else ()))
                break
    return out


def _suits(name: str, person: Person) -> bool:
    if name in ("after_hours", "small_cell_export", "after_hours_leaker"):
        return person.pattern == "office" and not person.traits
    if name == "departing_thief":
        return "usb_weekly" not in person.traits
    return True


def truth_record(scenario: Scenario, event_ids: list[str], times: list[float]) -> dict[str, Any]:
    from .render import iso

    return {"scenario": scenario.name, "user_id": scenario.person.user_id, "accounts": list(scenario.accounts),
            "start": iso(min(times)) if times else None, "end": iso(max(times)) if times else None,
            "event_ids": event_ids, "detectors": list(scenario.detectors)}
