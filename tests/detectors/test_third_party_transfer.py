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


# -- documents and mailboxes (issue 16): external shares, public links, forwarding rules --------------

def share(ts=T0, **fields):
    """A Drive / OneDrive share of a document as the readers emit it: no dataset, no records."""
    return ev("rv-4002", ts, fields.pop("kind", "share"), object_id=fields.pop("object_id", "drive:1"), **fields)


def forward(ts=T0, to=("someone@gmail.com",), **fields):
    return ev("rv-4002", ts, "mail_forward", email_to=to, action=fields.pop("action", "New-InboxRule"), **fields)


@pytest.mark.parametrize(("event", "key"), [
    (share(share_visibility="anyone"), "public"),
    (share(share_visibility="anyone", email_to=["x@gmail.com"]), "public"),      # the link is what matters
    (share(share_visibility="external", email_to=["Jane@Gmail.com"]), "external|gmail.com"),
    (share(email_to=["jane@gmail.com"]), "external|gmail.com"),                   # recipients say external
    (share(share_visibility="external"), "external|(unnamed)"),                   # source names nobody
    (share(recipient_party="Acme Couriers"), "external|party:{recipient_party}"),  # a named party is masked
    (share(share_visibility="external", email_to=["a@notts.police.uk", "b@evil.example"]), "external|evil.example"),
    (share(share_visibility="external", dataset="pnc-persons", record_count=10), None),   # names no one...
    (forward(), "forward|gmail.com"),
    (forward(to=("boss@notts.police.uk", "me@Outlook.com")), "forward|outlook.com"),
    (forward(action="Set-Mailbox"), "forward|gmail.com"),
])
def test_documents_and_mailboxes_fire(event, key):
    _, alerts = run(det(), [[event]])
    if key is None:  # ... but carries personal data: the personal-data alert, external and unnamed
        (a,) = alerts.values()
        assert a.facts["key"] == "external|(unnamed)" and "pnc-persons" not in a.title
        return
    assert sorted(a.facts["key"] for a in alerts.values()) == [key]
    for a in alerts.values():  # a named party only through its placeholder; the value under facts.masked
        assert "Acme" not in a.title + a.explanation + str({k: v for k, v in a.facts.items() if k != "masked"})


@pytest.mark.parametrize("event", [
    share(share_visibility="internal", email_to=["a@notts.police.uk"]),          # named colleagues
    share(share_visibility="domain"),                                             # the whole organisation
    share(email_to=["a@notts.police.uk"]),                                        # internal recipients
    share(share_visibility="external", email_to=["lawyer@cps.gov.uk"]),          # a partner in the register
    share(share_visibility="external", email_to=["case@homeoffice.gov.uk"]),     # any registered partner
    share(share_visibility="anyone", outcome="failure"),                          # refused by policy
    share(share_visibility="anyone", kind="export"),                              # not a share
    forward(to=("team@notts.police.uk",)),                                        # forwarding inside
    forward(to=("casework@cps.gov.uk",)),                                         # a party approved for "*"
    forward(to=()),                                                               # the source names no target
    forward(outcome="failure"),
    ev("rv-4002", T0, "message", email_to=["friend@gmail.com"]),                 # an ordinary e-mail
])
def test_benign_look_alikes_do_not_fire(event):
    assert not run(det(), [[event]])[1]


def test_a_forward_to_a_partner_not_approved_for_everything_fires_and_names_it():
    _, alerts = run(det(), [[forward(to=("casework@homeoffice.gov.uk",))]])
    (a,) = alerts.values()
    assert "Home Office" in a.explanation and "forwards or redirects mail to homeoffice.gov.uk" in a.explanation


def test_public_links_fold_per_window_and_scores_follow_config_and_sensitivity():
    links = [share(T0 + i * 60, object_id=f"drive:{i}", share_visibility="anyone") for i in range(5)]
    _, alerts = run(det(), [links])
    (a,) = alerts.values()
    assert a.count == 5 and a.severity == "high" and "anyone" in a.explanation
    assert "jane" not in a.explanation
    _, alerts = run(det(public_share_score=30.0), [[share(share_visibility="anyone")]])
    assert next(iter(alerts.values())).severity == "low"
    _, alerts = run(det(public_share_score=30.0), [[share(share_visibility="anyone", sensitivity="special")]])
    assert next(iter(alerts.values())).score == 54.0  # + 8 per sensitivity level


def test_external_shares_fold_per_domain_and_never_show_addresses():
    events = [share(T0, email_to=["jane.doe@gmail.com"]), share(T0 + 60, email_to=["john@gmail.com"]),
              share(T0 + 120, email_to=["x@yahoo.com"])]
    _, whole = run(det(), [events])
    _, single = run(det(), one_by_one(events))
    assert counts(whole) == [("external|gmail.com", 2), ("external|yahoo.com", 1)]
    assert {a.id: a.count for a in whole.values()} == {a.id: a.count for a in single.values()}
    for a in whole.values():
        assert "jane" not in a.title + a.explanation and a.severity == "medium"


def test_forwarding_is_high_and_internal_domains_come_from_config():
    _, alerts = run(det(), [[forward()]])
    assert next(iter(alerts.values())).severity == "high"
    assert not run(det(internal_domains=["police.uk", "gmail.com"]), [[forward()]])[1]
    assert not run(det(kinds=["export", "share"]), [[forward()]])[1]  # mail_forward not monitored
