"""stream/detection/reference.py: the runtime's reference data and detector set."""

from __future__ import annotations

from stream.contract.settings import load
from stream.detection.reference import detectors_for


def _internal(settings):
    _, detectors = detectors_for(settings)
    (tpt,) = [d for d in detectors if d.id == "third_party_transfer"]
    return tpt.config.internal_domains


def test_org_domains_are_added_to_the_transfer_detectors_internal_domains(tmp_path):
    plain = load(env={"CUSTODES_DATA_DIR": str(tmp_path)})
    assert _internal(plain) == ("police.uk", "pnn.police.uk")
    site = load(env={"CUSTODES_DATA_DIR": str(tmp_path), "CUSTODES_ORG_DOMAINS": "Force.example,police.uk"})
    assert _internal(site) == ("police.uk", "pnn.police.uk", "force.example")


def test_the_shipped_directory_resolves_aliases(tmp_path):
    holder, _ = detectors_for(load(env={"CUSTODES_DATA_DIR": str(tmp_path)}))
    ref = holder.current
    assert ref.identities.ambiguous == 0
    assert sum(len(p.aliases) for p in ref.staff.values()) >= 5
    assert ref.identities.resolve("force\\AMORGAN") == ref.identities.resolve("amorgan@force") == "pc-1001"
    for person in ref.staff.values():
        for alias in person.aliases:
            assert ref.identities.resolve(alias) == person.user_id


def test_aliases_listed_for_two_people_are_reported_without_naming_them(tmp_path, caplog):
    from stream.detection.reference import load_dir

    (tmp_path / "staff.jsonl").write_text(
        '{"user_id": "a", "aliases": ["shared@force.example", "a@force.example"]}\n'
        '{"user_id": "b", "aliases": ["Shared@Force.example"]}\n')
    with caplog.at_level("WARNING", logger="custodes.reference"):
        ref = load_dir(tmp_path)
    assert ref.identities.resolve("shared@force.example") is None
    assert ref.identities.resolve("a@force.example") == "a"
    assert "1 alias(es)" in caplog.text and "shared@" not in caplog.text.lower()
