"""The block engine: exact whatever the blocking (diagonal included), hopeless requests refused with an
estimate, a store that survives kill -9 at any instant, and several processes writing one store."""
import json
import os
import random
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import jax
import numpy as np
import pytest

import nbkernels as nbk
from nbkernels import blocks, compute, engine, fused, settings

ROOT = Path(__file__).resolve().parent.parent
ENV = dict(os.environ, PYTHONPATH=str(ROOT), JAX_ENABLE_X64="1")  # the CLI's stores are float64 here
TOL = 1e-12  # relative to the largest entry, float64; the diagonal entry by entry


def _archs():
    rng = np.random.default_rng(0)
    return [("FC", nbk.fcn(3, 8), rng.normal(size=(37, 48))),
            ("CNN-VEC", nbk.cnn(3, 8), rng.normal(size=(23, 6, 6, 3))),
            ("CNN-GAP", nbk.cnn(2, 8, readout="gap"), rng.normal(size=(17, 6, 6, 3))),
            ("erf FC", nbk.fcn(2, 8, activation="erf"), rng.normal(size=(19, 12)))]


def _close(a, b):
    a, b = np.asarray(a), np.asarray(b)
    off = np.abs(a - b).max() / np.abs(a).max()
    diag = np.max(np.abs(np.diag(a) - np.diag(b)) / np.abs(np.diag(a)))
    return off < TOL and diag < TOL, (off, diag)


@pytest.mark.parametrize("name,arch,x", _archs(), ids=[a[0] for a in _archs()])
def test_blocked_one_block_traced_and_stored_kernels_agree_to_1e_12(name, arch, x, tmp_path):
    one = arch.kernel(x, batch_size=len(x), progress=False)
    blocked = arch.kernel(x, batch_size=5, progress=False)
    same_twice = arch.kernel(x, x.copy(), batch_size=7, progress=False)  # x with itself, given twice
    traced = arch.kernel_fn(x, None)
    compute.compute_store(arch, x, None, tmp_path / "store", batch_size=6, progress=False)
    stored = compute.load(tmp_path / "store")
    for g, t in (("nngp", traced[0]), ("ntk", traced[1])):
        ref = getattr(one, g)
        for what, other in (("blocked", getattr(blocked, g)), ("x2 = x1", getattr(same_twice, g)),
                            ("kernel_fn", t), ("stored", getattr(stored, g))):
            ok, err = _close(ref, other)
            assert ok, f"{name} {g}: {what} differs from one block by {err[0]:.1e} (diagonal {err[1]:.1e})"
        assert np.array_equal(getattr(blocked, g), getattr(blocked, g).T)


def _packing_archs():
    rng = np.random.default_rng(2)
    img = rng.normal(size=(11, 6, 5, 3))
    return [("CNN-GAP", nbk.cnn(2, 8, readout="gap"), img),
            ("CNN-VEC standard", nbk.cnn(3, 8, parameterization="standard"), img),
            ("LCN-GAP", nbk.cnn(2, 8, readout="gap", weight_sharing=False), img),
            ("circular, strided, erf", nbk.serial(nbk.Conv(4, (3, 2), padding="CIRCULAR"), nbk.Erf(),
                                                  nbk.Conv(4, (2, 3), strides=(2, 1)), nbk.Relu(),
                                                  nbk.GlobalAvgPool(), nbk.Dense(1)), img),
            ("FC", nbk.fcn(3, 8), rng.normal(size=(13, 7)))]


@pytest.mark.parametrize("name,arch,x", _packing_archs(), ids=[a[0] for a in _packing_archs()])
def test_nngp_and_ntk_packed_as_one_complex_array_give_bit_identical_kernels(name, arch, x, monkeypatch):
    """The layer programs carry NNGP + i NTK as one array on the CPU (``blocks.packs_complex``): the same
    arithmetic element for element, though XLA may contract a multiply-add differently in the one fused
    loop, so an entry can differ in its last bit (measured: at most 8e-17 relative, float64). The XLA
    programs are what runs here, not the fused CPU kernel."""
    out = {}
    for pack in (False, True):
        with settings.context(fused=False, pack=pack):
            assert blocks.packs_complex(True) == pack and not blocks.packs_complex(False)
            out[pack] = (arch.kernel(x, batch_size=4, progress=False), arch.kernel(x[:5], x[5:], batch_size=3, progress=False))
            assert out[pack][0].settings == settings.get()  # the kernel says how it was computed
    for a, b in zip(out[False], out[True]):
        for g in ("nngp", "ntk"):
            u, v = getattr(a, g), getattr(b, g)
            assert np.abs(u - v).max() <= 1e-15 * np.abs(u).max(), (name, g, np.abs(u - v).max() / np.abs(u).max())
    assert blocks.packs_complex(True, settings.Settings()) == (jax.default_backend() == "cpu")


