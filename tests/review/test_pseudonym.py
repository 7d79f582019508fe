import os
import stat
from datetime import UTC, datetime, timedelta

from pydantic import SecretStr

from review.pseudonym import KEY_FILE, Pseudonymiser, load_key
from review.risk import risk_score
from stream.settings import Settings


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


def test_risk_decays_by_half_life():
    now = datetime(2026, 2, 2, tzinfo=UTC)
    assert risk_score([(80, now)], now, 86400) == 80
    assert risk_score([(80, now - timedelta(days=1)), (40, now - timedelta(days=2))], now, 86400) == 50
    assert risk_score([(50, now + timedelta(hours=1))], now, 86400) == 50
