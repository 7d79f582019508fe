"""``python -m tests.resilience.poison_worker worker``: the real worker (stream.cli) with one extra,
test-only detector, ``poison_pill``, that raises on any event whose id starts with ``poison``."""

from __future__ import annotations

from detectors import registry
from detectors.base import Detector


class PoisonPill(Detector):
    id = "poison_pill"
    summary = "Test only: raises on events whose id starts with 'poison'."

    def process(self, subject, events, state, clock):
        for ev in events:
            if ev.id.startswith("poison"):
                raise ValueError("poisoned event")
        return {"n": (state or {}).get("n", 0) + len(events)}, []


def install() -> None:
    """Wrap ``detectors.registry.build`` (in this process only) so every build adds the pill."""
    original = registry.build

    def build(*args, **kwargs):
        return [*original(*args, **kwargs), PoisonPill()]

    registry.build = build


if __name__ == "__main__":
    from stream.cli import main

    install()

    main()
