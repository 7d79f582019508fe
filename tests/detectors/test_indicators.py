"""Case tables for the behaviour indicators (detectors that emit signals, not alerts): what each
counts, when it signals, and how its baseline learns and expires. Batching invariance of every
indicator is in test_properties.py (every CATALOG detector, signals compared too)."""

from __future__ import annotations

import pytest

from detectors.departing_user import DepartingUser
from detectors.first_use import FirstUse
from detectors.host_ownership import HostOwnership
from detectors.media_volume import MediaVolume
from detectors.off_hours import PENDING, OffHours, pack, profile_of, unpack
from detectors.reference import Reference
from detectors.risky_destination import RiskyDestination
from detectors.signal import DAY, RETENTION_S

from .helpers import T0, ev, example_reference, run_all

REF = example_reference()
H = 3600.0
MONDAY_9 = T0  # Monday 2 March 2026, 09:00 UTC (= local, GMT)


def reasons(signals):
    return [s.reason for s in signals]


# -- off_hours ------------------------------------------------------------------------------------


def office_weeks(user="st-3001", weeks=3):
    """Weekday 09:00-16:00 activity for ``weeks`` weeks (15 active days)."""
    out = []
    for w in range(weeks):
        for d in range(5):
            for h in range(7):
                out.append(ev(user, MONDAY_9 + (w * 7 + d) * DAY + h * H, "record_access"))
    return out


def test_off_hours_a_single_night_logon_with_removable_media_counts():
    history = office_weeks()
    night = MONDAY_9 + 21 * DAY + 17 * H  # Tuesday 02:00 of week 4
    det = OffHours.configure({}, REF)
    _, _, signals = run_all(
        det, [history, [ev("st-3001", night, "logon"), ev("st-3001", night + 60, "removable_media")]]
    )
    assert [(s.reason, s.weight) for s in signals] == [("activity", 6.0), ("data", 14.0)]


def test_off_hours_usual_hours_and_the_learned_evening_give_nothing():
    history = office_weeks()
    evenings = [ev("st-3001", MONDAY_9 + (w * 7 + 1) * DAY + 12 * H, "record_access") for w in (3, 4, 5)]  # Tue 21:00
    det = OffHours.configure({}, REF)
    state, _, signals = run_all(det, [history + evenings])
    assert [s.ts for s in signals] == [e.ts for e in evenings[:2]]  # learned once seen on usual_weeks (2) weeks
    _, _, later = run_all(
        det,
        [[ev("st-3001", MONDAY_9 + 43 * DAY + 12 * H, "logon"), ev("st-3001", MONDAY_9 + 44 * DAY, "logon")]],
        state=state,
    )
    assert later == []  # Tuesday 21:00 (learned) and Wednesday 09:00


def test_off_hours_counts_weeks_per_hour_of_week_once_per_hour():
    det = OffHours.configure({}, REF)
    state, _, _ = run_all(det, [[ev("st-3001", MONDAY_9 + i * 60, "record_access") for i in range(30)]])

    profile = profile_of(state)
    assert profile[9] == 1 and sum(profile) == 1 and state["d"] == 1  # Monday 09:00: one hour, one day
    assert state["a"] == [9] and sum(unpack(state["p"])) == 0  # held unpacked until PENDING hours


def test_off_hours_no_history_person_is_compared_with_peers_or_working_hours():
    det = OffHours.configure({}, REF)
    night = MONDAY_9 + 17 * H  # Tuesday 02:00, no history
    _, _, signals = run_all(det, [[ev("st-3001", night, "logon")]])
    assert [(s.reason, s.weight) for s in signals] == [("activity", 3.0)]  # working_hours only: x no_baseline_factor
    peers = REF.apply("peer", {"group": "Firearms Licensing/licensing officer", "mean": [0.5] * 48, "std": [1] * 48})
    _, _, signals = run_all(OffHours.configure({}, peers), [[ev("st-3001", night, "logon")]])
    assert signals == []  # the job works nights
    quiet = REF.apply("peer", {"group": "Firearms Licensing/licensing officer", "mean": [0.0] * 48, "std": [0] * 48})
    _, _, signals = run_all(OffHours.configure({}, quiet), [[ev("st-3001", night, "logon")]])
    assert [(s.reason, s.weight) for s in signals] == [("activity", 6.0)]


def test_off_hours_one_activity_signal_per_session_gap():
    history = office_weeks()
    night = MONDAY_9 + 21 * DAY + 17 * H
    stream = [ev("st-3001", night + i * H, "logon") for i in range(6)]  # 02:00-07:00
    _, _, signals = run_all(OffHours.configure({}, REF), [history, stream])
    assert reasons(signals) == ["activity", "activity"]  # 02:00 and, 4 h later, 06:00


