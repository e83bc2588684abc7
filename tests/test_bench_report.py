"""bench/REPORT.md and its plots from a small results dict: the files exist, the plots are PNGs, and the
numbers in the markdown are the dict's."""

import json
import subprocess
import sys

import pytest

from pipeline.bench import batching_gas_model, batching_targets
from pipeline.bench_report import PLOTS, REPORT, update_readme, write_report

PNG = b"\x89PNG\r\n\x1a\n"


def _spread(m):
    return {"median": m, "min": m * 0.9, "max": m * 1.2, "runs": 3}


def _batching_row(k, gas, action, prove):
    return {"k": k, "logrows": 16 + (k >= 64), "verifier": "split-vk", "prove_s_per_inference": prove,
            "peak_rss_mb": 900.0 + k, "pk_bytes": 300 * 2**20 * (1 + (k >= 64)), "gas_per_inference": gas,
            "action_gas_per_inference": action}


def results():
    batching = [_batching_row(1, 617265, 678729, 7.61), _batching_row(64, 14477, 24766, 0.42),
                {"k": 128, "error": "build failed: it would need ~31.2 GB of memory", "peak_rss_mb": 20000.0}]
    timings = {k: _spread(v) for k, v in (("prove_zkinfer_library", 7.123), ("prove_ezkl_library", 6.987),
                                          ("prove_zkinfer_cli", 9.5), ("prove_ezkl_script", 8.25))}
    return {
        "machine": {"platform": "Linux-test", "python": "3.11.9", "cpus": 2, "ram_gb": 23.4, "processor": "x86_64",
                    "zkinfer": "0.1.0"},
        "ezkl_version": "23.0.5",
        "overhead": [{"model": "credit_risk", "logrows": 16, "zkinfer_prove_s": 7.123, "ezkl_prove_s": 6.987,
                      "prove_ratio": 1.019, "zkinfer_verify_s": 0.0812, "ezkl_verify_s": 0.0777,
                      "cli_prove_ratio": 1.152, "timings": timings, "batch": {"ratio": 1.031},
                      "cli_startup": {"zkinfer_help_s": _spread(0.613), "python_import_ezkl_s": _spread(0.241)},
                      "profile": {"total_s": 7.2, "inside_ezkl_s": 7.0, "outside_ezkl_s": 0.2,
                                  "ezkl_calls_s": {"prove": 6.7, "mock": 0.2, "gen_witness": 0.1},
                                  "top_outside_ezkl": [{"function": "prove.py:170(_prove)", "own_s": 0.05,
                                                        "calls": 1}]}}],
        "batching": batching, "batching_targets": batching_targets(batching),
        "throughput": {"circuit": "credit_risk", "k": 64, "workers": 2, "inferences_per_hour": 8642,
                       "target_per_hour": 15000,
                       "configurations": [{"k": 64, "workers": 2, "inferences": 256, "elapsed_s": 106.6,
                                           "inferences_per_hour": 8642},
                                          {"k": 256, "workers": 2, "inferences": 1024, "skipped": "2 provers: no"}]},
        "estimates": [{"model": "credit_risk",
                       "predicted": {"logrows": 16, "pk_bytes": 340 * 2**20, "peak_bytes": 2**30, "prove_s": 5.25,
                                     "verify_gas": 799675},
                       "measured": {"logrows": 16, "pk_bytes": 310 * 2**20, "peak_bytes": 2**29, "prove_s": 7.61,
                                    "verify_gas": 617265},
                       "ratios": {"prove_s": {"ratio": 0.69, "within_2x": True},
                                  "peak_bytes": {"ratio": 2.0, "within_2x": True},
                                  "verify_gas": {"ratio": 1.296, "within_2x": True}}}],
    }


def test_report_from_results(tmp_path):
    pytest.importorskip("matplotlib")
    r = results()
    path = write_report(r, tmp_path)
    assert path == tmp_path / REPORT
    for name in PLOTS.values():
        assert (tmp_path / name).read_bytes()[:8] == PNG, name
        assert f"({name})" in path.read_text()
    md = path.read_text()
    for text in ("7.123", "6.987", "1.019", "0.0812", "1.152", "0.613 s", "0.241 s",  # overhead
                 "617,265", "678,729", "14,477", "24,766", "0.4200", "split-vk", "964",  # batching
                 "The curve stops at K = 128: build failed: it would need ~31.2 GB",
                 "8,642", "2 provers: no", "K = 64, 2 worker(s)",  # throughput
                 "799,675 / 617,265", "5.25 / 7.61",  # estimates
                 "| CPUs | 2 |", "23.4 GB", "23.0.5", "3.11.9"):
        assert text in md, text
    assert "met for 1 of 1 model(s)" in md
    assert "gas_per_inference: 14,477 against 5,000: not met" in md


