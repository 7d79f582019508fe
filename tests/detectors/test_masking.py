"""detectors.masking: placeholders in alert text, masked facts and the scrub of literal masked values."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from detectors.masking import MASKED_FACTS, fill, masked, placeholder, scrub, secrets_of, shown_alert, token

secret_text = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="[]{}"), min_size=3, max_size=40
).filter(lambda s: s.strip() == s and s.lower() not in "[masked]")
names = st.sampled_from(["case_ref", "recipient_party", "home_area", "file_name"])
marked_text = secret_text.map(lambda s: f"§{s}§")  # never part of a key, a token or the prose


@given(
    st.dictionaries(names, secret_text.map(lambda s: f"§{s}§"), min_size=1),
    st.text(st.characters(blacklist_characters="§{"), max_size=60),
)
def test_fill_shows_a_token_until_revealed_and_the_value_after(values, prose):
    text = prose + " " + " and ".join(placeholder(k) for k in values)
    hidden = fill(text, values, reveal=False)
    assert all(token(name) in hidden for name in values) and "§" not in hidden
    shown = fill(text, values, reveal=True)
    assert all(v in shown for v in values.values()) and not any(placeholder(k) in shown for k in values)


def test_fill_leaves_unknown_braces_and_does_not_refill_a_revealed_value():
    values = {"recipient_party": "{case_ref}", "case_ref": "C-1"}
    assert fill("to {recipient_party} ({other})", values, reveal=True) == "to {case_ref} ({other})"
    assert fill("to {recipient_party} ({other})", values, reveal=False) == "to [masked recipient party] ({other})"
    assert fill("plain", values, reveal=False) == "plain" and fill("{x}", None, reveal=False) == "{x}"


def test_masked_leaves_out_none_and_checks_names():
    assert masked(case_ref=None) == {} and masked(case_ref="C-1") == {MASKED_FACTS: {"case_ref": "C-1"}}
    with pytest.raises(ValueError):
        placeholder("Not A Name")


@given(st.lists(secret_text, min_size=1, max_size=5), st.text(max_size=80))
def test_scrub_leaves_no_secret_in_text(secrets, prose):
    text = prose + secrets[0].upper() + prose + secrets[-1]
    out = scrub(text, sorted(set(secrets), key=lambda s: (-len(s), s)))
    assert not [s for s in secrets if s.lower() in out.replace("[masked]", "\x00").lower()]


@given(marked_text, marked_text, marked_text)
def test_shown_alert_without_reveal_holds_no_masked_value(party, content, file_name):
    alert = {
        "subject": "u-1",
        "title": f"to {placeholder('recipient_party')}",
        "explanation": f"legacy text naming {file_name}",
        "facts": {"dataset": "pnc", **masked(recipient_party=party), "note": [f"x {content} y"]},
        "evidence": [{"id": "e1", "ts": 1.0, "content": content, "file_name": file_name, "dataset": "pnc"}],
    }
    hidden = orjson.dumps(shown_alert(alert, reveal=False)).decode()
    visible = orjson.dumps(shown_alert(alert, reveal=True)).decode()
    for value in (party, content, file_name):
        encoded = orjson.dumps(value).decode()[1:-1]
        assert encoded not in hidden.replace("[masked]", "\x00").replace("[masked recipient party]", "\x00")
        assert encoded in visible
    assert secrets_of(alert["facts"], alert["evidence"])  # what the scrub searches for
