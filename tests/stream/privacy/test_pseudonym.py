import os
import stat

from pydantic import SecretStr

from stream.contract.settings import Settings
from stream.privacy.pseudonym import KEY_FILE, Pseudonymiser, load_key


def test_generated_key_is_kept_private_and_stable(tmp_path):
    settings = Settings(data_dir=tmp_path / "data")
    key = load_key(settings)
    path = tmp_path / "data" / KEY_FILE
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_key(settings) == key
    p = Pseudonymiser(key)
    assert p("u-1") == Pseudonymiser(load_key(settings))("u-1") != p("u-2")
    assert key.decode() not in repr(p)


def test_configured_key_wins_and_changes_pseudonyms(tmp_path):
    a = Pseudonymiser(load_key(Settings(data_dir=tmp_path, pseudonym_key=SecretStr("k" * 40))))
    b = Pseudonymiser(load_key(Settings(data_dir=tmp_path)))
    assert a("u-1") != b("u-1")
    assert not (tmp_path / KEY_FILE).exists() or b("u-1").startswith("P-")


def test_the_people_ranking_uses_the_detector_suites_risk_score():
    """The review app scores stored rows with detectors.risk (one formula, one set of knobs)."""
    import dataclasses

    from detectors.risk import RiskConfig, risk_score, squash, weighted
    from tests.stream.store.test_store import make_alert

    now = 1_770_100_000.0
    cfg = RiskConfig(half_life_days=1.0)
    alerts = [dataclasses.replace(make_alert(1), last_seen=now - 86400, count=3),
              dataclasses.replace(make_alert(2), last_seen=now, severity="critical", score=90.0)]
    from_rows = squash(sum(weighted(a.score, a.severity, a.count, a.last_seen, now, cfg) for a in alerts), cfg)
    assert from_rows == risk_score(alerts, now, cfg) > 0
