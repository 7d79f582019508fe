"""bench/replay.py's A/B mode: alternated rounds against another tree, alerts compared byte for byte."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "replay.py"


def _copy(tmp: Path) -> Path:
    tree = tmp / "other"
    shutil.copytree(ROOT, tree, ignore=shutil.ignore_patterns(".git", "__pycache__", "*.pyc", "node_modules"))
    return tree


def _against(tree: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), "--events", "1500", "--users", "5", "--against", str(tree),
                           "--rounds", "2", "--now", "1796302788", "--json", str(out)],
                          capture_output=True, text=True, timeout=600)


def test_the_same_code_gives_the_same_alerts_and_a_ratio_per_round(tmp_path):
    done = _against(_copy(tmp_path), tmp_path / "ab.json")
    assert done.returncode == 0, done.stderr[-2000:]
    got = json.loads((tmp_path / "ab.json").read_text())
    assert got["alerts_identical"] is True and got["rounds"] == 2
    assert len(got["this_to_other_cpu_min_median_max"].split(" / ")) == 3
    assert done.stdout.count(" alerts  sha256 ") == 4  # each tree once per round
    assert "round 1 this" in done.stdout and "round 2 other" in done.stdout.split("round 2 this")[0]  # alternated


def test_a_tree_whose_alerts_differ_stops_the_run(tmp_path):
    other = _copy(tmp_path)
    config = other / "config" / "custodes.toml"
    text = config.read_text()
    assert "medium = 1000, high = 200" in text
    config.write_text(text.replace("medium = 1000, high = 200", "medium = 1000, high = 20", 1))
    done = _against(other, tmp_path / "ab.json")
    assert done.returncode != 0
    assert "alerts differ" in done.stderr
    assert not (tmp_path / "ab.json").exists()