def _fused_archs():
    rng = np.random.default_rng(3)
    img = rng.normal(size=(13, 7, 5, 3))
    conv = lambda **kw: nbk.Conv(3, (3, 3), W_std=1.3, b_std=0.2, **kw)
    return [("CNN-GAP", nbk.cnn(2, 8, readout="gap"), img),
            ("CNN-VEC", nbk.cnn(3, 8), img),
            ("erf CNN-GAP", nbk.cnn(2, 8, readout="gap", activation="erf"), img),
            ("standard CNN-VEC", nbk.cnn(2, 8, parameterization="standard"), img),
            ("standard CNN-GAP, no bias", nbk.cnn(2, 8, readout="gap", parameterization="standard", b_std=None), img),
            ("VALID CNN-GAP", nbk.cnn(2, 8, readout="gap", padding="VALID"), img),
            ("filters 5x2 and 1x1", nbk.serial(nbk.Conv(4, (5, 2), b_std=0.1), nbk.Relu(), nbk.Conv(4, (1, 1)),
                                               nbk.Erf(), nbk.GlobalAvgPool(), nbk.Dense(1)), img),
            ("LCN-VEC", nbk.cnn(2, 8, weight_sharing=False), img),
            ("ReLU first, two convolutions, a dense head", nbk.serial(
                nbk.Relu(), conv(), conv(padding="VALID"), nbk.Erf(), nbk.Relu(), nbk.Flatten(),
                nbk.Dense(5, b_std=0.1), nbk.Relu(), nbk.Dense(1)), img)]


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the fused kernel is the CPU's")
@pytest.mark.parametrize("name,arch,x", _fused_archs(), ids=[a[0] for a in _fused_archs()])
def test_the_fused_cpu_kernel_equals_the_layer_programs(name, arch, x, monkeypatch):
    """nbkernels.fused against the per-layer XLA programs (which serve accelerators): symmetric and
    x1 != x2, NNGP and NTK and NNGP alone, blocks of 4, 5 and one block, in float64: agree to 1e-14
    relative, the diagonal entry by entry. Fused blocks of x1 != x2 are bit-identical to one fused block
    (a symmetric kernel's blocks are symmetrized differently by their sink, one block or many)."""
    assert blocks.fused_prefix(arch, x.shape[1:]) is not None
    got = {}
    for on in ("0", "1"):
        with settings.context(fused=on == "1"):
            got[on] = [arch.kernel(x, progress=False), arch.kernel(x, batch_size=4, progress=False),
                       arch.kernel(x[:6], x[6:], batch_size=5, progress=False), arch.kernel(x[:6], x[6:], progress=False),
                       arch.kernel(x[:6], x[6:], progress=False, get=("nngp",))]
    for (a, b) in zip(got["0"], got["1"]):
        for g in ("nngp", "ntk"):
            u, v = getattr(a, g), getattr(b, g)
            if u is None:
                assert v is None
                continue
            assert np.abs(u - v).max() <= 1e-14 * np.abs(u).max(), (name, g, np.abs(u - v).max() / np.abs(u).max())
            if u.shape[0] == u.shape[1]:
                assert np.all(np.abs(np.diag(u) - np.diag(v)) <= 1e-14 * np.abs(np.diag(u))), (name, g)
    blocked, one = got["1"][2], got["1"][3]
    assert np.array_equal(one.nngp, blocked.nngp) and np.array_equal(one.ntk, blocked.ntk)
    assert np.array_equal(one.nngp, got["1"][4].nngp)  # the NTK's absence changes nothing else


def test_what_the_fused_kernel_leaves_to_the_layer_programs():
    img = (6, 5, 3)
    for arch in (nbk.cnn(2, 8, readout="gap", weight_sharing=False),          # the LCN's pooled kernel
                 nbk.cnn(2, 8, readout="gap", padding="CIRCULAR"),
                 nbk.serial(nbk.Conv(4, (3, 3), strides=(2, 1)), nbk.Relu(), nbk.Flatten(), nbk.Dense(1)),
                 nbk.fcn(2, 8)):
        assert fused.prefix(arch, img if arch.layers[0].__class__.__name__ == "Conv" else (12,)) is None, arch