def test_off_hours_baseline_expires_only_with_the_retention_window():
    det = OffHours.configure({}, REF)
    state, _, _ = run_all(det, [office_weeks()])
    first = state["g"]
    # half the retention window later the profile moves to the older generation and still counts
    later = first + RETENTION_S / 2 + DAY
    state, _, signals = run_all(det, [[ev("st-3001", later - later % DAY + 9 * H, "logon")]], state=state)
    assert "q" in state and state["g"] > first and signals == []
    # a full retention window after the older generation began, the oldest history is gone
    state, _, _ = run_all(det, [[ev("st-3001", later + RETENTION_S / 2 + DAY, "logon")]], state=state)

    assert sum(unpack(state["q"])) <= 2  # only the two hours since: the office weeks expired


# -- first_use -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "event, reason, weight",
    [
        (dict(kind="removable_media", file_name="a.docx"), "removable_media", 10.0),
        (dict(kind="message", email_to=("x@newpartner.example",)), "email_domain", 2.0),
        (dict(kind="message", email_to=("x@homeoffice.gov.uk",)), None, 0),  # a registered sharing partner
        (dict(kind="message", email_to=("x@cps.police.uk",)), None, 0),  # internal domain
        (dict(kind="web_upload", url_domain="upload.example"), "upload_destination", 8.0),
        (dict(kind="logon", host_id="LT-9999"), "host", 6.0),
        (dict(kind="record_access", dataset="firearm-certificates"), "dataset", 2.0),
    ],
)
def test_first_use_after_learning(event, reason, weight):
    det = FirstUse.configure({}, REF)
    seen = ev("pc-1001", T0, "logon", host_id="LT-1")
    later = ev("pc-1001", T0 + 15 * DAY, **event)
    _, _, signals = run_all(det, [[seen], [later]])
    assert [(s.reason, s.weight) for s in signals] == ([(reason, weight)] if reason else [])
    again = ev("pc-1001", T0 + 16 * DAY, **event)
    assert run_all(det, [[seen], [later], [again]])[2] == signals  # the second use is not new


def test_first_use_nothing_during_learning_and_the_sketch_is_bounded():
    det = FirstUse.configure({}, REF)
    stream = [ev("pc-1001", T0 + i * 600, "logon", host_id=f"H-{i}") for i in range(300)]
    state, _, signals = run_all(det, [stream])
    assert signals == [] and len(state["b"]) == 88  # 512 bits in base64, however many hosts


# -- risky_destination -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "event, reason",
    [
        (dict(kind="other", url_domain="www.indeed.co.uk"), "job_search_visit"),
        (dict(kind="web_upload", url_domain="pastebin.com"), "paste_leak_upload"),
        (dict(kind="message", email_to=("me@gmail.com",), file_name="a.xlsx"), "personal_webmail_mail_attachment"),
        (dict(kind="message", email_to=("me@gmail.com",)), "personal_webmail_mail"),
        (dict(kind="other", url_domain="www.exploit-db.com"), "hacking_visit"),
        (dict(kind="other", url_domain="www.bbc.co.uk"), None),
    ],
)
def test_risky_destination_categories(event, reason):
    _, _, signals = run_all(RiskyDestination.configure({}, REF), [[ev("pc-1001", T0, **event)]])
    assert reasons(signals) == ([reason] if reason else [])


def test_risky_destination_once_per_reason_per_day():
    det = RiskyDestination.configure({}, REF)
    visits = [ev("pc-1001", T0 + i * H, "other", url_domain="www.reed.co.uk") for i in range(5)]
    visits.append(ev("pc-1001", T0 + DAY, "other", url_domain="www.indeed.com"))
    _, _, signals = run_all(det, [visits])
    assert [(s.reason, s.ts) for s in signals] == [("job_search_visit", T0), ("job_search_visit", T0 + DAY)]


def test_risky_destination_without_a_category_list_does_nothing():
    _, _, signals = run_all(
        RiskyDestination.configure({}, Reference()), [[ev("pc-1001", T0, "web_upload", url_domain="pastebin.com")]]
    )
    assert signals == []


# -- media_volume ----------------------------------------------------------------------------------


def usb(day, n, ext="docx", user="pc-1001"):
    return [ev(user, T0 + day * DAY + i * 60, "removable_media", file_name=f"f{i}.{ext}") for i in range(n)]


