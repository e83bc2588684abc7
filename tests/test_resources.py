"""Memory: the operator's cap, the estimate's shape, and the watchdog that stops a process before the OOM
killer does."""

import subprocess
import sys

import pytest

from pipeline import resources
from pipeline.compile import CircuitSettings
from pipeline.errors import UsageError


def _settings(logrows: int, lookups: int = 1, assignments: int = 1000) -> CircuitSettings:
    raw = {"run_args": {"num_inner_cols": 2}, "total_assignments": assignments,
           "required_lookups": [{"Sigmoid": {}}] * lookups, "required_range_checks": [[0, 1]]}
    return CircuitSettings(logrows=logrows, input_scales=[7], output_scales=[7], param_scale=7,
                           lookup_range=(-1, 1), instance_shapes=[], visibility={}, raw=raw)


def test_memory_limit_parsing(monkeypatch):
    monkeypatch.setenv(resources.MEMORY_LIMIT_ENV, "8G")
    assert resources.memory_limit() == 8 << 30 and resources.available_bytes() <= 8 << 30
    monkeypatch.setenv(resources.MEMORY_LIMIT_ENV, "lots")
    with pytest.raises(UsageError, match="ZKINFER_MEMORY_LIMIT='lots'"):
        resources.memory_limit()


def test_estimate_grows_with_rows_and_tables():
    small, tall, wide = (resources.estimate(_settings(15)), resources.estimate(_settings(18)),
                         resources.estimate(_settings(15, lookups=5)))
    assert tall.pk_bytes == 8 * small.pk_bytes
    assert wide.pk_bytes > small.pk_bytes and small.peak_bytes > small.pk_bytes
    assert resources.shortfall(small, available=1 << 40) is None
    assert "would need ~" in resources.shortfall(tall, available=100 << 20)


def test_watchdog_stops_a_process_before_it_outgrows_its_memory():
    code = (
        "import os, time\n"
        "os.environ['ZKINFER_MEMORY_LIMIT'] = '200M'\n"
        "from pipeline import resources\n"
        "with resources.watchdog('allocating'):\n"
        "    blocks = []\n"
        "    for _ in range(200):\n"
        "        blocks.append(bytearray(20 << 20)); time.sleep(0.02)\n"
        "print('not stopped')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "not stopped" not in r.stdout
    assert r.stderr.startswith("error: stopped while allocating: memory use reached") and "Traceback" not in r.stderr
