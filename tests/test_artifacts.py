import json
import os
import stat

import pytest

from pipeline.artifacts import atomic_path, canonical_json, read_json, sha256_file, write_json_atomic, write_with
from pipeline.errors import UsageError


def test_atomic_write_publishes_whole_file_with_normal_mode(tmp_path):
    p = write_json_atomic(tmp_path / "sub" / "a.json", {"b": 1, "a": [1, 2]})
    assert json.loads(p.read_text()) == {"b": 1, "a": [1, 2]}
    assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~_umask()
    assert [f.name for f in p.parent.iterdir()] == ["a.json"]  # no temp file left behind


def test_failed_write_leaves_old_file_and_no_temp(tmp_path):
    target = tmp_path / "proof.json"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half a proo")
            raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert [f.name for f in tmp_path.iterdir()] == ["proof.json"]


def test_write_with_rejects_writer_that_wrote_nothing(tmp_path):
    with pytest.raises(RuntimeError, match="no output"):
        write_with(tmp_path / "x.bin", lambda tmp: None)
    assert not (tmp_path / "x.bin").exists()


def test_sha256_and_canonical_json(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(b"abc")
    assert sha256_file(p) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert canonical_json({"b": 1, "a": 2}) == b'{"a":2,"b":1}'
    with pytest.raises(ValueError):
        canonical_json({"x": float("nan")})


def test_read_json_names_file_and_position(tmp_path):
    with pytest.raises(UsageError, match="not found: .*missing.json"):
        read_json(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"a": 1,\n "b": }')
    with pytest.raises(UsageError, match=r"bad.json is not valid JSON: line 2"):
        read_json(bad)


def _umask():
    m = os.umask(0)
    os.umask(m)
    return m