def test_media_volume_counts_a_day_against_the_usual_day():
    det = MediaVolume.configure({}, REF)
    assert run_all(det, [usb(0, 8)])[2] == []
    _, _, signals = run_all(det, [usb(0, 9)])
    assert [(s.reason, s.weight, s.ts) for s in signals] == [("removable_media_volume", 10.0, T0 + 8 * 60)]  # 3 x 3
    weekly = [e for w in range(4) for e in usb(7 * w, 5)]  # five files a week: usual day 5
    state, _, signals = run_all(det, [weekly])
    assert signals == [] and state["u"][0] == [5.0, 3]  # three closed use days (the 4th is today)
    _, _, signals = run_all(det, [usb(30, 14)], state=state)
    assert reasons(signals) == []  # 14 < 3 x 5
    _, _, signals = run_all(det, [usb(30, 15)], state=state)
    assert [(s.reason, s.weight) for s in signals] == [("removable_media_volume", 10.0)]


def test_media_volume_executables_and_archives_once_a_day():
    det = MediaVolume.configure({}, REF)
    stream = usb(0, 2, "exe") + usb(0, 1, "zip") + usb(1, 1, "exe")
    _, _, signals = run_all(det, [stream])
    assert reasons(signals) == ["executable_to_media", "archive_to_media", "executable_to_media"]


def test_media_volume_attachments_outside_only():
    det = MediaVolume.configure({}, REF)
    inside = [ev("pc-1001", T0 + i, "message", email_to=("a@x.police.uk",), file_name="a.pdf") for i in range(12)]
    outside = [ev("pc-1001", T0 + 100 + i, "message", email_to=("a@gmail.com",), file_name="a.pdf") for i in range(9)]
    _, _, signals = run_all(det, [inside + outside])
    assert reasons(signals) == ["attachments_volume"] and signals[0].ts == T0 + 108


# -- host_ownership --------------------------------------------------------------------------------


HOSTS = REF.apply("staff", {"user_id": "ds-2001", "team": "CID", "primary_hosts": ["LT-2001"]})


def test_host_ownership_logon_and_mail_on_someone_elses_host():
    det = HostOwnership.configure({}, HOSTS)
    stream = [
        ev("pc-1001", T0, "logon", host_id="LT-2001"),
        ev("pc-1001", T0 + 60, "logon", host_id="LT-2001"),
        ev("pc-1001", T0 + 120, "message", host_id="lt-2001", email_to=("a@b.police.uk",)),
        ev("pc-1001", T0 + 180, "logon", host_id="LT-1001"),
        ev("ds-2001", T0, "logon", host_id="LT-2001"),
    ]
    _, _, signals = run_all(det, [stream[:4]], subject="pc-1001")
    assert [(s.reason, s.weight) for s in signals] == [("others_host_logon", 20.0), ("others_host_mail", 20.0)]
    assert run_all(det, [stream[4:]], subject="ds-2001")[2] == []  # the owner


def test_host_ownership_a_return_visit_hours_later_counts_again():
    det = HostOwnership.configure({}, HOSTS)
    stream = [ev("pc-1001", T0 - 7 * H + k * H, "logon", host_id="LT-2001") for k in (0, 1, 6)]  # 02:00, 03:00, 08:00
    _, _, signals = run_all(det, [stream], subject="pc-1001")
    assert [s.ts for s in signals] == [T0 - 7 * H, T0 - H]


def test_host_ownership_learns_a_host_used_on_enough_days():
    det = HostOwnership.configure({"learned_days": 3}, HOSTS)
    stream = [ev("pc-1001", T0 + d * DAY, "logon", host_id="LT-2001") for d in range(5)]
    _, _, signals = run_all(det, [stream], subject="pc-1001")
    assert [s.ts for s in signals] == [T0, T0 + DAY]  # from the third day it is theirs too


# -- departing_user --------------------------------------------------------------------------------


DEPARTING = REF.apply(
    "staff", {"user_id": "pc-1001", "team": "Response North", "notice_date": "2026-03-10", "leave_date": "2026-04-07"}
)


@pytest.mark.parametrize(
    "day, kind, fires",
    [
        (-20, "removable_media", False),  # before the window (notice - 14 days = 24 Feb)
        (-5, "removable_media", True),
        (10, "web_upload", True),
        (10, "record_access", False),  # not data leaving
        (55, "web_upload", True),  # within 30 days after the leave date (7 April)
        (55, "export", False),  # report downloads are everyday work
        (70, "web_upload", False),
    ],
)
def test_departing_user_window(day, kind, fires):
    signals = run_all(DepartingUser.configure({}, DEPARTING), [[ev("pc-1001", T0 + 8 * DAY + day * DAY, kind)]])[2]
    assert reasons(signals) == (["data_out_departing"] if fires else [])