def test_patch_mean_equals_the_padded_copy_read_at_every_shift_bit_for_bit():
    """``kernels.patch_mean`` reads unit-stride zero-padded shifts as offsets into the flat array and
    pads each shifted slice otherwise (never one padded copy of the array): against the textbook form,
    pad once and slice, over filters, strides, paddings, both layouts and real and complex (packed)
    arrays, both compiled as the engine compiles them."""
    import itertools
    import math
    import jax.numpy as jnp
    from nbkernels.kernels import patch_mean
    from nbkernels.layers import conv_geometry

    def textbook(x, filter_shape, strides, geometry, circular, full):
        groups = [(d, d + 2) if full else (d,) for d in range(len(filter_shape))]
        pads = [(0, 0)] * x.ndim
        for axes, (_, pad) in zip(groups, geometry):
            for a in axes:
                pads[a] = pad
        x = jnp.pad(x, pads, mode="wrap" if circular else "constant")
        total = 0
        for shift in np.ndindex(*filter_shape):
            idx = [slice(None)] * x.ndim
            for axes, d, s, (n, _) in zip(groups, shift, strides, geometry):
                for a in axes:
                    idx[a] = slice(d, d + (n - 1) * s + 1, s)
            total = total + x[tuple(idx)]
        return total / math.prod(filter_shape)

    rng, cases = np.random.default_rng(1), 0
    for (h, w), fs, st, pad, full, cplx in itertools.product([(7, 5), (4, 6)], [(3, 3), (5, 2), (1, 1)],
                                                             [(1, 1), (2, 1), (3, 2)], ["SAME", "VALID", "CIRCULAR"],
                                                             [True, False], [False, True]):
        geo = [conv_geometry(n, f, s, "SAME" if pad == "CIRCULAR" else pad) for n, f, s in zip((h, w), fs, st)]
        if min(o for o, _ in geo) < 1:
            continue
        shape = (h, w, h, w, 2, 3) if full else (h, w, 2, 3)
        x = rng.normal(size=shape) + (1j * rng.normal(size=shape) if cplx else 0)
        a, b = (jax.jit(lambda x, f=f: f(x, fs, st, geo, pad == "CIRCULAR", full))(x) for f in (textbook, patch_mean))
        assert a.shape == b.shape and np.array_equal(a, b), (h, w, fs, st, pad, full, cplx)
        cases += 1
    assert cases > 160


def test_an_input_with_itself_has_angle_exactly_zero():
    """A one-layer ReLU network on an input with itself: the arc-cosine map at angle 0 is exactly v / 2."""
    x = np.random.default_rng(1).normal(size=(9, 300))
    k = nbk.serial(nbk.Dense(4, W_std=1.0, b_std=None), nbk.Relu()).kernel(x, progress=False)
    v = np.sum(x ** 2, 1) / x.shape[1]
    np.testing.assert_allclose(np.diag(k.nngp), v / 2, rtol=1e-14)  # the input covariance itself rounds differently here
    # NTK: the Dense layer's v times the ReLU's derivative factor (pi - theta) / (2 pi), exactly 1/2 at
    # theta = 0 (with theta ~ 1e-8 from rounding, it would be off by ~3e-9)
    np.testing.assert_allclose(np.diag(k.ntk), v / 2, rtol=1e-14)