def test_report_only_regenerates_from_the_file(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps({"machine": {"cpus": 2}, "ezkl_version": "23.0.5"}))
    r = subprocess.run([sys.executable, "-m", "pipeline.cli", "bench", "--out", tmp_path / "results.json",
                        "--report-only", "--readme", tmp_path / "no-readme.md"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    md = (tmp_path / REPORT).read_text()
    assert "Not measured (`zkinfer bench --section overhead`)" in md and "23.0.5" in md
    r = subprocess.run([sys.executable, "-m", "pipeline.cli", "bench", "--out", tmp_path / "none.json",
                        "--report-only", "--readme", tmp_path / "no-readme.md"], capture_output=True, text=True)
    assert r.returncode == 2 and "results file not found" in r.stderr


README = """# A project

Prose stays.

<!-- bench:batching -->
| K | hand-typed |
|---|---|
| 1 | 999,999 |
<!-- /bench:batching -->

More prose.

<!-- bench:overhead -->
old overhead
<!-- /bench:overhead -->

<!-- bench:throughput -->
kept: no throughput in these results
<!-- /bench:throughput -->
"""


def test_readme_blocks_are_regenerated_from_the_results(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(README)
    r = results()
    del r["throughput"]
    assert sorted(update_readme(r, readme)) == ["batching", "overhead"]
    text = readme.read_text()
    assert "999,999" not in text and "old overhead" not in text
    for kept in ("# A project", "Prose stays.", "More prose.", "kept: no throughput in these results"):
        assert kept in text, kept
    batching = text.split("<!-- bench:batching -->")[1].split("<!-- /bench:batching -->")[0]
    assert "617,265" in batching and "24,766" in batching and "The curve stops at K = 128" in batching
    assert "7.123" in text.split("<!-- bench:overhead -->")[1]
    assert update_readme(r, readme) == ["batching", "overhead"] and readme.read_text() == text  # idempotent

    readme.write_text("<!-- bench:batchnig -->\n<!-- /bench:batchnig -->\n")
    with pytest.raises(ValueError, match="batchnig"):
        update_readme(r, readme)


def test_report_only_regenerates_the_readme_through_the_cli(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps(results()))
    readme = tmp_path / "README.md"
    readme.write_text(README)
    r = subprocess.run([sys.executable, "-m", "pipeline.cli", "bench", "--out", tmp_path / "results.json",
                        "--report-only", "--readme", readme], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "8,642" in readme.read_text().split("<!-- bench:throughput -->")[1]
    readme.write_text("<!-- bench:nope -->\n<!-- /bench:nope -->\n")
    r = subprocess.run([sys.executable, "-m", "pipeline.cli", "bench", "--out", tmp_path / "results.json",
                        "--report-only", "--readme", readme], capture_output=True, text=True)
    assert r.returncode == 2 and "unknown benchmark block 'nope'" in r.stderr and "Traceback" not in r.stderr


def _gas_row(k, verify, submit):
    return {"k": k, "verify_proof_gas": verify, "submit_gas": submit}


def test_the_gas_model_is_the_line_through_the_two_largest_k():
    # verification 800k + 2k x K, the gate 30k + 9k x K on top
    rows = [_gas_row(k, 800_000 + 2_000 * k, 830_000 + 11_000 * k) for k in (1, 64, 128)]
    rows.append({"k": 256, "error": "build failed"})
    g = batching_gas_model(rows)
    assert g["from_k"] == [64, 128]
    assert (g["verify_fixed_gas"], g["verify_per_borrower_gas"], g["gate_per_borrower_gas"]) == (800_000, 2_000, 9_000)
    assert g["action_per_borrower_floor_gas"] == 11_000
    assert g["k_for_verify_target"] == 267  # 800k / (5,000 - 2,000) = 266.7
    assert g["k_for_action_target"] == 830  # 830k / (12,000 - 11,000)
    rows = [_gas_row(k, 800_000 + 2_000 * k, 830_000 + 13_000 * k) for k in (64, 128)]
    assert batching_gas_model(rows)["k_for_action_target"] is None  # 13k per borrower: no K reaches 12k
    assert batching_gas_model(rows[:1]) == {}


def test_an_excess_over_bare_ezkl_is_explained_from_the_profile(tmp_path):
    r = results()
    row = r["overhead"][0]
    row.update(zkinfer_prove_s=7.6, ezkl_prove_s=6.9, prove_ratio=1.101)
    md = write_report(r, tmp_path).read_text()
    assert "Over: credit_risk." in md
    assert "credit_risk's excess (0.700 s a proof at the medians): ezkl's mock prover takes 0.200 s" in md
    assert "(2.8%)" in md


def test_targets_are_judged_at_k_256_even_when_the_curve_goes_further():
    rows = [_batching_row(1, 617_000, 660_000, 11.7), _batching_row(64, 14_478, 24_737, 0.67),
            _batching_row(256, 5_239, 15_117, 0.70), _batching_row(288, 4_897, 14_761, 0.71)]
    t = batching_targets(rows)
    assert t["k"] == 256 and t["gas_per_inference"] == {"measured": 5239, "target": 5000, "met": False}
    assert batching_targets(rows[:2])["k"] == 64  # the curve stopped short of 256: its largest K