def test_departing_user_suspended_activity_once_a_day():
    ref = REF.apply("staff", {"user_id": "pc-1001", "suspended": "2026-03-03"})
    stream = [ev("pc-1001", T0 + i * H, "logon") for i in range(40)]
    signals = run_all(DepartingUser.configure({}, ref), [stream])[2]
    assert [s.ts for s in signals] == [T0 + 15 * H, T0 + 39 * H]  # from midnight 3 March, then the next day


def test_off_hours_packs_the_profile_once_per_pending_hours_and_reads_version_1_state():
    det = OffHours.configure({}, REF)
    hours = [ev("st-3001", MONDAY_9 + h * H, "record_access") for h in range(PENDING + 3)]
    state, _, _ = run_all(det, [hours[:PENDING - 1]])
    assert len(state["a"]) == PENDING - 1 and sum(unpack(state["p"])) == 0
    state, _, _ = run_all(det, [hours[PENDING - 1:]], state=state)
    assert sum(unpack(state["p"])) == PENDING + 3 and "a" not in state  # packed at the end of the call
    assert sum(profile_of(state)) == PENDING + 3
    import base64
    import zlib

    old = {"g": MONDAY_9 + 0.5, "p": base64.b64encode(zlib.compress(bytes(profile_of(state)), 9)).decode(),
           "d": 1, "h": None}  # version 1: zlib stream, float times
    state, _, _ = run_all(det, [[ev("st-3001", MONDAY_9 + 30 * H, "record_access")]], state=old)
    assert sum(profile_of(state)) == PENDING + 4 and state["g"] == MONDAY_9 and isinstance(state["g"], int)
    assert len(pack(bytes(168))) < len(base64.b64encode(zlib.compress(bytes(168), 9)))


# -- rarity among peers, peers' usual day, learned host owners (detectors/peer_profile.py) -------------


def peer_ref(common=(), media_day=None, group="Response North/constable"):
    import base64

    from detectors.peer_profile import bloom

    rec = {"group": group, "mean": [0.0] * 48, "std": [0.0] * 48, "members": 30}
    if common:
        bits, hashes = bloom(list(common))
        rec["common"], rec["common_hashes"] = base64.b64encode(bits).decode(), hashes
    if media_day is not None:
        rec["media_day"] = list(media_day)
    return REF.apply("peer", rec)


@pytest.mark.parametrize("common, factor, weight", [
    ((), 0.0, 2.0),                                        # no peer profile: full weight
    (("email_domain:other.example",), 0.0, 2.0),          # rare among the peers: full weight
    (("email_domain:supplier.example",), 0.0, None),      # new to the person, common among peers: nothing
    (("email_domain:supplier.example",), 0.25, 0.5),      # ...or a fraction of the weight
])
def test_first_use_weighs_rarity_among_peers(common, factor, weight):
    det = FirstUse.configure({"peer_common_factor": factor}, peer_ref(common))
    seen = ev("pc-1001", T0, "logon", host_id="LT-1")
    later = ev("pc-1001", T0 + 15 * DAY, "message", email_to=("a@supplier.example",))
    _, _, signals = run_all(det, [[seen], [later]])
    assert [s.weight for s in signals] == ([weight] if weight is not None else [])
    if weight is not None and common and factor:
        assert "common among their peers" in signals[0].note


def test_first_use_state_has_whole_seconds_and_reads_version_1():
    det = FirstUse.configure({}, REF)
    state, _, _ = run_all(det, [[ev("pc-1001", T0 + 0.75, "logon", host_id="LT-1")]])
    assert state["f"] == int(T0) and "g" not in state and isinstance(state["f"], int)
    old = {"f": T0 + 0.75, "g": T0 + 0.75, "b": state["b"]}  # version 1
    state, _, signals = run_all(det, [[ev("pc-1001", T0 + 15 * DAY, "logon", host_id="LT-1")]], state=old)
    assert state == {"f": int(T0), "b": old["b"]} and signals == []  # known host, nothing re-encoded


