"""``custodes evaluate``: the detectors against the generator's ground truth, with minimum figures."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from detectors.alert import Alert
from stream.cli.synth import evaluate as evaluate_command
from stream.contract.settings import load
from stream.offline.evaluate import Insider, evaluate, report, score
from stream.synth.generate import generate

# Measured on this fixed organisation (200 staff x 14 days from 2026-03-18, seed 1, insider rate 0.05:
# 10 insiders, 68,590 events, with the benign look-alikes of issue 17) with the default config/custodes.toml:
#   overall: 10/10 insiders caught, precision 0.94 (17 TP / 1 FP alerts), 0 of 190 benign staff
#   flagged, median time to detect 0 s; person level: recall 1.0, 0 benign per 1,000 per 30 days.
#   per detector: every expected detector caught its insiders (recall 1.0, person_risk 3/3); precision
#   1.0 except impossible_travel 0.5 (the insider's jump back from abroad hours after the scenario).
#   (Before issue 17: precision 0.41, 15 benign flagged, 78.9 per 1,000; need_to_know 0.29,
#   unsanctioned_messaging 0.14.)
# The minimums below are under those figures: a regression in a detector (or the generator) fails.
MIN_RECALL = 0.9
MIN_PRECISION = 0.8
MAX_BENIGN_PER_1000 = 10.0
MAX_MEDIAN_TTD_S = 3600.0
MIN_DETECTOR_PRECISION = {"bulk_export": 0.9, "third_party_transfer": 0.9, "need_to_know": 0.9,
                          "impossible_travel": 0.5, "small_cell_export": 0.9, "leaver_activity": 0.9,
                          "unsanctioned_messaging": 0.9, "person_risk": 0.9}


@pytest.fixture(scope="module")
def organisation(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("org")
    generate(out, staff=200, days=14, seed=1, insider_rate=0.05)
    return out


@pytest.fixture(scope="module")
def figures(organisation: Path) -> dict:
    return evaluate(load(), organisation)


def test_minimum_figures_on_a_fixed_seed(figures: dict) -> None:
    o = figures["overall"]
    assert o["insiders"] == 10
    assert o["recall"] >= MIN_RECALL, report(figures)
    assert o["precision"] >= MIN_PRECISION, report(figures)
    assert o["benign_flagged_per_1000"] <= MAX_BENIGN_PER_1000, report(figures)
    assert o["median_time_to_detect_s"] <= MAX_MEDIAN_TTD_S, report(figures)
    for det, row in figures["detectors"].items():
        if row["insiders_expected"]:
            assert row["recall"] == 1.0, (det, report(figures))
        if det in MIN_DETECTOR_PRECISION:
            assert row["precision"] >= MIN_DETECTOR_PRECISION[det], (det, report(figures))
    people = figures["people"]
    assert people["recall"] == 1.0 and people["benign_flagged_per_1000_per_30_days"] <= 10.0, report(figures)
    assert figures["scenarios"]["departing_thief"]["caught"] == 1 and figures["scenarios"]["masquerader"]["caught"] == 1
    assert set(figures["lookalikes"]) >= {"night_worker", "usb_weekly", "job_browser", "partner_sharer", "new_starter"}
    rp = figures["replay"]
    assert rp["processed"] == rp["consumed"] > 60_000
    assert rp["expired"] == 0 and not rp["dead_lettered"]


def test_device_notifications_are_replayed_with_the_events(figures: dict, organisation: Path) -> None:
    # benign WhatsApp use is only in the device file (a person-risk signal now, not an alert): every
    # line of both files is consumed and processed
    manifest = orjson.loads((organisation / "manifest.json").read_bytes())
    assert manifest["device_notifications"] > 0
    assert figures["replay"]["consumed"] == manifest["events"] + manifest["device_notifications"]
    assert figures["replay"]["consumed"] == figures["replay"]["processed"]


def _alert(subject: str, detector: str, first: float, last: float | None = None) -> Alert:
    return Alert(id=f"{detector}-{subject}-{first}", detector=detector, detector_version=1, severity="high",
                 score=70.0, subject=subject, title="t", explanation="e", ts=first, first_seen=first,
                 last_seen=last if last is not None else first)


def test_scoring_rules() -> None:
    insiders = [Insider("bulk_export_third_party", "u1", 1000.0, 2000.0, ("e1",),
                        ("bulk_export", "third_party_transfer")),
                Insider("impossible_travel", "u2", 5000.0, 5000.0, ("e2",), ("impossible_travel",))]
    alerts = [
        _alert("u1", "bulk_export", 1100.0),            # TP, 100 s after the first malicious event
        _alert("u1", "third_party_transfer", 3000.0),   # the insider, but after the scenario: FP
        _alert("u1", "need_to_know", 500.0, 1500.0),     # overlaps the span: TP, not an expected detector
        _alert("u3", "bulk_export", 1200.0),            # a benign user: FP
    ]
    f = score(alerts, insiders, staff=12)
    o = f["overall"]
    assert (o["insiders_caught"], o["true_positives"], o["false_positives"]) == (1, 2, 2)
    assert o["recall"] == 0.5 and o["precision"] == 0.5
    assert o["benign_users_flagged"] == 1 and o["benign_flagged_per_1000"] == 100.0
    assert o["median_time_to_detect_s"] == 0.0  # need_to_know's alert began before the first malicious event
    d = f["detectors"]
    assert d["bulk_export"]["recall"] == 1.0 and d["bulk_export"]["precision"] == 0.5
    assert d["bulk_export"]["median_time_to_detect_s"] == 100.0
    assert d["third_party_transfer"]["recall"] == 0.0 and d["third_party_transfer"]["benign_users_flagged"] == 0
    assert d["impossible_travel"]["insiders_caught"] == 0 and d["impossible_travel"]["alerts"] == 0
    assert d["need_to_know"]["also_caught"] == 1 and d["need_to_know"]["insiders_expected"] == 0
    assert f["scenarios"] == {
        "bulk_export_third_party": {"insiders": 1, "caught": 1, "median_time_to_detect_s": 0.0},
        "impossible_travel": {"insiders": 1, "caught": 0, "median_time_to_detect_s": None}}


def test_person_level_scoring_accounts_and_lookalikes() -> None:
    insiders = [Insider("masquerader", "u1", 1000.0, 2000.0, ("e1",), ("person_risk",), ("u9",))]
    alerts = [_alert("u9", "person_risk", 1500.0),  # the colleague's account, used by the insider: TP
              _alert("u3", "bulk_export", 1200.0), _alert("u4", "need_to_know", 1300.0)]  # two benign staff
    f = score(alerts, insiders, staff=102, days=15.0, lookalikes={"usb_weekly": ["u3", "u5"], "night_worker": ["u9"]})
    p = f["people"]
    assert (p["caught"], p["benign_flagged"], p["recall"], p["precision"]) == (1, 2, 1.0, 0.3333)
    assert p["benign_flagged_per_1000_per_30_days"] == 40.0  # 2 of 100 benign in 15 days, per 30 days
    assert f["scenarios"]["masquerader"]["median_time_to_detect_s"] == 500.0
    assert f["lookalikes"] == {"night_worker": {"staff": 0, "flagged": 0}, "usb_weekly": {"staff": 2, "flagged": 1}}


def test_evaluate_command(tmp_path: Path) -> None:
    out = tmp_path / "org"
    generate(out, staff=30, days=3, seed=4, insider_rate=0.1)
    runner = CliRunner()
    result = runner.invoke(evaluate_command, [str(out)])
    assert result.exit_code == 0, result.output
    assert "overall" in result.output and "recall" in result.output
    result = runner.invoke(evaluate_command, [str(out), "--json"])
    assert result.exit_code == 0, result.output
    figures = orjson.loads(result.output)
    assert figures["overall"]["insiders"] == 3
    result = runner.invoke(evaluate_command, [str(tmp_path)])
    assert result.exit_code != 0 and "truth.jsonl" in result.output
