import pytest

from pipeline import srs
from pipeline.errors import UsageError

pytestmark = pytest.mark.slow


def test_dev_srs_is_generated_once_and_reused(session_srs_dir):
    first = srs.dev_srs(6)
    assert first.insecure and first.origin == srs.DEV_ORIGIN and first.logrows == 6
    assert first.path.parent == session_srs_dir
    mtime = first.path.stat().st_mtime_ns
    again = srs.dev_srs(6)
    assert again == first and again.path.stat().st_mtime_ns == mtime
    assert srs.file_logrows(first.path) == 6


def test_ceremony_srs_needs_enough_rows(tmp_path):
    small = srs.dev_srs(6)
    info = srs.ceremony_srs(small.path, 5)
    assert not info.insecure and info.origin == "ceremony" and info.sha256 == small.sha256
    with pytest.raises(UsageError, match=r"has 2\^6 rows but the circuit needs 2\^8"):
        srs.ceremony_srs(small.path, 8)


def test_not_an_srs_file(tmp_path):
    p = tmp_path / "fake.srs"
    p.write_bytes(b"\xff\xff\xff\xff" + b"\0" * 100)
    with pytest.raises(UsageError, match="does not look like a KZG parameters file"):
        srs.file_logrows(p)
    p.write_bytes((10).to_bytes(4, "little") + b"\0" * 100)
    with pytest.raises(UsageError, match="truncated"):
        srs.file_logrows(p)
    with pytest.raises(UsageError, match="SRS file not found"):
        srs.file_logrows(tmp_path / "none.srs")
