"""How to train the finite networks of the finite-versus-kernel comparisons on a CPU: the evidence.

    NBKERNELS_DATA=../shared/data python benchmarks/recipe_finite.py [--steps 1500] [--out recipe_cpu.json]

At the `default` scale (CIFAR-10, 8x8 images, 1,000 training images, 1,000 test images halved into
validation and report), for FCN, CNN-VEC, CNN-GAP and LCN: a ladder from the old recipe (full-batch SGD,
constant learning rate) to minibatch momentum SGD, warm-up and cosine decay, flips and crops, L2,
then a learning-rate scan of the full recipe. Every run's learning curve is kept; every choice (the
stopping step, the learning rate) is made on the validation half, and the test half is only reported.
Each architecture's NNGP and NTK on the same images give its kernel reference.
"""
import argparse
import json
import time

import numpy as np

import nbkernels as nbk
from nbkernels import data, study, train

ARCHS = {
    "FCN depth 2, width 512": nbk.fcn(2, 512),
    "CNN-VEC depth 2, width 64": nbk.cnn(2, 64, readout="vec"),
    "CNN-GAP depth 2, width 64": nbk.cnn(2, 64, readout="gap"),
    "LCN depth 2, width 16": nbk.cnn(2, 16, readout="vec", weight_sharing=False),
}


def ladder(steps):
    mb = dict(optimizer="momentum", batch_size=100)
    return {
        "full batch SGD, constant lr 0.5 eta_crit, 300 steps (the old recipe)": dict(lr_factor=0.5, steps=300),
        "minibatch 100, momentum 0.9, constant lr 0.3": dict(mb, lr_factor=0.3, steps=steps),
        "+ warm-up 100, cosine decay": dict(mb, lr_factor=0.3, steps=steps, schedule="cosine", warmup=100),
        "+ flips and 1-pixel crops": dict(mb, lr_factor=0.3, steps=steps, schedule="cosine", warmup=100, flip=True,
                                          crop=1),
        "+ L2 1e-4": dict(mb, lr_factor=0.3, steps=steps, schedule="cosine", warmup=100, flip=True, crop=1, l2=1e-4),
        "full recipe, lr 0.1": dict(mb, lr_factor=0.1, steps=steps, schedule="cosine", warmup=100, flip=True, crop=1),
        "full recipe, lr 1.0": dict(mb, lr_factor=1.0, steps=steps, schedule="cosine", warmup=100, flip=True, crop=1),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--n-train", type=int, default=1000)
    ap.add_argument("--archs", default="")
    ap.add_argument("--out", default="benchmarks/recipe_cpu.json")
    a = ap.parse_args()
    ds = data.load("auto", n_train=a.n_train, n_test=1000, seed=0)
    x_tr, y_tr, x_te, y_te = data.prepare(ds, downsample_to=8)
    (x_val, y_val), (x_rep, y_rep) = study.split_validation(x_te, y_te)
    out = dict(dataset=ds.describe(), n_train=a.n_train, n_val=len(y_val), n_report=len(y_rep), archs={})
    for name, arch in ARCHS.items():
        if a.archs and not any(s in name for s in a.archs.split(",")):
            continue
        kr = study.kernel_accuracies(arch, x_tr, y_tr, x_te, y_te, diag_regs=[1e-3, 1e-2, 1e-1, 1.0])
        entry = dict(kernels={g: dict(val=kr[g].best_val, test=kr[g].acc, diag_reg=kr[g].diag_reg)
                              for g in ("nngp", "ntk")}, runs={})
        print(f"{name}: NNGP {kr.nngp.acc:.3f} (val {kr.nngp.best_val:.3f}), NTK {kr.ntk.acc:.3f} "
              f"(val {kr.ntk.best_val:.3f})", flush=True)
        for rung, kw in ladder(a.steps).items():
            t0 = time.perf_counter()
            r = train.train(arch, x_tr, y_tr, x_rep, y_rep, x_val=x_val, y_val=y_val, seed=0, progress=False,
                            eval_every=max(kw["steps"] // 15, 1), **kw)
            sec = time.perf_counter() - t0
            entry["runs"][rung] = dict(config=kw, seconds=sec, failure=r.failure, chosen_step=r.chosen_step,
                                       val_acc=r.val_acc, test_acc=r.test_acc, final_test_acc=r.final_test_acc,
                                       curve={k: np.asarray(v).tolist() for k, v in r.history.items()})
            print(f"  {rung}: val {r.val_acc:.3f} test {r.test_acc:.3f} at step {r.chosen_step} "
                  f"(final train loss {r.history['train_loss'][-1]:.3g}), {sec:.0f} s"
                  f"{'; ' + r.failure if r.failure else ''}", flush=True)
        out["archs"][name] = entry
        with open(a.out, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
