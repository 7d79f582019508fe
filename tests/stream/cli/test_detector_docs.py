"""docs/detectors.md's generated parts (catalogue, knobs) match the detectors' code."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from click.testing import CliRunner

from detectors.base import Detector, DetectorConfig
from detectors.registry import CATALOG
from stream.cli import main
from stream.cli.detector_docs import field_docs, missing, render

DOCS = Path(__file__).resolve().parents[3] / "docs" / "detectors.md"


def test_docs_are_generated_from_the_code():
    text = DOCS.read_text(encoding="utf-8")
    assert render(text) == text, "run: custodes detectors --docs docs/detectors.md"
    assert missing(text) == []


def test_every_detector_and_knob_is_in_the_docs():
    text = DOCS.read_text(encoding="utf-8")
    for cls in CATALOG:
        assert cls.summary.replace("|", "\\|") in text
        for f in dataclasses.fields(cls.Config):
            assert f"| `{f.name}` |" in text, (cls.id, f.name)


def test_every_knob_says_what_it_means():
    from stream.cli.detector_docs import SHARED

    bare = [(cls.id, f.name) for cls in CATALOG for f in dataclasses.fields(cls.Config)
            if f.name not in field_docs(cls.Config) and f.name not in SHARED]
    assert bare == []


@dataclasses.dataclass(frozen=True)
class _Config(DetectorConfig):
    window_s: int = 60
    """How far back."""
    kinds: tuple[str, ...] = ("export",)


class _Probe(Detector):
    id = "probe"
    summary = "A | probe."
    Config = _Config

    def process(self, *args, **kwargs):  # pragma: no cover - never run
        raise NotImplementedError


def test_a_changed_default_or_summary_changes_the_docs():
    text = "x\n<!-- generated: catalogue -->\nold\n<!-- end generated -->\n<!-- generated: knobs probe -->\n" \
           "<!-- end generated -->\ny\n"
    out = render(text, [_Probe])
    assert out.startswith("x\n") and out.endswith("y\n")
    assert "| [probe](#knobs-probe) | A \\| probe. | `window_s`, `kinds` |" in out
    assert "| `window_s` | `60` | How far back. |" in out
    assert '| `kinds` | `["export"]` | The activities (`custodes.activity`) this detector looks at. |' in out
    assert "| `enabled` | `true` | Run this detector" in out  # the shared meaning where a field has none
    assert "old" not in out
    assert missing(out, [_Probe]) == []
    assert missing("nothing", [_Probe]) == ["probe"]


def test_field_docs_reads_attribute_docstrings_of_bases_too():
    assert field_docs(_Config) == {"window_s": "How far back."}


def test_the_command_reports_up_to_date(tmp_path):
    copy = tmp_path / "detectors.md"
    copy.write_text(DOCS.read_text(encoding="utf-8").replace("| `window_s` |", "| `stale` |", 1))
    out = CliRunner().invoke(main, ["detectors", "--docs", str(copy)])
    assert out.exit_code == 0 and "rewritten" in out.output
    assert copy.read_text(encoding="utf-8") == DOCS.read_text(encoding="utf-8")
    again = CliRunner().invoke(main, ["detectors", "--docs", str(copy)])
    assert "up to date" in again.output
