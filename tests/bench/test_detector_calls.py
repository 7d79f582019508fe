"""bench/detector_calls.py: the engine calls of one replay, captured by the other tree and replayed
through both, alternated; final alerts and states compared by digest."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "detector_calls.py"


def _copy(tmp: Path) -> Path:
    tree = tmp / "other"
    shutil.copytree(ROOT, tree, ignore=shutil.ignore_patterns(".git", "__pycache__", "*.pyc", "node_modules"))
    return tree


def _run(tree: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), "--against", str(tree), "--events", "3000", "--users", "20",
                           "--rounds", "2", "--passes", "1", "--json", str(out)],
                          capture_output=True, text=True, timeout=600)


def test_the_same_code_gives_the_same_digest_and_a_ratio_per_round(tmp_path):
    done = _run(_copy(tmp_path), tmp_path / "calls.json")
    assert done.returncode == 0, done.stderr[-2000:]
    got = json.loads((tmp_path / "calls.json").read_text())
    assert got["rounds"] == 2 and len(got["cpu_s"]["this"]) == len(got["cpu_s"]["other"]) == 2
    assert len(got["this_to_other_cpu_min_median_max"].split(" / ")) == 3
    assert "round 1 this" in done.stdout and "round 2 other" in done.stdout.split("round 2 this")[0]  # alternated
    assert done.stdout.count(f"digest {got['digest'][:12]}") == 4


def test_a_tree_whose_alerts_differ_stops_the_run(tmp_path):
    other = _copy(tmp_path)
    config = other / "config" / "custodes.toml"
    text = config.read_text()
    assert "medium = 1000, high = 200" in text
    config.write_text(text.replace("medium = 1000, high = 200", "medium = 1000, high = 20", 1))
    done = _run(other, tmp_path / "calls.json")
    assert done.returncode != 0
    assert "differ" in done.stderr
    assert not (tmp_path / "calls.json").exists()
