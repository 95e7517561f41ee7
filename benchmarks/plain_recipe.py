"""Are the package's finite networks trained to their potential? The notebooks' CNN-VEC, CNN-GAP and LCN
trained two ways on the same images (issue 44, point 3):

* **package**: ``study.tune`` over its own grid (learning rate as a multiple of the network's eta_crit, L2,
  stopping step) on ``study.RECIPE`` with flips, crops and centering (the setting notebook 01 finds best),
  one seed scanning, three fresh seeds for the chosen point;
* **plain**: a practitioner's loop written here without the package's training code: Flax's own layers
  (``nn.Conv``, ``nn.ConvLocal`` as :class:`PlainLocal`, ``nn.Dense``; standard parameterization, Flax's
  default initializers, whose LeCun fan-in for ``nn.ConvLocal`` counts every position: ``plain_ablation.py``),
  Adam with linear warm-up and cosine decay, softmax cross-entropy, random flips and crops, three learning
  rates scanned with one seed, the stopping step chosen on the same validation images, three fresh seeds;
* **plain, MSE**: the same loop on the package's loss (½·mean squared error against -0.1/0.9 targets),
  which separates the loss from the rest of the recipe.

Every side reports the same test images, and the differences are paired one-sided tests with the seeds'
spread in their error (``stats.paired``). The images are notebook 01's at ``default`` (the first 1,000
of a 4,000-image class-balanced pool standardized on the pool, 1,000 validation, 10,000 test).

    NBKERNELS_DATA=../shared/data python benchmarks/plain_recipe.py --image 8 --out plain_recipe_8.json
    NBKERNELS_DATA=../shared/data python benchmarks/plain_recipe.py --image 16 --out plain_recipe_16.json

The JSON is rewritten after each network, and a rerun with the same ``--out`` keeps the networks it
already holds (same settings) and runs only the rest; every package run goes through the results cache.
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

import nbkernels as nbk
from nbkernels import data, stats, study

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_kernels import matmul_gflops  # noqa: E402
from crossing import device  # noqa: E402


class PlainLocal(nn.Module):
    """``nn.ConvLocal(features, (3, 3), padding="SAME")``: the same parameters, initializer and outputs (float32
    rounding), computed from shifted slices and one batched matrix product, about 9x faster on CPU.
    ``fan_in="flax"`` is ``nn.ConvLocal``'s default initializer, whose LeCun fan-in counts every output position
    (weights' std 1/sqrt(9·c·h·w)); ``"position"`` counts one position's receptive field (std 1/sqrt(9·c), as
    ``nn.Conv`` and the package's LCN)."""
    features: int
    fan_in: str = "flax"

    @nn.compact
    def __call__(self, x):
        n, h, w, c = x.shape
        init = nn.initializers.lecun_normal(**({} if self.fan_in == "flax" else dict(batch_axis=(0, 1))))
        k = self.param("kernel", init, (h, w, 9 * c, self.features))  # patch axis in ConvLocal's order (c, dy, dx)
        b = self.param("bias", nn.initializers.zeros, (h, w, self.features))
        k = k.reshape(h * w, c, 9, self.features).swapaxes(1, 2).reshape(h * w, 9 * c, self.features)
        xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
        patches = jnp.concatenate([xp[:, i:i + h, j:j + w] for i in range(3) for j in range(3)], -1)  # (dy, dx, c)
        y = jnp.matmul(patches.reshape(n, h * w, 9 * c).swapaxes(0, 1), k).swapaxes(0, 1)
        return y.reshape(n, h, w, self.features) + b


class PlainCNN(nn.Module):
    """Two 3x3 convolutions (shared or local weights), ReLU, then flatten or average-pool, then a dense readout.
    ``small_init``: the convolutions' weights drawn as ``nn.ConvLocal``'s default draws them (std divided by
    sqrt(h·w) against LeCun's); the LCN's default, and an option for the CNN."""
    width: int
    readout: str = "vec"
    shared: bool = True
    small_init: Optional[bool] = None   # None: as Flax's layer does (shared: LeCun; local: nn.ConvLocal's)

    @nn.compact
    def __call__(self, x):
        small = (not self.shared) if self.small_init is None else self.small_init
        for _ in range(2):
            if self.shared:
                scale = 1.0 / (x.shape[1] * x.shape[2]) if small else 1.0
                init = nn.initializers.variance_scaling(scale, "fan_in", "truncated_normal")  # lecun_normal at 1
                x = nn.Conv(self.width, (3, 3), padding="SAME", kernel_init=init)(x)
            else:
                x = PlainLocal(self.width, fan_in="flax" if small else "position")(x)
            x = nn.relu(x)
        x = x.mean((1, 2)) if self.readout == "gap" else x.reshape(len(x), -1)
        return nn.Dense(10)(x)


def flip_crop(x, key, crop):
    """Random horizontal flips and random crops of the image zero-padded by ``crop`` pixels, per image."""
    n, h, w, _ = x.shape
    k1, k2 = jax.random.split(key)
    x = jnp.where(jax.random.bernoulli(k1, 0.5, (n, 1, 1, 1)), x[:, :, ::-1], x)
    padded = jnp.pad(x, ((0, 0), (crop, crop), (crop, crop), (0, 0)))
    offsets = jax.random.randint(k2, (n, 2), 0, 2 * crop + 1)
    return jax.vmap(lambda im, o: jax.lax.dynamic_slice(im, (o[0], o[1], 0), (h, w, im.shape[-1])))(padded, offsets)


def plain_run(model, sp, lr, seed, steps, crop, loss, batch=100, evals=20, optimizer="adam"):
    """One run of the plain loop (``optimizer``: "adam", or "momentum" for SGD with heavy-ball momentum 0.9,
    the package's); returns validation accuracy, test correctness and step at the best validation evaluation."""
    labels = sp.y_train.argmax(-1)
    params = model.init(jax.random.PRNGKey(seed), sp.x_train[:1])
    schedule = optax.warmup_cosine_decay_schedule(0.0, lr, max(steps // 20, 1), steps)
    tx = optax.adam(schedule) if optimizer == "adam" else optax.sgd(schedule, momentum=0.9)
    opt = tx.init(params)

    def objective(p, x, y, yv):
        out = model.apply(p, x)
        if loss == "xent":
            return optax.softmax_cross_entropy_with_integer_labels(out, y).mean()
        return 0.5 * jnp.mean((out - yv) ** 2)

    @jax.jit
    def step(p, o, i, key):
        idx = jax.random.choice(jax.random.fold_in(key, i), len(sp.x_train), (batch,), replace=False)
        x = flip_crop(jnp.asarray(sp.x_train)[idx], jax.random.fold_in(key, -i - 1), crop)
        g = jax.grad(objective)(p, x, jnp.asarray(labels)[idx], jnp.asarray(sp.y_train)[idx])
        u, o = tx.update(g, o, p)
        return optax.apply_updates(p, u), o

    predict = jax.jit(lambda p, x: model.apply(p, x).argmax(-1))
    key = jax.random.PRNGKey(10_000 + seed)
    best = (-1.0, None, 0)
    every = max(steps // evals, 1)
    for i in range(steps):
        params, opt = step(params, opt, i, key)
        if (i + 1) % every == 0 or i + 1 == steps:
            val = float(np.mean(np.asarray(predict(params, sp.x_val)) == sp.y_val.argmax(-1)))
            if val > best[0]:
                best = (val, params, i + 1)
    right = np.asarray(predict(best[1], sp.x_test)) == sp.y_test.argmax(-1)
    return dict(val_acc=best[0], correct=right.astype(float), step=best[2])


def plain_arm(model, sp, lrs, seeds, steps, crop, loss, optimizer="adam", grow=0):
    """Scan ``lrs`` with seed 0, choose on validation, train the choice with fresh ``seeds``; a choice at an
    edge of the scan grows it by a factor 3 past that edge, ``grow`` times at most."""
    scan, new = {}, sorted(lrs)
    for _ in range(grow + 1):
        scan.update({lr: plain_run(model, sp, lr, 0, steps, crop, loss, optimizer=optimizer)["val_acc"] for lr in new})
        scan = dict(sorted(scan.items()))
        lr = max(scan, key=scan.get)
        if min(scan) < lr < max(scan):
            break
        new = [lr / 3 if lr == min(scan) else lr * 3]
    runs = [plain_run(model, sp, lr, s, steps, crop, loss, optimizer=optimizer) for s in seeds]
    return dict(scan_val=scan, lr=lr, inside=min(scan) < lr < max(scan), budget_bound=any(r["step"] == steps for r in runs),
                val_acc=float(np.mean([r["val_acc"] for r in runs])), stop_steps=[r["step"] for r in runs],
                scores=np.stack([r["correct"] for r in runs]))


NETS = {"cnn-vec": dict(readout="vec", shared=True), "cnn-gap": dict(readout="gap", shared=True),
        "lcn": dict(readout="vec", shared=False)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--image", type=int, default=8)
    ap.add_argument("--archs", default="cnn-vec,cnn-gap,lcn")
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--pool", type=int, default=4000, help="training pool loaded and standardized (01 loads 4,000)")
    ap.add_argument("--n-train", type=int, default=1000)
    ap.add_argument("--n-val", type=int, default=1000)
    ap.add_argument("--test", type=int, default=10000)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--lrs", default="0.001,0.003,0.01", help="the plain loop's Adam learning rates")
    ap.add_argument("--out", default="plain_recipe_cpu.json")
    a = ap.parse_args(argv)
    rate = matmul_gflops()
    ds = data.load("auto", n_train=a.pool, n_val=a.n_val, n_test=a.test, seed=0)
    sp = data.prepare_split(ds, downsample_to=a.image)
    sp = data.Split(sp.x_train[:a.n_train], sp.y_train[:a.n_train], sp.x_val, sp.y_val, sp.x_test, sp.y_test)
    crop = max(a.image // 8, 1)
    seeds = [1, 2, 3]
    lrs = [float(v) for v in a.lrs.split(",")]
    record = dict(what=f"package tuned arm vs a plain practitioner's loop, {a.image}x{a.image} CIFAR-10, width {a.width}",
                  image=a.image, width=a.width, n_train=a.n_train, n_val=a.n_val, n_test=a.test, steps=a.steps,
                  seeds=seeds, plain_lrs=lrs, matmul_gflops_start=rate, machine=f"{os.cpu_count()} cores",
                  device=device(), date=time.strftime("%Y-%m-%d"), nets={})
    out_path = HERE / a.out
    if out_path.exists():   # resume: keep the networks a run with the same settings already finished
        done = json.loads(out_path.read_text())
        same = all(done.get(k) == record[k] for k in ("image", "width", "n_train", "n_val", "n_test", "steps",
                                                       "seeds", "plain_lrs"))
        if same:
            record["nets"] = done["nets"]
            record["matmul_gflops_start"] = done["matmul_gflops_start"]
            record["resumed_matmul_gflops"] = rate
    recipe = study.RECIPE.replace(flip=True, crop=crop, center=True).with_steps(a.steps, evaluations=20)
    grid = {"lr_factor": (0.3, 1.0, 2.0), "l2": (0.0, 1e-4, 1e-3)}
    for name in a.archs.split(","):
        if name in record["nets"]:
            print(f"{name}: already in {out_path.name}", flush=True)
            continue
        t0 = time.perf_counter()
        arch = nbk.cnn(2, a.width, readout=NETS[name]["readout"], weight_sharing=NETS[name]["shared"])  # as 01 and 10
        pkg = study.tune(study.Arm(name, arch, recipe, grid), sp.x_train, sp.y_train, sp.x_test, sp.y_test, val=sp.val,
                         seeds=seeds)
        t_pkg = time.perf_counter() - t0
        model = PlainCNN(a.width, **NETS[name])
        sides = {"plain": plain_arm(model, sp, lrs, seeds, a.steps, crop, "xent")}
        t_plain = time.perf_counter() - t0 - t_pkg
        sides["plain, MSE"] = plain_arm(model, sp, lrs, seeds, a.steps, crop, "mse")
        entry = dict(package=dict(pkg.record(), test_se=pkg.test_se, label=pkg.label, seconds=t_pkg),
                     seconds=time.perf_counter() - t0)
        for side, r in sides.items():
            t = stats.paired(r["scores"], pkg.scores, label=f"{side} − package")
            entry[side] = dict(lr=r["lr"], scan_val=r["scan_val"], inside=r["inside"], budget_bound=r["budget_bound"],
                               stop_steps=r["stop_steps"], val_acc=r["val_acc"], test_acc=float(r["scores"].mean()),
                               minus_package=100 * t.estimate, se=100 * t.se, p=t.p)
        entry["plain_seconds"] = t_plain
        record["nets"][name] = entry
        record["matmul_gflops_end"] = matmul_gflops()
        out_path.write_text(json.dumps(record, indent=1))
        print(f"{name}: package {100 * pkg.test_acc:.1f} ({pkg.label}); " + "; ".join(
            f"{s} {entry[s]['test_acc'] * 100:.1f} (lr {entry[s]['lr']:g}), {entry[s]['minus_package']:+.2f} ± "
            f"{entry[s]['se']:.2f}, p = {entry[s]['p']:.3g}" for s in sides), flush=True)


if __name__ == "__main__":
    main()
