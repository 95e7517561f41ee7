"""Scale-out: sharded blocks equal one device, kill -9 and resume, corrupted blocks recomputed."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import nbkernels as nbk
from nbkernels import compute

ROOT = Path(__file__).resolve().parent.parent


def test_four_devices_equal_one(tmp_path):
    script = textwrap.dedent(f"""
        import json, numpy as np, jax
        jax.config.update("jax_enable_x64", True)
        import nbkernels as nbk
        from nbkernels import compute
        assert len(jax.devices()) == 4, jax.devices()
        x = np.random.default_rng(0).normal(size=(37, 6, 6, 2))
        arch = nbk.cnn(2, 1, readout="gap")
        compute.compute_store(arch, x, None, "{tmp_path}/four", batch_size=8, progress=False)
        compute.compute_store(arch, x, None, "{tmp_path}/one", batch_size=8, progress=False, devices=jax.devices()[:1])
        a, b = compute.load("{tmp_path}/four"), compute.load("{tmp_path}/one")
        ref = arch.kernel(x)
        print(json.dumps(dict(identical=bool(np.array_equal(a.ntk, b.ntk) and np.array_equal(a.nngp, b.nngp)),
                              err=float(np.abs(a.ntk - ref.ntk).max() / np.abs(ref.ntk).max()))))
    """)
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["identical"]
    assert res["err"] < 1e-12


def _cli(out, *extra):
    return [sys.executable, "-m", "nbkernels.compute", "--arch", "cnn-gap", "--depth", "3", "--dataset", "digits",
            "--n-train", "120", "--batch-size", "8", "--out", str(out), *extra]


def test_kill_and_resume_gives_identical_matrix_and_corrupt_block_is_recomputed(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    ref = subprocess.run(_cli(tmp_path / "ref"), env=env, capture_output=True, text=True, timeout=600)
    assert ref.returncode == 0, ref.stderr[-2000:]
    total = json.loads(ref.stdout.strip().splitlines()[-1])["blocks"]

    proc = subprocess.Popen(_cli(tmp_path / "run"), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    blocks = tmp_path / "run" / "blocks"
    deadline = time.time() + 300
    while time.time() < deadline and len(list(blocks.glob("ntk_*.npy"))) < 5 and proc.poll() is None:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    done_before = len(list(blocks.glob("ntk_*.npy")))
    assert 0 < done_before < total

    again = subprocess.run(_cli(tmp_path / "run"), env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    res = json.loads(again.stdout.strip().splitlines()[-1])
    assert res["computed"] <= total - done_before + 1  # only missing blocks (+ one torn by the kill)
    a, b = compute.load(tmp_path / "ref"), compute.load(tmp_path / "run")
    np.testing.assert_array_equal(a.nngp, b.nngp)
    np.testing.assert_array_equal(a.ntk, b.ntk)

    victim = sorted(blocks.glob("nngp_*.npy"))[3]
    raw = bytearray(victim.read_bytes())
    raw[-5] ^= 0xFF
    victim.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="missing or corrupt"):
        compute.load(tmp_path / "run")
    fixed = subprocess.run(_cli(tmp_path / "run"), env=env, capture_output=True, text=True, timeout=600)
    res = json.loads(fixed.stdout.strip().splitlines()[-1])
    assert res["recomputed_corrupt"] == 1 and res["computed"] == 1
    assert "failed their checksum" in fixed.stderr
    np.testing.assert_array_equal(compute.load(tmp_path / "run").nngp, a.nngp)


def test_store_refuses_a_different_kernel(tmp_path):
    x = np.random.default_rng(0).normal(size=(6, 4))
    compute.compute_store(nbk.fcn(1, 4), x, None, tmp_path, batch_size=3, progress=False)
    with pytest.raises(ValueError, match="different kernel"):
        compute.compute_store(nbk.fcn(2, 4), x, None, tmp_path, batch_size=3, progress=False)
    np.testing.assert_allclose(compute.load(tmp_path).ntk, nbk.fcn(1, 4).kernel(x).ntk, rtol=1e-12)
