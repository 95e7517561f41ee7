import os

import numpy as np
import pytest

from nbkernels import cache as C


def test_roundtrip_and_key(tmp_path):
    c = C.Cache(tmp_path)
    calls = []
    f = lambda: calls.append(1) or {"a": np.arange(3)}
    v1 = c.get_or_compute({"x": 1, "data": C.fingerprint(np.ones(3))}, f, version="1")
    v2 = c.get_or_compute({"data": C.fingerprint(np.ones(3)), "x": 1}, f, version="1")  # key order irrelevant
    assert len(calls) == 1 and np.array_equal(v1["a"], v2["a"])
    c.get_or_compute({"x": 1, "data": C.fingerprint(np.ones(3))}, f, version="2")  # new version: recompute
    c.get_or_compute({"x": 1, "data": C.fingerprint(np.zeros(3))}, f, version="1")  # new data: recompute
    assert len(calls) == 3


def test_fingerprint_sensitive_to_values_shape_dtype():
    a = np.arange(6.0)
    assert C.fingerprint(a) != C.fingerprint(a.reshape(2, 3))
    assert C.fingerprint(a) != C.fingerprint(a.astype(np.float32))
    b = a.copy(); b[3] += 1e-12
    assert C.fingerprint(a) != C.fingerprint(b)


def test_interrupted_write_leaves_no_entry(tmp_path, monkeypatch):
    c = C.Cache(tmp_path)
    key = c.key({"x": 1})

    class Boom(Exception):
        pass

    real_fsync = os.fsync

    def crash(fd):
        raise Boom()  # the process dies mid-write, after part of the file is out

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(Boom):
        c.put(key, {"big": np.ones(100000)})
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert key not in c
    assert not list(tmp_path.rglob(".tmp-*"))  # no half-written temporary left behind
    with pytest.raises(KeyError):
        c.get(key)


def test_corrupt_entry_is_recomputed_with_warning(tmp_path):
    c = C.Cache(tmp_path)
    c.get_or_compute({"x": 2}, lambda: [1, 2, 3])
    path = c.path(c.key({"x": 2}))
    blob = bytearray(path.read_bytes())
    blob[-3] ^= 0xFF  # flip bits in the payload
    path.write_bytes(bytes(blob))
    with pytest.warns(UserWarning, match="corrupt"):
        v = c.get_or_compute({"x": 2}, lambda: [4, 5])
    assert v == [4, 5]
    assert c.get(c.key({"x": 2})) == [4, 5]
    path.write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="corrupt"):
        assert c.get_or_compute({"x": 2}, lambda: "again") == "again"


def test_env_moves_and_disables(tmp_path, monkeypatch):
    monkeypatch.setenv("NBKERNELS_CACHE", str(tmp_path / "elsewhere"))
    C.cached({"y": 1}, lambda: 5)
    assert list((tmp_path / "elsewhere").rglob("*.pkl"))
    monkeypatch.setenv("NBKERNELS_CACHE", "off")
    calls = []
    C.cached({"y": 1}, lambda: calls.append(1))
    C.cached({"y": 1}, lambda: calls.append(1))
    assert len(calls) == 2
