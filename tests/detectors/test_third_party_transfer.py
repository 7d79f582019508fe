import pytest

from detectors.third_party_transfer import ThirdPartyTransfer

from .helpers import T0, counts, ev, example_reference, one_by_one, run

REF = example_reference()


def det(**knobs):
    return ThirdPartyTransfer.configure(knobs, REF)


def export(ts=T0, **fields):
    base = {"kind": "export", "dataset": "firearm-certificates", "sensitivity": "high", "record_count": 30000}
    return ev("st-3001", ts, **{**base, **fields})


@pytest.mark.parametrize("fields, fires", [
    ({"url_domain": "upload.directmail.example"}, True),  # unknown party
    ({"destination_domain": "homeoffice.gov.uk"}, False),  # approved for this dataset
    ({"destination_domain": "files.homeoffice.gov.uk"}, False),  # sub-domain of an approved party
    ({"destination_domain": "homeoffice.gov.uk.evil.example"}, True),  # a look-alike is not a sub-domain
    ({"destination_domain": "printpartner.example"}, True),  # known party, not for this dataset
    ({"destination_domain": "cps.gov.uk", "dataset": "anything"}, False),  # "*" party
    ({"email_to": ["a@notts.police.uk", "b@pnn.police.uk"]}, False),  # internal
    ({"email_to": ["a@notts.police.uk", "Mail@DirectMail.example"]}, True),
    ({"recipient_party": "HO"}, False),  # named party, by its alternative name
    ({"recipient_party": "Direct Mail Ltd"}, True),
    ({"url_domain": "x.example", "dataset": None, "record_count": None}, False),  # no personal data
    ({"url_domain": "x.example", "dataset": None, "record_count": 5}, True),  # records, unknown dataset
    ({"url_domain": "x.example", "outcome": "failure"}, False),  # blocked: nothing left
    ({"url_domain": "x.example", "kind": "record_access"}, False),  # not a transfer channel
    ({"url_domain": "x.example", "kind": "web_upload"}, True),
])
def test_matches(fields, fires):
    _, alerts = run(det(), [[export(**fields)]])
    assert bool(alerts) is fires


def test_explanation_names_dataset_destination_and_register_never_the_addresses():
    _, alerts = run(det(), [[export(email_to=["jane.doe@directmail.example"], channel="email")]])
    (a,) = alerts.values()
    assert "30,000 records of firearm-certificates" in a.explanation
    assert "directmail.example" in a.title and "jane.doe" not in a.title + a.explanation
    assert "sharing register" in a.explanation
    assert a.severity in ("high", "critical") and a.facts["destination"] == "directmail.example"


def test_a_known_party_is_named_with_the_reason():
    _, alerts = run(det(), [[export(destination_domain="printpartner.example")]])
    (a,) = alerts.values()
    assert "Print Partner Ltd" in a.explanation and "does not approve for firearm-certificates" in a.explanation


def test_a_named_recipient_is_masked_in_title_explanation_and_facts():
    """The recipient party is masked evidence: the text refers to it by a placeholder only, the value
    (and the register parties of that name) are in facts["masked"]; the key shows the placeholder."""
    for party, known in (("Jane Doe Consulting", None), ("Print Partner", ["Print Partner Ltd"])):
        _, alerts = run(det(), [[export(recipient_party=party)]])
        (a,) = alerts.values()
        shown = a.title + a.explanation + str({k: v for k, v in a.facts.items() if k != "masked"})
        assert party.lower() not in shown.lower() and (known is None or known[0] not in shown)
        assert "{recipient_party}" in a.title and "the party {recipient_party}" in a.explanation
        assert a.facts["masked"] == {"recipient_party": party, **({"known_parties": known} if known else {})}
        assert a.facts["key"] == "firearm-certificates|party:{recipient_party}"


def test_min_records_edge_for_events_without_a_dataset():
    d = det(min_records=10)
    assert not run(d, [[export(url_domain="x.example", dataset=None, record_count=9)]])[1]
    assert run(d, [[export(url_domain="x.example", dataset=None, record_count=10)]])[1]


def test_suppression_folds_per_dataset_and_destination():
    day = 86400
    events = [export(T0, url_domain="a.example"), export(T0 + 10, url_domain="a.example"),
              export(T0 + 20, url_domain="b.example"), export(T0 + day - 1, url_domain="a.example"),
              export(T0 + day, url_domain="a.example"),
              export(T0 + 30, url_domain="a.example", dataset="pnc-persons")]
    _, whole = run(det(), [events])
    _, split = run(det(), one_by_one(events))
    assert counts(whole) == [
        ("firearm-certificates|domain:a.example", 1), ("firearm-certificates|domain:a.example", 3),
        ("firearm-certificates|domain:b.example", 1), ("pnc-persons|domain:a.example", 1)]
    assert {a.id: a.count for a in whole.values()} == {a.id: a.count for a in split.values()}


def test_out_of_order_within_grace_folds_and_state_expires():
    d = det()
    state, alerts = run(d, [[export(T0 + 3000, url_domain="a.example")]])
    state, more = run(d, [[export(T0, url_domain="a.example")]], state)  # 50 min late: folded
    assert [a.count for a in more.values()] == [2] and set(more) == set(alerts)
    assert more[next(iter(more))].first_seen == T0
    state, _ = run(d, [[ev("st-3001", T0 + 86400 + 3600 + 3001)]], state)
    assert state is None  # the window closed and nothing else is kept


def test_no_reference_data_means_every_external_destination_is_unapproved():
    _, alerts = run(ThirdPartyTransfer(), [[export(destination_domain="homeoffice.gov.uk")]])
    assert len(alerts) == 1
