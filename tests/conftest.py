"""Root conftest. The service fixtures (kafka_broker, topic_prefix, postgres_server, postgres_url,
database_url) live in tests/harness; see tests/harness/__init__.py."""

# Import the harness under the same name pytest gives tests/harness/test_*.py: ``harness`` while tests/ has
# no __init__.py, ``tests.harness`` once it has one.
_HARNESS = f"{__package__}.harness" if __package__ else "harness"
pytest_plugins = [f"{_HARNESS}.services", f"{_HARNESS}.kafka", f"{_HARNESS}.postgres", f"{_HARNESS}.browser"]

# Property tests assert behaviour, never speed: no per-example deadline (a loaded CI machine would
# otherwise fail them at random), and a fixed database directory under the pytest cache.
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile("custodes", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("custodes")
