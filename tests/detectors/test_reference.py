import pytest

from detectors.postcode import postcode_area, same_area
from detectors.reference import (
    Reference,
    ReferenceError,
    ReferenceHolder,
    decode_update,
    kind_of,
    load,
    parse_records,
)

from .helpers import example_reference


def test_example_files_load_and_answer_queries():
    ref = example_reference()
    assert ref.person("pc-1050").leave_date == "2025-11-30"
    assert ref.cases["CASE-0001"] == {"pc-1001", "ds-2001"}
    assert ref.restricted["P-VIP-0001"] == {"vip"}
    assert [p.party for p in ref.parties_for_domain("Upload.HomeOffice.gov.uk.")] == ["Home Office"]
    assert ref.parties_for_domain("homeoffice.gov.uk.evil.example") == ()
    assert [p.party for p in ref.parties_named("cps")] == ["Crown Prosecution Service"]
    assert ref.sanctioned("managed-phone", "com.whatsapp") is False
    assert ref.sanctioned("managed-phone", "uk.police.pronto") is True
    assert ref.sanctioned("byod", "com.whatsapp") is True
    assert ref.sanctioned("unregistered", "com.whatsapp") is None


def test_updates_return_new_snapshots_and_the_holder_swaps():
    holder = ReferenceHolder(example_reference())
    before = holder.current
    holder.apply("staff", {"user_id": "pc-1001", "team": "CID", "leave_date": "2026-03-01"})
    assert holder.current is not before
    assert before.person("pc-1001").leave_date is None  # the old snapshot is untouched
    assert holder.current.person("pc-1001").left_at == pytest.approx(1772409600.0)  # 2026-03-02 00:00Z
    holder.apply("staff", None, key="pc-1001")  # a tombstone
    assert holder.current.person("pc-1001") is None
    holder.apply("sharing", {"party": "Home Office", "deleted": True})
    assert holder.current.parties_for_domain("homeoffice.gov.uk") == ()
    assert holder.current.version == before.version + 3


def test_leave_date_time_is_the_exact_moment():
    ref = Reference().apply("staff", {"user_id": "u", "leave_date": "2026-01-15T17:30:00+00:00"})
    assert ref.person("u").left_at == pytest.approx(1768498200.0)


@pytest.mark.parametrize("record, problem", [
    ({"team": "x"}, "user_id is required"),
    ({"user_id": "u", "leave_date": "last week"}, "ISO 8601"),
    ({"user_id": "u", "leave_date": "2026-01-15T17:30:00"}, "timezone"),
    ({"user_id": "u", "home_postcode_area": "Narnia"}, "postcode"),
    ({"user_id": ["u"]}, "must be a string"),
])
def test_bad_staff_records_are_refused_naming_the_field(record, problem):
    with pytest.raises(ReferenceError, match=problem):
        Reference().apply("staff", record)


def test_csv_and_jsonl_parse_to_the_same_records():
    csv_text = "party,domains,names,datasets\nAcme,acme.example;acme.co.uk,Acme Ltd,a;b\nGone,,,,\n"
    jsonl = ('{"party": "Acme", "domains": ["acme.example", "acme.co.uk"], "names": ["Acme Ltd"], '
             '"datasets": ["a", "b"]}\n')
    from_csv = load({"sharing.csv": csv_text.replace("Gone,,,,\n", "")})
    from_jsonl = load({"sharing.jsonl": jsonl})
    assert from_csv.sharing == from_jsonl.sharing
    deleted = list(parse_records("user_id,deleted\nu1,true\n", "csv"))
    assert deleted == [{"user_id": "u1", "deleted": True}]


def test_file_names_give_the_kind():
    assert kind_of("config/reference/cases.jsonl") == ("case", "jsonl")
    assert kind_of("apps.csv") == ("app", "csv")
    with pytest.raises(ReferenceError):
        kind_of("people.jsonl")
    with pytest.raises(ReferenceError, match="line 2"):
        load({"staff.jsonl": '{"user_id": "a"}\n{not json\n'})


def test_kafka_messages_decode_to_updates_and_tombstones():
    assert decode_update("case", b"C1", b'{"case_ref": "C1", "assigned": ["u"]}')[1] == {
        "case_ref": "C1", "assigned": ["u"]}
    assert decode_update("case", b"C1", None) == ("case", None, "C1")


@pytest.mark.parametrize("a, b, same", [
    ("NG7", "ng7 2rd", True), ("NG7", "NG8", False), ("NG", "NG11 7AB", True), ("B", "BS1", False),
    ("SW1A 1AA", "SW1A", True), (None, "NG7", False), ("nonsense", "NG7", False),
])
def test_postcode_areas_compare_at_the_coarser_granularity(a, b, same):
    assert same_area(a, b) is same


def test_postcode_area_normalises():
    assert postcode_area(" ng7  2rd ") == "NG7"
    assert postcode_area("12345") is None
