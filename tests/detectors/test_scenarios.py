"""The incidents Custodes exists for, as small event streams with the alerts they must raise."""

from .corpus_run import CORPUS, read_case, run_case


def alerts_of(name):
    return {a.detector: a for a in run_case(read_case(CORPUS / f"{name}.jsonl"))}


def test_firearm_holders_addresses_to_a_direct_mail_agency():
    got = alerts_of("firearms_mailing_agency")
    transfer = got["third_party_transfer"]
    assert transfer.subject == "st-3001" and transfer.severity == "critical"
    assert "30,000 records of firearm-certificates" in transfer.explanation
    assert transfer.facts["destination"] == "upload.directmail-agency.example"
    bulk = got["bulk_export"]
    assert bulk.facts["records"] == 60000 and bulk.count == 2 and bulk.severity == "critical"


def test_id_photo_and_personal_data_in_a_whatsapp_group_with_leavers():
    alerts = run_case(read_case(CORPUS / "whatsapp_group_id_photo.jsonl"))
    (msg,) = [a for a in alerts if a.detector == "unsanctioned_messaging"]
    assert msg.subject == "pc-1001" and msg.severity == "critical"
    assert "a date of birth and a postcode" in msg.explanation and "vehicle registration" in msg.explanation
    assert "an image posted to a group" in msg.explanation
    for secret in ("John", "14/02/1979", "NG7 2RD", "AB12 CDE", "licence.jpg"):
        assert secret not in msg.title + msg.explanation
    assert msg.evidence[0]["content"].startswith("Anyone know")  # evidence keeps it; the UI masks it
    leavers = [a for a in alerts if a.detector == "leaver_activity"]
    assert [(a.subject, a.title) for a in leavers] == [("pc-1050", "Leaver still in group wa-response-north-241")]


def test_anonymised_aggregate_with_small_cells():
    (a,) = alerts_of("telecom_anonymised_aggregate").values()
    assert a.detector == "small_cell_export" and a.facts["min_group_size"] == 3 and a.count == 1
    assert a.severity == "critical"


def test_looking_up_neighbours():
    (a,) = alerts_of("neighbour_lookup").values()
    assert (a.detector, a.facts["reason"], a.count) == ("need_to_know", "neighbour", 2)


def test_impossible_travel_nottingham_to_amsterdam():
    (a,) = alerts_of("impossible_travel").values()
    assert a.subject == "ds-2001" and 400 < a.facts["distance_km"] < 430  # Nottingham-Amsterdam, 20 min
    assert a.facts["speed_kmh"] > 1200
