"""The batching and throughput sections' machinery at small size: a proof timed in a process of its own (with
that process's peak memory), a curve that stops with the reason when a K cannot be built, predicted/measured
ratios. Speeds are not asserted."""

import sys

import pytest

from pipeline import bench


def test_a_k_that_cannot_be_built_ends_the_curve_with_the_reason(monkeypatch, tmp_path):
    failing = [sys.executable, "-c", "import sys; sys.stderr.write('error: it would need ~31 GB of memory\\n'); "
               "sys.exit(1)"]
    monkeypatch.setattr(bench, "batching_build_command", lambda circuits_dir, k: failing)
    monkeypatch.setenv(bench.BATCHING_KS_ENV, "256,512")
    rows = bench.bench_batching(tmp_path)
    assert rows == [{"k": 256, "error": "build failed: error: it would need ~31 GB of memory",
                     "peak_rss_mb": rows[0]["peak_rss_mb"]}]
    assert bench.batching_targets(rows) == {}
    t = bench.bench_throughput(tmp_path)
    assert t["inferences_per_hour"] is None and t["configurations"][0]["error"].startswith("build failed")


def test_k_lists_and_ratios(monkeypatch):
    monkeypatch.delenv(bench.BATCHING_KS_ENV, raising=False)
    assert bench._ks(bench.BATCHING_KS_ENV, bench.BATCHING_KS) == (1, 4, 16, 64, 128, 256, 288)
    monkeypatch.setenv(bench.BATCHING_KS_ENV, "1, 4")
    assert bench._ks(bench.BATCHING_KS_ENV, bench.BATCHING_KS) == (1, 4)
    r = bench.estimate_ratios({"logrows": 16, "prove_s": 9.0, "verify_gas": 800_000},
                              {"logrows": 16, "prove_s": 3.0, "verify_gas": None})
    assert r == {"logrows": {"ratio": 1.0, "within_2x": True}, "prove_s": {"ratio": 3.0, "within_2x": False}}


@pytest.mark.slow
def test_prove_in_a_process_of_its_own(tiny_circuit, tmp_path):
    seconds, peak_mb = bench.prove_in_process(tiny_circuit, 1, tmp_path / "p.json")
    assert len(seconds) == 1 and seconds[0] > 0 and peak_mb > 50
    assert (tmp_path / "p.json").exists()


@pytest.mark.slow
def test_workers_whose_provers_would_not_fit_together_are_skipped_with_the_sizes(tiny_circuit, monkeypatch):
    monkeypatch.setenv("ZKINFER_MEMORY_LIMIT", "1M")  # less than one tiny prover: nothing is measured
    [row] = bench.throughput_configurations(tiny_circuit, 1, workers_list=(2,))
    assert row["workers"] == 2 and "inferences_per_hour" not in row
    assert row["skipped"].startswith("2 provers at once would need ~") and "GB each" in row["skipped"]
    assert "0.0 GB available" in row["skipped"]
