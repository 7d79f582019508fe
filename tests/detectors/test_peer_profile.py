"""detectors/peer_profile.py: what a peer group commonly uses, its usual media day, and learned host
owners, from events of many people."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.first_use import contains
from detectors.peer_profile import PeerProfiler, bloom
from detectors.reference import Reference, ReferenceError
from detectors.signal import DAY

from .helpers import T0, ev, example_reference

REF = example_reference()
GROUP = "Response North/constable"


def common_of(extras, group=GROUP):
    e = extras.get(group, {})
    return base64.b64decode(e["common"]) if "common" in e else b"", e.get("common_hashes", 0)


@pytest.mark.parametrize("users, members, common", [
    (2, 10, False),   # under common_members (3)
    (3, 10, True),
    (3, 40, False),   # under common_share x members (0.1 x 40 = 4)
    (4, 40, True),
])
def test_a_key_is_common_when_enough_distinct_members_used_it(users, members, common):
    p = PeerProfiler({GROUP: members}, REF)
    for i in range(users):
        for d in range(3):  # the same member again does not count twice
            p.add(ev(f"pc-{i}", T0 + d * DAY, "message", email_to=("a@supplier.example",)), GROUP)
    bits, hashes = common_of(p.peer_extras())
    assert contains(bits, "email_domain:supplier.example", hashes) is common


def test_media_day_is_the_mean_over_members_days_of_use():
    p = PeerProfiler({GROUP: 10}, REF)
    for i, n in ((0, 2), (1, 6)):
        for k in range(n):
            p.add(ev(f"pc-{i}", T0 + k, "removable_media", file_name="a.docx"), GROUP)
    p.add(ev("pc-0", T0 + DAY, "removable_media", file_name="b.docx"), GROUP)
    outside = [ev("pc-2", T0 + 5, "message", email_to=("x@gmail.com",), attachment_count=3)]
    inside = [ev("pc-2", T0 + 6, "message", email_to=("x@a.police.uk",), attachment_count=9)]
    for e in outside + inside:
        p.add(e, GROUP)
    assert p.peer_extras()[GROUP]["media_day"] == [3.0, 3.0]  # (2 + 6 + 1) / 3 days; 3 outside / 1 day


@pytest.mark.parametrize("days, others, owned", [
    ({"pc-1": 10}, {}, True),
    ({"pc-1": 4}, {}, False),                 # under host_min_days (5)
    ({"pc-1": 10}, {"pc-2": 2}, True),        # 10 of 12 person-days: over host_share (0.8)
    ({"pc-1": 10}, {"pc-2": 5}, False),       # a shared machine
])
def test_a_host_is_someones_when_they_dominate_its_logons(days, others, owned):
    p = PeerProfiler({}, REF)
    for user, n in {**days, **others}.items():
        for d in range(n):
            for _ in range(2):  # twice a day counts once
                p.add(ev(user, T0 + d * DAY, "logon", host_id="LT-7"), None)
    recs = p.host_records()
    assert (recs == [{"host": "lt-7", "owner": "pc-1", "days": 10, "share": round(10 / (10 + sum(others.values())), 3)}]
            ) is owned
    if recs:
        assert Reference().apply("host", recs[0]).host_owner("LT-7") == "pc-1"


@settings(max_examples=50, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=300, unique=True))
def test_bloom_never_forgets_a_key(keys):
    bits, hashes = bloom(keys)
    assert len(bits) * 8 >= 16 * len(keys)
    assert all(contains(bits, k, hashes) for k in keys)


def test_peer_record_fields_are_checked():
    base = {"group": GROUP, "mean": [0.0] * 48, "std": [0.0] * 48}
    bits, hashes = bloom(["dataset:x"])
    ref = Reference().apply("peer", {**base, "common": base64.b64encode(bits).decode(), "common_hashes": hashes,
                                     "media_day": [1.5, 0.0]})
    peer = ref.peers[GROUP]
    assert contains(peer.common, "dataset:x", peer.common_hashes) and peer.media_day == (1.5, 0.0)
    for bad in ({"common": "not base64!"}, {"common": "AAAA", "common_hashes": 0}, {"media_day": [-1]}):
        with pytest.raises(ReferenceError):
            Reference().apply("peer", {**base, **bad})
    with pytest.raises(ReferenceError):
        Reference().apply("host", {"host": "LT-1"})  # no owner


def test_a_key_common_across_the_whole_staff_is_common_in_every_group():
    groups = {f"Team {g}/constable": 10 for g in range(10)}  # 100 staff: org threshold max(3, 10) = 10
    p = PeerProfiler(groups, REF)
    for g, group in enumerate(groups):
        for i in range(2):  # two in each group: under every group's threshold (3)
            p.add(ev(f"pc-{g}-{i}", T0, "message", email_to=("a@supplier.example",)), group)
        p.add(ev(f"pc-{g}-0", T0, "message", email_to=(f"a@only{g // 5}.example",)), group)  # 5 users each
    extras = p.peer_extras()
    for group in groups:
        bits, hashes = common_of(extras, group)
        assert contains(bits, "email_domain:supplier.example", hashes)  # 20 of 100 staff
        assert not contains(bits, "email_domain:only0.example", hashes)  # 5 of 100
