"""Training runs under one code version, for a bitwise before/after comparison of a refactor of
``nbkernels.train`` (issue 44, point 1), as ``bit_identity.py`` is for the kernels. Run it under each version
and compare:

    python benchmarks/bit_identity_train.py /path/to/old/checkout old.npz
    python benchmarks/bit_identity_train.py . new.npz
    python benchmarks/bit_identity_train.py --compare old.npz new.npz

Each case is a training run through the keyword interface both versions accept (``train(arch, ...,
**options)``, no cache), covering every path of the loop: full batch and minibatches, momentum, schedules,
augmentation with centering, an unrolled ensemble, layer-wise L2 on a standard network, a linearized network,
validation with and without the test curve, the plateau stop, a diverging run, and a run interrupted and
resumed from its checkpoint. Every array a ``TrainResult`` carries is saved.
"""
import sys
import tempfile

import numpy as np

if sys.argv[1] == "--compare":
    a, b = np.load(sys.argv[2]), np.load(sys.argv[3])
    assert set(a.files) == set(b.files), sorted(set(a.files) ^ set(b.files))
    diff = [k for k in a.files if (a[k].dtype, a[k].shape, a[k].tobytes()) != (b[k].dtype, b[k].shape, b[k].tobytes())]
    print(f"{len(a.files)} arrays, {len(a.files) - len(diff)} bit-identical; differ: {diff[:10]}")
    sys.exit(1 if diff else 0)
sys.path.insert(0, sys.argv[1])
import nbkernels as nbk  # noqa: E402
from nbkernels import cache, data, train  # noqa: E402

print(nbk.__file__, file=sys.stderr)
rng = np.random.default_rng(0)
img, img_te, img_va = (rng.normal(size=(n, 8, 8, 3)).astype(np.float32) for n in (60, 30, 20))
vec, vec_te, vec_va = (rng.normal(size=(n, 12)).astype(np.float32) for n in (60, 30, 20))
y, y_te, y_va = (data.one_hot(rng.integers(0, 10, n)) for n in (60, 30, 20))
fcn, cnn, gap = nbk.fcn(2, 16), nbk.cnn(2, 4), nbk.cnn(1, 4, readout="gap")
std = nbk.fcn(2, 16, parameterization="standard")
V = dict(x_val=vec_va, y_val=y_va)
VI = dict(x_val=img_va, y_val=y_va)
RECIPE = dict(optimizer="momentum", batch_size=20, schedule="cosine", warmup=5)
CASES = {
    "fcn-full-batch": (fcn, vec, vec_te, dict(steps=30, lr_factor=0.5, eval_every=10)),
    "fcn-minibatch-recipe": (fcn, vec, vec_te, dict(steps=40, lr_factor=0.3, eval_every=10, **RECIPE, **V)),
    "fcn-center-ensemble": (fcn, vec, vec_te, dict(steps=20, lr_factor=0.9, center=True, ensemble=3, eval_every=5)),
    "std-layerwise-l2": (std, vec, vec_te, dict(steps=30, lr_factor=0.5, l2=1e-3, l2_mode="layerwise", eval_every=10, **V)),
    "fcn-linearized": (fcn, vec, vec_te, dict(steps=20, lr=0.5, linearize=True, eval_every=10)),
    "fcn-step-plateau": (fcn, vec, vec_te, dict(steps=200, lr_factor=0.9, schedule="step", plateau=2, eval_every=5, **V)),
    "fcn-diverges": (fcn, vec, vec_te, dict(steps=30, lr_factor=40.0, eval_every=5)),
    "cnn-augment-center": (cnn, img, img_te, dict(steps=30, lr_factor=0.5, flip=True, crop=1, center=True,
                                                  eval_every=10, **RECIPE, **VI)),
    "cnn-no-test-curve": (cnn, img, img_te, dict(steps=30, lr_factor=0.5, eval_every=5, test_curve=False, **RECIPE, **VI)),
    "gap-ensemble-l2": (gap, img, img_te, dict(steps=20, lr_factor=0.5, l2=1e-4, ensemble=2, eval_every=10, **RECIPE)),
}


def arrays(name, r):
    out = {f"{name}/learning_rate": np.float64(r.learning_rate), f"{name}/eta_crit": np.float64(r.eta_crit or np.nan),
           f"{name}/failure": np.array(r.failure or ""), f"{name}/test_pred": r.test_pred,
           f"{name}/member_test_pred": r.member_test_pred}
    out.update({f"{name}/history/{k}": np.asarray(v) for k, v in r.history.items()})
    for field in ("eval_correct", "chosen_correct"):
        if getattr(r, field) is not None:
            out[f"{name}/{field}"] = np.asarray(getattr(r, field))
    if r.has_validation:
        out[f"{name}/chosen_step"] = np.int64(r.chosen_step)
        out[f"{name}/test_correct"] = np.asarray(r.test_correct)
    return out


saved = {}
for name, (arch, x, xt, kw) in CASES.items():
    yt = y_te[:len(xt)]
    saved.update(arrays(name, train.train(arch, x, y, xt, yt, cache=False, progress=False, seed=1, **kw)))


class Stop(Exception):
    pass


def stop_at(k):
    def cb(step, loss):
        if step == k:
            raise Stop
    return cb


with tempfile.TemporaryDirectory() as tmp:  # interrupted at step 17 of 40, resumed from the step-10 checkpoint
    store = cache.Cache(tmp)
    kw = dict(steps=40, lr_factor=0.3, eval_every=5, test_curve=False, **RECIPE, **VI)
    try:
        train.train(cnn, img, y, img_te, y_te, cache=store, checkpoint_every=10, callback=stop_at(17), progress=False, **kw)
    except Stop:
        pass
    saved.update(arrays("cnn-resumed", train.train(cnn, img, y, img_te, y_te, cache=store, checkpoint_every=10,
                                                   progress=False, **kw)))
np.savez(sys.argv[2], **saved)
print(f"{len(saved)} arrays from {len(CASES) + 1} runs -> {sys.argv[2]}")