@pytest.mark.parametrize("media_day, own_days, files, fires", [
    (None, 0, 9, True),          # no peers, no history: default_day_count 3 -> limit 9
    ((6.0, 0.0), 0, 9, False),   # the peers' usual day is 6 files: limit 18
    ((6.0, 0.0), 0, 18, True),
    ((0.0, 0.0), 0, 9, True),    # peers who never use media say nothing: the default decides
    ((6.0, 0.0), 3, 11, False),  # own usual day 2 (limit 6), but under peer_ratio x the peers' 6
    ((6.0, 0.0), 3, 12, True),
    ((1.0, 0.0), 3, 6, True),    # own limit 6 is above the peers' 2
])
def test_media_volume_own_and_peer_usual_day(media_day, own_days, files, fires):
    ref = peer_ref(media_day=media_day) if media_day is not None else REF
    det = MediaVolume.configure({}, ref)
    history = [e for d in range(own_days) for e in usb(7 * d, 2)]
    _, _, signals = run_all(det, [history, usb(7 * own_days + 1, files)])
    assert ("removable_media_volume" in reasons(signals)) is fires


def test_host_ownership_learned_owner_without_an_asset_register():
    ref = REF.apply("staff", {"user_id": "ds-2001", "team": "CID"}).apply(
        "host", {"host": "LT-2001", "owner": "ds-2001", "days": 20, "share": 0.95})
    assert ref.host_owner("lt-2001") == "ds-2001"
    det = HostOwnership.configure({}, ref)
    _, _, signals = run_all(det, [[ev("pc-1001", T0, "logon", host_id="LT-2001")]], subject="pc-1001")
    assert reasons(signals) == ["others_host_logon"] and "learned" in signals[0].note
    assert run_all(det, [[ev("ds-2001", T0, "logon", host_id="LT-2001")]], subject="ds-2001")[2] == []
    # the asset register wins where both say
    both = ref.apply("staff", {"user_id": "pc-1001", "team": "Response North", "primary_hosts": ["LT-2001"]})
    assert both.host_owner("LT-2001") == "pc-1001"


def test_risky_destination_day_mask_and_version_1_state():
    det = RiskyDestination.configure({}, REF)
    visit = ev("pc-1001", T0, "other", url_domain="www.reed.co.uk")
    state, _, signals = run_all(det, [[visit]])
    assert reasons(signals) == ["job_search_visit"] and set(state) == {"d", "m"}
    old = {"d": int(T0 // DAY), "k": ["job_search_visit"]}
    _, _, signals = run_all(det, [[ev("pc-1001", T0 + 60, "other", url_domain="www.reed.co.uk")]], state=old)
    assert signals == []  # already signalled that day (version 1 list read)


@pytest.mark.parametrize("history, expected", [
    # working_hours alone: the hourly exports are one piece of evidence per session; the upload is another kind
    (False, ["activity", "data", "data", "activity", "data"]),
    # against the person's own history: each kind once per hour
    (True, ["activity", "data", "data", "data", "data", "activity", "data"]),
])
def test_off_hours_without_any_baseline_data_once_per_kind_per_session(history, expected):
    night = MONDAY_9 + 21 * DAY + 13 * H  # Monday 22:00 of week 4
    stream = [ev("st-3001", night + h * H + 60, "export") for h in range(3)]  # 22:01, 23:01, 00:01
    stream.append(ev("st-3001", night + 2 * H + 120, "web_upload"))  # 00:02
    stream.append(ev("st-3001", night + 5 * H, "export"))  # 03:00: over session_gap_s after 22:01, a new session
    _, _, signals = run_all(OffHours.configure({}, REF), [office_weeks() if history else [], stream])
    assert reasons(signals) == expected
    if not history:
        assert [s.weight for s in signals] == [3.0, 7.0, 7.0, 3.0, 7.0]  # x no_baseline_factor


def test_off_hours_a_quiet_hour_is_kept_as_its_number_and_a_closed_session_forgotten():
    det = OffHours.configure({}, REF)
    state, _, _ = run_all(det, [office_weeks()])
    assert isinstance(state["h"], int)  # nothing signalled in that hour: its number alone
    night = MONDAY_9 + 21 * DAY + 17 * H  # Tuesday 02:00
    state, _, signals = run_all(det, [[ev("st-3001", night, "logon")]], state=state)
    assert reasons(signals) == ["activity"] and state["h"][3] == night
    state, _, signals = run_all(det, [[ev("st-3001", night + 5 * H, "logon")]], state=state)  # 07:00, usual? no
    later = [ev("st-3001", MONDAY_9 + 22 * DAY + h * H, "record_access") for h in range(3)]  # Wednesday 09-11
    state, _, _ = run_all(det, [later], state=state)
    assert isinstance(state["h"], int)  # the session ended over session_gap_s ago: forgotten
