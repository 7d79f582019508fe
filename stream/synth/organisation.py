"""The synthetic organisation: stations, teams, roles, shift patterns, homes, cases, and the reference
files (``staff``, ``cases``, ``restricted``, ``sharing``, ``apps``) that describe it.

Everything is drawn from ``random.Random`` seeded by the caller, so one seed gives one organisation.
Memory is proportional to the number of staff (and their cases), never to the number of events.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import orjson


@dataclass(frozen=True)
class Station:
    code: str
    name: str
    lat: float
    lon: float
    districts: tuple[str, ...]
    """Postcode districts the station polices (where its cases' people live)."""


STATIONS = (
    Station("C", "Nottingham Central", 52.9536, -1.1505, ("NG1", "NG2", "NG3", "NG5", "NG6", "NG7", "NG8")),
    Station("M", "Mansfield", 53.1437, -1.1968, ("NG18", "NG19", "NG20", "NG21")),
    Station("N", "Newark", 53.0765, -0.8066, ("NG22", "NG23", "NG24")),
    Station("W", "Worksop", 53.3017, -1.1237, ("S80", "S81")),
)

HOME_DISTRICTS = (
    ("NG9", 52.925, -1.235), ("NG10", 52.900, -1.280), ("NG11", 52.890, -1.170), ("NG12", 52.910, -1.060),
    ("NG13", 52.950, -0.900), ("NG14", 53.010, -1.060), ("NG15", 53.040, -1.200), ("NG16", 53.010, -1.300),
    ("NG17", 53.100, -1.260), ("NG25", 53.080, -0.960), ("DE7", 52.970, -1.310), ("DE55", 53.100, -1.380),
    ("LE12", 52.800, -1.200), ("S43", 53.250, -1.330), ("DN22", 53.320, -0.940),
)
"""Where most staff live: outside the districts their station polices (lat/lon near the district)."""

ROLES = {
    # role: (user id prefix, shift pattern)
    "constable": ("pc", "response"),
    "sergeant": ("ps", "response"),
    "detective constable": ("dc", "detective"),
    "detective sergeant": ("ds", "detective"),
    "analyst": ("an", "office"),
    "records officer": ("ro", "office"),
    "staff officer": ("st", "office"),
}

TEAMS = (
    # (team name template, share of staff, roles with weights)
    ("Response {station}", 0.50, (("constable", 8), ("sergeant", 1))),
    ("CID {station}", 0.20, (("detective constable", 4), ("detective sergeant", 1))),
    ("Public Protection", 0.06, (("detective constable", 3), ("detective sergeant", 1))),
    ("Intelligence", 0.10, (("analyst", 1),)),
    ("Performance", 0.04, (("analyst", 1), ("staff officer", 1))),
    ("Records", 0.10, (("records officer", 1),)),
)

SHARING = (
    {"party": "Crown Prosecution Service", "domains": ["cps.gov.uk"], "names": ["CPS"], "datasets": ["*"]},
    {"party": "Home Office", "domains": ["homeoffice.gov.uk"], "names": ["HO"],
     "datasets": ["firearm-certificates", "pnc-persons"]},
    {"party": "Nottingham City Council", "domains": ["nottinghamcity.gov.uk"], "names": ["NCC"],
     "datasets": ["safeguarding-referrals"]},
    {"party": "Nottinghamshire schools (Operation Encompass)", "domains": ["example.sch.uk"],
     "names": ["Operation Encompass"], "datasets": ["safeguarding-referrals"]},
    {"party": "Print Partner Ltd", "domains": ["printpartner.example"], "names": ["Print Partner"],
     "datasets": ["community-newsletter-subscribers"]},
)

APPS = (
    {"policy_set": "managed-phone",
     "apps": ["uk.police.pronto", "com.microsoft.teams", "com.microsoft.office.outlook"]},
    {"policy_set": "managed-laptop",
     "apps": ["com.microsoft.teams", "com.microsoft.office.outlook", "uk.police.niche"]},
    {"policy_set": "byod", "apps": ["*"]},
)

INTERNAL_DOMAIN = "notts.police.uk"
NOTICE_DAYS = 28
"""A leaver resigns this many days before their leave date (the staff directory's notice_date)."""
TRAITS = {
    # trait: (share of eligible staff, eligible shift patterns)
    "night_worker": (0.08, ("office",)),
    "usb_weekly": (0.06, ("office", "detective", "response")),
    "job_browser": (0.05, ("office", "detective", "response")),
    "partner_sharer": (0.25, ("detective",)),
}
"""Benign look-alikes: office staff who regularly work evenings from home, people who copy files to a
USB stick every week, who browse job sites and stay, detectives who send case files with attachments
to registered partners (CPS, the council) every week."""
VIP_RECORDS = 25
CASES_PER_PERSON = (4, 9)
RECORDS_PER_CASE = (3, 12)


@dataclass(frozen=True)
class Case:
    ref: str
    district: str
    records: tuple[str, ...]
    assigned: tuple[str, ...]


@dataclass
class Person:
    idx: int
    user_id: str
    name: str
    team: str
    role: str
    pattern: str
    """``response`` (rotating earlies, lates and nights), ``detective`` (weekdays plus on-call
    nights from home) or ``office`` (weekdays)."""
    station: Station
    home_district: str
    home_lat: float
    home_lon: float
    laptop: str
    phone: str
    start_day: int | None = None
    """Index of the first day worked, when the person joins during the period."""
    leave_day: int | None = None
    """Index of the last day of employment, when the person leaves during the period."""
    rota: int = 0
    cases: list[Case] = field(default_factory=list)
    notice_day: int | None = None
    """Index of the day the person resigned (may be before the period), when they are leaving."""
    traits: tuple[str, ...] = ()
    victim: str | None = None
    """The colleague whose account a masquerader uses."""
    """Benign look-alike habits (:data:`TRAITS`): night_worker, usb_weekly, job_browser, partner_sharer."""

    def employed(self, day: int) -> bool:
        return (self.start_day is None or day >= self.start_day) and (self.leave_day is None or day <= self.leave_day)


@dataclass
class Organisation:
    seed: int
    start: date
    days: int
    staff: list[Person]
    cases: list[Case]

    def day_start(self, day: int) -> float:
        return datetime.combine(self.start + timedelta(days=day), datetime.min.time(), UTC).timestamp()

    @property
    def end(self) -> float:
        return self.day_start(self.days)

    def weekday(self, day: int) -> int:
        return (self.start + timedelta(days=day)).weekday()

    def month_end(self, day: int) -> bool:
        """The last two working days of a month (reporting deadlines)."""
        d = self.start + timedelta(days=day)
        if d.weekday() >= 5:
            return False
        later = [d + timedelta(days=k) for k in range(1, 6)]
        working_left = [x for x in later if x.month == d.month and x.weekday() < 5]
        return len(working_left) <= 1

    def date_of(self, day: int) -> str:
        return (self.start + timedelta(days=day)).isoformat()

    # -- reference files -------------------------------------------------------------------------

    def reference_records(self) -> dict[str, list[dict]]:
        staff = []
        for p in self.staff:
            rec = {"user_id": p.user_id, "team": p.team, "role": p.role, "home_postcode_area": p.home_district}
            if p.start_day is not None:
                rec["start_date"] = self.date_of(p.start_day)
            else:
                rec["start_date"] = (self.start - timedelta(days=400 + (p.idx * 37) % 4000)).isoformat()
            if p.leave_day is not None:
                rec["leave_date"] = self.date_of(p.leave_day)
            notice = p.notice_day if p.notice_day is not None else (
                p.leave_day - NOTICE_DAYS if p.leave_day is not None else None)
            if notice is not None:
                rec["notice_date"] = self.date_of(notice)
            rec["primary_hosts"] = [p.laptop]
            staff.append(rec)
        cases = [{"case_ref": c.ref, "assigned": list(c.assigned)} for c in self.cases]
        restricted = [{"record_id": f"P-VIP-{i:04d}", "flags": ["vip"]} for i in range(VIP_RECORDS)]
        restricted += [{"record_id": colleague_record(p), "flags": ["colleague"]} for p in self.staff]
        return {"staff": staff, "cases": cases, "restricted": restricted,
                "sharing": [dict(s) for s in SHARING], "apps": [dict(a) for a in APPS]}

    def write_reference(self, directory: Path) -> list[Path]:
        directory.mkdir(parents=True, exist_ok=True)
        names = {"staff": "staff.jsonl", "cases": "cases.jsonl", "restricted": "restricted.jsonl",
                 "sharing": "sharing.jsonl", "apps": "apps.jsonl"}
        paths = []
        for kind, records in self.reference_records().items():
            path = directory / names[kind]
            with path.open("wb") as f:
                for rec in records:
                    f.write(orjson.dumps(rec) + b"\n")
            paths.append(path)
        return paths


def colleague_record(person: Person) -> str:
    """The record id of a member of staff as a person on the records system (flagged ``colleague``)."""
    return f"P-COL-{person.idx:05d}"


FIRST = ("Alex", "Sam", "Jo", "Chris", "Pat", "Lee", "Kim", "Ali", "Robin", "Jamie", "Dani", "Morgan")
LAST = ("Smith", "Jones", "Taylor", "Brown", "Patel", "Khan", "Walker", "Wright", "Green", "Hall", "Wood", "Hughes")


def build(seed: int, staff: int, days: int, start: date, joiner_rate: float = 0.03,
          leaver_rate: float = 0.01, home_in_patch_rate: float = 0.02) -> Organisation:
    """An organisation of ``staff`` people. ``joiner_rate``/``leaver_rate``: share of staff who join or
    leave during the period; ``home_in_patch_rate``: share who live in a district their station polices
    (their ordinary case work then looks like neighbour look-ups: a source of false positives)."""
    rng = random.Random(f"custodes-org-{seed}")
    people: list[Person] = []
    team_weights = [t[1] for t in TEAMS]
    for i in range(staff):
        template, _, roles = rng.choices(TEAMS, weights=team_weights)[0]
        role = rng.choices([r for r, _ in roles], weights=[w for _, w in roles])[0]
        station = rng.choice(STATIONS) if "{station}" in template else STATIONS[0]
        prefix, pattern = ROLES[role]
        if rng.random() < home_in_patch_rate:
            district = rng.choice(station.districts)
            hlat, hlon = station.lat + rng.uniform(-0.03, 0.03), station.lon + rng.uniform(-0.04, 0.04)
        else:
            district, hlat, hlon = rng.choice(HOME_DISTRICTS)
            hlat, hlon = hlat + rng.uniform(-0.01, 0.01), hlon + rng.uniform(-0.015, 0.015)
        p = Person(
            idx=i, user_id=f"{prefix}-{10000 + i}", name=f"{rng.choice(FIRST)} {rng.choice(LAST)}",
            team=template.format(station=station.name.split()[-1]), role=role, pattern=pattern,
            station=station, home_district=district, home_lat=round(hlat, 4), home_lon=round(hlon, 4),
            laptop=f"LT-{100000 + i}", phone=f"35{rng.randrange(10**12, 10**13)}", rota=rng.randrange(10),
        )
        if days > 2 and rng.random() < joiner_rate:
            p.start_day = rng.randrange(1, days)
        elif days > 2 and rng.random() < leaver_rate:
            p.leave_day = rng.randrange(0, days - 1)
        people.append(p)
    traits_rng = random.Random(f"custodes-traits-{seed}")  # its own stream: the rest is unchanged
    for p in people:
        p.traits = tuple(t for t, (share, patterns) in TRAITS.items()
                         if p.pattern in patterns and traits_rng.random() < share)
    cases: list[Case] = []
    by_team: dict[str, list[Person]] = {}
    for p in people:
        by_team.setdefault(p.team, []).append(p)
    for team in sorted(by_team):
        members = by_team[team]
        station = members[0].station
        wanted = sum(rng.randint(*CASES_PER_PERSON) for _ in members) // 2 + 1
        for _ in range(wanted):
            n = len(cases)
            k = min(len(members), rng.choice((1, 2, 2, 3)))
            assigned = rng.sample(members, k)
            district = rng.choice(station.districts)
            records = tuple(f"P-{n:06d}-{r:02d}" for r in range(rng.randint(*RECORDS_PER_CASE)))
            case = Case(ref=f"CASE-{station.code}{n:06d}", district=district, records=records,
                        assigned=tuple(sorted(a.user_id for a in assigned)))
            cases.append(case)
            for a in assigned:
                a.cases.append(case)
    for p in people:  # everyone has at least one case to work on
        if not p.cases:
            n = len(cases)
            case = Case(ref=f"CASE-{p.station.code}{n:06d}", district=rng.choice(p.station.districts),
                        records=tuple(f"P-{n:06d}-{r:02d}" for r in range(4)), assigned=(p.user_id,))
            cases.append(case)
            p.cases.append(case)
    return Organisation(seed=seed, start=start, days=days, staff=people, cases=cases)