def test_four_devices_equal_one_to_1e_12(tmp_path):
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
        ref = arch.kernel(x, batch_size=37, progress=False)
        rel = lambda u, v: float(np.abs(u - v).max() / np.abs(u).max())
        diag = lambda u, v: float(np.max(np.abs(np.diag(u) - np.diag(v)) / np.abs(np.diag(u))))
        print(json.dumps(dict(sharded=max(rel(a.ntk, b.ntk), rel(a.nngp, b.nngp)),
                              one_block=max(rel(ref.ntk, a.ntk), rel(ref.nngp, a.nngp)),
                              diag=max(diag(ref.ntk, a.ntk), diag(ref.nngp, a.nngp)))))
    """)
    env = dict(ENV, XLA_FLAGS="--xla_force_host_platform_device_count=4")
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["sharded"] < TOL and res["one_block"] < TOL and res["diag"] < TOL, res


def test_a_request_that_would_run_for_days_stops_with_its_estimate():
    x = np.random.default_rng(0).normal(size=(40, 6))
    with pytest.raises(engine.KernelTimeError, match=r"would take about .* more at the measured .* s per block, "
                                                     r"over the limit of 1e-07 hours.*python -m nbkernels.compute"):
        nbk.fcn(1, 4).kernel(x, batch_size=2, max_hours=1e-7, progress=False)
    k = nbk.fcn(1, 4).kernel(x, batch_size=2, max_hours=None, progress=False)  # no limit: it runs
    assert k.ntk.shape == (40, 40)


@pytest.mark.parametrize("fused_on", [True, False])
def test_a_request_that_cannot_fit_names_a_block_size_that_does(fused_on):
    """Refused before allocating, on either path (the fused CPU kernel holds partial sums per input pair,
    the XLA programs every pixel pair), naming a block size that the plan then accepts."""
    import re
    s = settings.Settings(fused=fused_on)
    arch, x = nbk.cnn(8, 1, readout="gap"), np.zeros((20000, 32, 32, 3), np.float32)
    with pytest.raises(nbk.KernelMemoryError, match=r"use batch_size=\d+ or smaller") as info:
        arch.kernel(x, batch_size=20000, dtype="float32", settings=s)
    fits = int(re.search(r"use batch_size=(\d+)", str(info.value)).group(1))
    assert blocks.plan(arch, x, None, batch_size=fits, dtype="float32", settings=s).batch_size == fits


def test_every_pixel_pair_kernels_take_the_measured_block_sides_on_a_cpu():
    """The XLA programs (``Settings(fused=False)``): 8x8 images: 8 inputs a side; 16x16: 4; 32x32: 1
    (benchmarks/README.md has the timings); the pixel-diagonal kernels keep the cache-sized rule, evened
    out over the inputs."""
    x = lambda n, h: np.zeros((n, h, h, 3), np.float32)
    gap = nbk.cnn(2, 1, readout="gap")
    f32 = dict(dtype="float32", settings=settings.Settings(fused=False))  # the sides are for 4 MiB arrays: float64 halves them
    if jax.default_backend() == "cpu":
        assert [blocks.plan(gap, x(100, h), None, **f32).batch_size for h in (8, 16, 32)] == [8, 4, 1]
        assert blocks.plan(gap, x(30, 16), x(30, 16), **f32).batch_size == 4  # not evened out to 30 / 7
        assert blocks.plan(nbk.cnn(2, 1, readout="vec"), x(200, 16), None, **f32).batch_size == 40  # 45, evened out
    assert blocks.plan(gap, x(3, 8), None, **f32).batch_size == 3  # never more than the inputs


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the fused kernel is the CPU's")
def test_fused_blocks_are_whole_vectors_wide_and_sized_by_their_work():
    """Fused blocks: about 3e8 entry-passes each, a multiple of 16 inputs a side from 16 to 256, evened
    out over the inputs; never more than the inputs."""
    x = lambda n, h: np.zeros((n, h, h, 3), np.float32)
    gap = nbk.cnn(2, 1, readout="gap")
    assert [blocks.fused_block_side(blocks.fused_prefix(gap, (h, h, 3)), (h, h, 3)) for h in (8, 16, 32)] == [192, 48, 16]
    assert blocks.fused_block_side(blocks.fused_prefix(nbk.cnn(8, 1), (16, 16, 3)), (16, 16, 3)) == 256
    assert blocks.plan(gap, x(1000, 16), None).batch_size == 48       # 21 blocks a side, as even as can be
    assert blocks.plan(gap, x(100, 8), None).batch_size == 100        # one block
    assert blocks.plan(gap, x(3, 8), None).batch_size == 3


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_the_cpu_engine_keeps_freed_block_arrays_in_the_heap_unless_told_not_to():
    """engine.tune_allocator sets glibc's trim and mmap thresholds once a kernel runs on the CPU (it made
    CNN-VEC depth 8 1.5-2x faster, benchmarks/README.md); NBKERNELS_MALLOPT=0 (Settings.mallopt) leaves them alone."""
    code = ("import numpy as np, nbkernels as nbk; from nbkernels import engine; "
            "nbk.fcn(1, 4).kernel(np.eye(3, 4), progress=False); print(engine.tune_allocator())")
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    said = [subprocess.run([sys.executable, "-c", code], env=dict(env, NBKERNELS_MALLOPT=m), capture_output=True,
                           text=True, timeout=120).stdout.split()[-1] for m in ("1", "0")]
    assert said == ["True", "False"]
    assert engine.malloc_env() == {"MALLOC_TRIM_THRESHOLD_": str(256 * 2 ** 20),
                                   "MALLOC_MMAP_THRESHOLD_": str(32 * 2 ** 20)}


# ----------------------------------------------------------------------------------------------
# the store under kill -9, and several processes


N_TRAIN = 120


def _cli(out, *extra):
    return [sys.executable, "-m", "nbkernels.compute", "--arch", "cnn-gap", "--depth", "3", "--dataset", "digits",
            "--n-train", str(N_TRAIN), "--batch-size", "8", "--dtype", "float64", "--out", str(out), *extra]


def _in_memory():
    """The same kernel in memory, in one block (the store's blocks are 8 inputs a side)."""
    from nbkernels import data
    x_tr, _, _, _ = data.prepare(data.load("digits", n_train=N_TRAIN, verbose=False))
    return compute.named_architecture("cnn-gap", 3, 1).kernel(x_tr, batch_size=N_TRAIN, progress=False)


def _assert_equals_in_memory(store):
    ref, got = _in_memory(), compute.load(store)
    for g in ("nngp", "ntk"):
        ok, err = _close(getattr(ref, g), getattr(got, g))
        assert ok, f"stored {g} differs from the in-memory kernel by {err[0]:.1e} (diagonal {err[1]:.1e})"


def _run(cmd, timeout=600):
    out = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_store_survives_kill_9_at_random_instants(tmp_path):
    """Killed at random instants (starting, computing, writing), many times: every resumed run finishes
    and the store then equals the in-memory kernel; no block is ever taken for done while incomplete."""
    t0 = time.time()
    total = _run(_cli(tmp_path / "timing"))["blocks"]
    full_run = time.time() - t0
    rng = random.Random(12345)
    store = tmp_path / "run"
    kills = 0
    for _ in range(10):
        proc = subprocess.Popen(_cli(store), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.2, full_run))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
    assert kills >= 5, f"only {kills} of 10 runs were still going when killed"
    res = _run(_cli(store))
    assert res["computed"] <= total
    _assert_equals_in_memory(store)
    assert _run(_cli(store))["computed"] == 0, "a finished store computed blocks again"


