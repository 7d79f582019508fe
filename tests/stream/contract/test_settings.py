import pytest
from pydantic import ValidationError

from stream.contract.settings import SettingsError, load


def test_defaults_come_from_the_shipped_config():
    s = load(env={})
    assert s.retention_days == 730
    assert s.topics.events == "custodes-audit-events"
    assert s.detectors["bulk_export"]["window_s"] == 3600


def test_environment_overrides_the_file_and_overrides_win(tmp_path):
    s = load(env={"CUSTODES_PARTITIONS": "8", "CUSTODES_BROKER": "k:9092"}, broker="other:1")
    assert s.partitions == 8 and s.broker == "other:1"


def test_secrets_are_never_printed():
    s = load(env={"CUSTODES_DATABASE_URL": "postgresql+psycopg://u:hunter2@db/custodes",
                  "CUSTODES_PSEUDONYM_KEY": "k3y-material", "CUSTODES_AUDIT_KEY": "audit-k3y-" + "x" * 30})
    text = repr(s) + str(s) + str(s.describe())
    assert "hunter2" not in text and "k3y-material" not in text and "audit-k3y" not in text
    assert s.describe()["audit_key"] == "********"
    assert s.db_url.endswith("u:hunter2@db/custodes")  # still usable by the code that needs it


def test_settings_are_frozen():
    s = load(env={})
    with pytest.raises(ValidationError):
        s.partitions = 2  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[custodes]\npartitions = 0\n", "partitions"),
        ("[custodes]\nunknown_knob = 1\n", "unknown_knob"),
        ("[nonsense]\n", "unknown section"),
        ("[limits]\nmax_bogus = 3\n", "limits"),
        ("[custodes\n", "custodes.toml"),
    ],
)
def test_bad_config_is_a_clear_error(tmp_path, text, message):
    path = tmp_path / "custodes.toml"
    path.write_text(text)
    with pytest.raises(SettingsError, match=message):
        load(path, env={})


def test_sqlite_under_the_data_dir_by_default(tmp_path):
    s = load(env={"CUSTODES_DATA_DIR": str(tmp_path)})
    assert s.db_url == f"sqlite:///{tmp_path.resolve()}/custodes.db"
