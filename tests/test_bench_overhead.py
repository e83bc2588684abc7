"""The overhead benchmark on the tiny circuit, one run of each contender: the result keys, not the speeds."""

import sys

import pytest

from pipeline.bench_overhead import cli_startup, overhead_of, run_measured


def test_run_measured_reports_the_childs_own_memory():
    m = run_measured([sys.executable, "-c", "b = bytearray(200 << 20); b[::4096] = b'x' * len(b[::4096])"])
    assert m.returncode == 0 and m.wall_s > 0 and m.peak_rss_mb >= 200
    assert run_measured([sys.executable, "-c", "import sys; sys.exit(3)"]).returncode == 3



def test_run_measured_does_not_count_the_parents_memory():
    # Linux carries a parent's high-water mark into a forked child's rusage; a big benchmark process must not
    # make its small children read big.
    ballast = bytearray(600 << 20)
    ballast[::4096] = b"x" * len(ballast[::4096])
    m = run_measured([sys.executable, "-c", "import time; time.sleep(0.5)"])
    assert m.returncode == 0 and 0 < m.peak_rss_mb < 300
    del ballast

@pytest.mark.slow
def test_overhead_of_the_tiny_circuit(tiny_circuit):
    row = overhead_of(tiny_circuit, runs=1, batch_rows=1)
    for key in ("zkinfer_prove_s", "ezkl_prove_s", "prove_ratio", "zkinfer_verify_s", "ezkl_verify_s"):
        assert row[key] > 0, key
    assert row["model"] == "tiny" and row["prove_ratio"] == round(row["zkinfer_prove_s"] / row["ezkl_prove_s"], 3)
    assert set(row["timings"]) == {f"{a}_{b}" for a in ("prove", "verify") for b in (
        "zkinfer_library", "ezkl_library", "zkinfer_cli", "ezkl_script")} | {"batch_zkinfer_cli", "batch_ezkl_loop"}
    assert row["timings"]["prove_zkinfer_cli"]["runs"] == 1 and row["cli_prove_peak_rss_mb"] > 0
    assert row["batch"]["rows"] == 1 and row["batch"]["ratio"] > 0
    prof = row["profile"]
    assert {"prove", "gen_witness", "mock"} <= set(prof["ezkl_calls_s"]), prof["ezkl_calls_s"]
    assert prof["inside_ezkl_s"] + prof["outside_ezkl_s"] == pytest.approx(prof["total_s"], abs=1e-3)
    assert prof["top_outside_ezkl"] and "function" in prof["top_outside_ezkl"][0]


def test_cli_startup_is_timed():
    s = cli_startup(runs=1)
    assert s["zkinfer_help_s"]["runs"] == 1 and s["python_import_ezkl_s"]["median"] > 0