def test_a_corrupt_block_is_found_and_recomputed(tmp_path):
    _run(_cli(tmp_path))
    victim = sorted((tmp_path / "blocks").glob("block_*.npz"))[3]
    raw = bytearray(victim.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    victim.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="missing or corrupt"):
        compute.load(tmp_path)
    out = subprocess.run(_cli(tmp_path), env=ENV, capture_output=True, text=True, timeout=600)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["recomputed_corrupt"] == 1 and res["computed"] == 1 and "failed their checksum" in out.stderr
    _assert_equals_in_memory(tmp_path)


def test_store_refuses_a_different_kernel(tmp_path):
    x = np.random.default_rng(0).normal(size=(6, 4))
    compute.compute_store(nbk.fcn(1, 4), x, None, tmp_path, batch_size=3, progress=False)
    with pytest.raises(ValueError, match="different kernel"):
        compute.compute_store(nbk.fcn(2, 4), x, None, tmp_path, batch_size=3, progress=False)
    np.testing.assert_allclose(compute.load(tmp_path).ntk, nbk.fcn(1, 4).kernel(x).ntk, rtol=1e-12)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _hosts(store, n, port):
    return [subprocess.Popen(_cli(store, "--distributed", "--coordinator", f"127.0.0.1:{port}", "--num-processes",
                                  str(n), "--process-id", str(i)), env=ENV, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for i in range(n)]


def test_several_processes_write_one_store_and_resume_after_one_is_killed(tmp_path):
    store = tmp_path / "shared"
    procs = _hosts(store, 2, _free_port())
    blocks = store / "blocks"
    deadline = time.time() + 300
    while time.time() < deadline and len(list(blocks.glob("block_*.npz"))) < 6:
        time.sleep(0.05)
    procs[1].send_signal(signal.SIGKILL)  # one host dies mid-run
    for p in procs:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:  # the survivor may wait for its lost peer: stop it too
            p.kill()
            p.wait()
    partial = len(list(blocks.glob("block_*.npz")))
    procs = _hosts(store, 2, _free_port())  # the same command again, on both hosts
    outs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    res = [json.loads(o[0].strip().splitlines()[-1]) for o in outs]
    assert sum(r["mine"] for r in res) == res[0]["blocks"] and abs(res[0]["mine"] - res[1]["mine"]) <= 1
    assert sum(r["computed"] for r in res) == res[0]["blocks"] - partial
    _assert_equals_in_memory(store)


def test_distributed_flags_must_come_together():
    out = subprocess.run(_cli("/nonexistent", "--distributed", "--num-processes", "2"), env=dict(ENV, JAX_PROCESS_ID=""),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and "--num-processes and --process-id go together" in out.stderr
