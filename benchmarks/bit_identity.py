"""Kernels of seven architectures under one code version, for a bitwise before/after comparison of a
refactor (issue 34). Run it under each version and compare:

    NBKERNELS_FUSED=1 python benchmarks/bit_identity.py /path/to/old/checkout old.npz
    NBKERNELS_FUSED=1 python benchmarks/bit_identity.py . new.npz
    python benchmarks/bit_identity.py --compare old.npz new.npz
"""
import sys

import jax
import numpy as np

if sys.argv[1] == "--compare":
    a, b = np.load(sys.argv[2]), np.load(sys.argv[3])
    assert set(a.files) == set(b.files)
    diff = [k for k in a.files if not np.array_equal(a[k], b[k])]
    print(f"{len(a.files)} arrays, {len(a.files) - len(diff)} bit-identical; differ: {diff[:10]}")
    sys.exit(1 if diff else 0)
jax.config.update("jax_enable_x64", True)
sys.path.insert(0, sys.argv[1])
import nbkernels as nbk
print(nbk.__file__, file=sys.stderr)
rng = np.random.default_rng(0)
img = rng.normal(size=(24, 8, 8, 3)); img2 = rng.normal(size=(10, 8, 8, 3)); vec = rng.normal(size=(30, 12))
archs = {"fcn": (nbk.fcn(3, 8), vec, vec[:7]),
         "cnn-vec": (nbk.cnn(3, 8), img, img2), "cnn-gap": (nbk.cnn(2, 8, readout="gap"), img, img2),
         "lcn-vec": (nbk.cnn(2, 8, weight_sharing=False), img, img2),
         "lcn-gap": (nbk.cnn(2, 8, readout="gap", weight_sharing=False), img, img2),
         "std-gap": (nbk.cnn(2, 8, readout="gap", parameterization="standard"), img, img2),
         "circ-erf": (nbk.serial(nbk.Conv(4, (3, 2), padding="CIRCULAR"), nbk.Erf(), nbk.Conv(4, (2, 3), strides=(2, 1)),
                                 nbk.Relu(), nbk.GlobalAvgPool(), nbk.Dense(1)), img, img2)}
out = {}
for name, (a, x, x2) in archs.items():
    for dt in ("float32", "float64"):
        for bs in (None, 5):
            k = a.kernel(x, dtype=dt, batch_size=bs, progress=False); k2 = a.kernel(x2, x, dtype=dt, batch_size=bs, progress=False)
            for g in ("nngp", "ntk"):
                out[f"{name}-{dt}-{bs}-sym-{g}"] = getattr(k, g); out[f"{name}-{dt}-{bs}-cross-{g}"] = getattr(k2, g)
np.savez(sys.argv[2], **out)
print(len(out), "arrays", file=sys.stderr)
