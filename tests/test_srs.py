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


def test_given_srs_needs_enough_rows_and_the_ceremony_hash(tmp_path, monkeypatch):
    small = srs.dev_srs(6)
    # A dev SRS passed with --srs is not made a ceremony file by the passing: unverified, insecure.
    info = srs.ceremony_srs(small.path, 5)
    assert info.insecure and info.origin == srs.UNVERIFIED_ORIGIN and info.sha256 == small.sha256
    with pytest.raises(UsageError, match=r"has 2\^6 rows but the circuit needs 2\^8"):
        srs.ceremony_srs(small.path, 8)
    # The file whose sha256 is the public ceremony file's for its logrows is the ceremony's (pretend this
    # one is, by pinning its hash: the real ceremony files need the network).
    monkeypatch.setitem(srs.PUBLIC_SRS_SHA256, 6, small.sha256)
    assert srs.ceremony_srs(small.path, 5).origin == srs.CEREMONY_ORIGIN


def test_public_hashes_are_ezkls():
    """The pins are the 26 files ezkl's get_srs checks (one per logrows 1..26), sha256 hex each."""
    from pipeline.srs_ceremony import PUBLIC_SRS_SHA256

    assert sorted(PUBLIC_SRS_SHA256) == list(range(1, 27))
    assert PUBLIC_SRS_SHA256[17] == "41509f380362a8d14401c5ae92073154922fe23e45459ce6f696f58607655db7"


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
