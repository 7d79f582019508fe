"""The staff directory's alias index (detectors/identity.py): every alias of a person resolves to their
person id, case-insensitively, with down-level Windows names in both written forms; ambiguous aliases
resolve to nobody; the index follows updates of the directory."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from detectors.identity import build, normalise, other_forms
from detectors.reference import Reference, ReferenceError, load

STAFF = "\n".join([
    '{"user_id": "pc-1001", "aliases": ["A.Morgan@Force.example", "FORCE\\\\amorgan", "104270239127331552541",'
    ' "4412", "356938035643809"]}',
    '{"user_id": "pc-1002", "aliases": ["b.khan@force.example", "bkhan@FORCE"]}',
    '{"user_id": "pc-1003", "aliases": ["shared@force.example"]}',
    '{"user_id": "pc-1004", "aliases": ["shared@force.example", "pc-1001", "FORCE\\\\dlee"]}',
])


@pytest.fixture
def ref() -> Reference:
    return load({"staff.jsonl": STAFF})


@pytest.mark.parametrize(("given_id", "person"), [
    ("pc-1001", "pc-1001"),                      # a person id is itself
    ("PC-1001", "pc-1001"),                      # in any case
    ("a.morgan@force.example", "pc-1001"),       # UPN / e-mail, case-folded
    ("A.MORGAN@FORCE.EXAMPLE", "pc-1001"),
    (" a.morgan@force.example ", "pc-1001"),     # trimmed
    ("force\\AMORGAN", "pc-1001"),               # DOMAIN\sam as listed
    ("amorgan@force", "pc-1001"),                # ... and its sam@domain form
    ("104270239127331552541", "pc-1001"),        # Google profile id
    ("4412", "pc-1001"),                         # collar / staff number
    ("356938035643809", "pc-1001"),              # a managed phone's IMEI
    ("b.khan@force.example", "pc-1002"),
    ("FORCE\\bkhan", "pc-1002"),                 # listed as sam@DOMAIN (no dot): DOMAIN\sam too
    ("shared@force.example", None),              # listed for two people: nobody
    ("force\\dlee", "pc-1004"),
    ("dlee@force", "pc-1004"),
    ("amorgan", None),                           # a bare sam is not guessed
    ("amorgan@force.example", None),             # nor a UPN from a down-level name
    ("someone.else@gmail.com", None),
])
def test_resolution(ref, given_id, person):
    assert ref.identities.resolve(given_id) == person


def test_a_person_id_wins_over_another_persons_alias_and_clashes_are_counted(ref):
    assert ref.identities.resolve("pc-1001") == "pc-1001"  # pc-1004 lists it: ignored
    assert ref.identities.ambiguous == 1  # shared@force.example


def test_derived_forms_never_override_listed_ones_and_shared_derivations_are_dropped():
    class P:
        def __init__(self, user_id, aliases):
            self.user_id, self.aliases = user_id, tuple(aliases)

    index = build([P("a", ["DOM\\x"]), P("b", ["x@dom"]), P("c", ["DOM2\\y"]), P("d", ["y@dom2"]),
                   P("e", ["N\\z"]), P("f", ["M\\z"])])
    assert index.resolve("dom\\x") == "a" and index.resolve("x@dom") == "b"  # both listed: each its own
    assert index.resolve("z@n") == "e" and index.resolve("z@m") == "f"
    assert index.ambiguous == 0


def test_the_index_follows_updates_and_is_kept_when_other_kinds_change(ref):
    index = ref.identities
    ref2 = ref.apply("case", {"case_ref": "CASE-1", "assigned": ["pc-1001"]})
    assert ref2.identities is index  # not rebuilt for a case update
    ref3 = ref2.apply("staff", {"user_id": "pc-1001", "aliases": ["new.name@force.example"]})
    assert ref3.identities.resolve("new.name@force.example") == "pc-1001"
    assert ref3.identities.resolve("a.morgan@force.example") is None  # the old alias is gone
    ref4 = ref3.apply("staff", None, key="pc-1002")
    assert ref4.identities.resolve("b.khan@force.example") is None


def test_aliases_from_csv_and_bad_aliases():
    ref = load({"staff.csv": "user_id,team,aliases\npc-2001,CID,ann@force.example;FORCE\\ann;7001\n"})
    assert ref.staff["pc-2001"].aliases == ("ann@force.example", "FORCE\\ann", "7001")
    assert ref.identities.resolve("ann@force") == "pc-2001"
    with pytest.raises(ReferenceError, match="aliases"):
        load({"staff.jsonl": '{"user_id": "x", "aliases": {"upn": "x@y"}}'})


@given(st.text(max_size=30))
@example("@\\0")  # found by hypothesis: "@" as a down-level domain gave "0@@", which maps back to nothing
@example("force.local\\ann")  # a dotted domain has no "@" form (ann@force.local is a UPN)
def test_normal_forms_are_stable(value):
    key = normalise(value)
    assert normalise(key) == key
    for form in other_forms(key):
        assert key in other_forms(form)  # the two forms point at each other
