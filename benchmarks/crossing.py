"""Where do finite CNNs overtake their kernels? Learning curves of the best finite network against its NNGP
and NTK, and the fitted training-set size where the gap changes sign (issue 33, point 2).

    NBKERNELS_DATA=../shared/data python benchmarks/crossing.py --arch cnn-vec --image 16 \\
        --sizes 500,1000,2000,4000 --width 32 --steps 2000 --out crossing_cnn_vec_16.json
    NBKERNELS_DATA=../shared/data python benchmarks/crossing.py --arch cnn-vec --image 32 --grid augmented \\
        --sizes 500,1000,2000,4000 --width 32 --steps 2000 --out crossing_cnn_vec_32.json
    python benchmarks/crossing.py --figure crossing_cnn_vec_16.json     # redraw from the JSON

At each training-set size m (the first m of a class-balanced pool; every prefix is balanced):

* the kernels: one NNGP and NTK on the largest set serve every m through their leading blocks
  (:func:`nbkernels.study.kernel_curve`), each with its diagonal regularizer chosen on the validation
  images; the better of the two is chosen on validation too;
* the finite network: every grid point trained with one seed (the recipe of the notebooks,
  ``study.RECIPE``, with flips and crops scaled to the image: ``crop = image // 8``), the point with the best
  validation accuracy trained again with ``--seeds`` seeds, each stopped at its best validation step;
* the gap: finite − better kernel on the same test images, a paired one-sided test with the seeds'
  spread in its error (:func:`nbkernels.stats.paired`).

The crossing: a straight line through the gaps against ln m, weighted by their errors, and the m where it
reaches 0, with a 68% interval from refitting to gaps drawn from their errors (2,000 draws). Beyond the
largest measured m it is an extrapolation and says so. Every run goes through the results cache, so an
interrupted run resumes; the JSON is rewritten after each size.
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

import nbkernels as nbk
from nbkernels import data, formatting, stats, study

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_kernels import matmul_gflops  # noqa: E402

REGS = [1e-4, 1e-3, 1e-2, 1e-1, 1.0]


def architecture(name: str, depth: int, width: int):
    if name not in ("cnn-vec", "cnn-gap"):
        raise SystemExit(f"--arch must be cnn-vec or cnn-gap, got {name!r}.")
    return nbk.cnn(depth, width, readout="gap" if name == "cnn-gap" else "vec")


GRIDS = ("full", "augmented", "plain")


def grid_for(image: int, which: str = "full"):
    """The finite grid: the recipe's two learning rates with flips, crops and centering (the 8x8 table's best
    setting for both CNNs had all three), and (``which="full"``) the plain recipe. ``"augmented"`` leaves the
    plain recipe out where it is known to lose (CNN-VEC at 16x16: 26-27% on validation against 38-47%);
    ``"plain"`` keeps only it, where it won on validation at every size (CNN-GAP at 16x16, width 32), for a
    costlier network whose grid would not fit the session (then nothing is chosen at its own width)."""
    if which not in GRIDS:
        raise SystemExit(f"--grid must be one of {GRIDS}, got {which!r}.")
    crop = max(1, image // 8)
    augmented = [dict(lr_factor=f, flip=True, crop=crop, center=True) for f in (0.3, 1.0)]
    return {"full": augmented + [dict(lr_factor=1.0)], "augmented": augmented, "plain": [dict(lr_factor=1.0)]}[which]


def crossing(sizes, gaps, ses, draws: int = 2000, seed: int = 0):
    """Weighted least squares of gap against ln(size), and the size where the line is 0: where the finite
    network overtakes the kernel when the gap rises with size (``finite_ahead_beyond``), or falls behind it
    when it falls. A 68% interval and P(rising) from refits to gaps drawn from N(gap, se)."""
    x = np.log(np.asarray(sizes, float))
    g, s = np.asarray(gaps, float), np.asarray(ses, float)
    sw = 1 / np.maximum(s, 1e-9)

    def fit(y):
        return np.polyfit(x, y, 1, w=sw)       # slope, intercept (per unit of ln size)

    def zero(slope, intercept):
        return float(np.exp(np.clip(-intercept / slope, -50, 50))) if slope != 0 else float("inf")

    slope, intercept = fit(g)
    rng = np.random.default_rng(seed)
    boots = np.array([fit(rng.normal(g, s)) for _ in range(draws)])
    zeros = np.array([zero(*b) for b in boots])
    m0 = zero(slope, intercept)
    return dict(slope_per_doubling=float(slope * np.log(2)), intercept=float(intercept), zero_at=m0,
                finite_ahead_beyond=bool(slope > 0), p_rising=float(np.mean(boots[:, 0] > 0)),
                zero_at_68=[float(np.percentile(zeros, 16)), float(np.percentile(zeros, 84))],
                extrapolated=bool(not min(sizes) <= m0 <= max(sizes)))


def seeded_arguments(argv, description, extra, steps, out):
    """The arguments of a seeded finite-network benchmark (this one and ``cnn_vs_lcn.py``): ``extra``
    (flag, keywords) pairs, then image, depth, steps, seeds (at least 3), validation and test images, out."""
    ap = argparse.ArgumentParser(description=description)
    for flag, kw in extra:
        ap.add_argument(flag, **kw)
    ap.add_argument("--image", type=int, default=16)
    ap.add_argument("--depth", type=int, default=2)
    ap.add_argument("--steps", type=int, default=steps)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--n-val", type=int, default=1000)
    ap.add_argument("--test", type=int, default=2000)
    ap.add_argument("--out", default=out)
    a = ap.parse_args(argv)
    if a.seeds < 3:
        raise SystemExit("--seeds must be at least 3: the gap's error counts the spread over seeds.")
    return a


def device() -> str:
    """What ran a benchmark, for its record and figure: ``"this CPU"`` or the accelerator's kind."""
    import jax
    first = jax.devices()[0]
    return "this CPU" if first.platform == "cpu" else first.device_kind


def split(a, n_train: int):
    """CIFAR-10 (``NBKERNELS_DATA``) class-balanced, ``n_train`` training images, downsampled to ``a.image``."""
    ds = data.load("auto", n_train=n_train, n_val=a.n_val, n_test=a.test, seed=0)
    return data.prepare_split(ds, downsample_to=a.image)


def main(argv=None):
    a = seeded_arguments(argv, __doc__.split("\n")[0], [("--arch", dict(default="cnn-vec")),
                                                         ("--width", dict(type=int, default=32)),
                                                         ("--sizes", dict(default="500,1000,2000,4000")),
                                                         ("--grid", dict(default="full", choices=GRIDS))],
                         steps=2000, out="crossing_cpu.json")
    sizes = sorted(int(s) for s in a.sizes.split(","))
    rate = matmul_gflops()
    t_start = time.perf_counter()
    sp = split(a, max(sizes))
    out_path = HERE / a.out
    record = dict(what=f"{a.arch.upper()} depth {a.depth}: best finite (width {a.width}) against its NNGP and NTK, "
                       f"{a.image}x{a.image} CIFAR-10", arch=a.arch, image=a.image, depth=a.depth, width=a.width,
                  steps=a.steps, seeds=a.seeds, n_val=a.n_val, n_test=a.test, grid=grid_for(a.image, a.grid),
                  matmul_gflops_start=rate, machine=f"{os.cpu_count()} cores", device=device(),
                  date=time.strftime("%Y-%m-%d"), points=[])
    t0 = time.perf_counter()
    kernels = study.kernel_curve(architecture(a.arch, a.depth, 256), sp.x_train, sp.y_train, sp.x_test, sp.y_test,
                                 sizes, diag_regs=REGS, val=sp.val)
    record["kernel_seconds"] = time.perf_counter() - t0
    print(f"kernels ({a.arch}, {max(sizes)} training images): {record['kernel_seconds']:.0f} s", flush=True)
    recipe = study.RECIPE.with_steps(a.steps, evaluations=20)
    seeds = list(range(a.seeds))
    for m in sizes:
        t0 = time.perf_counter()
        net = architecture(a.arch, a.depth, a.width)
        args = (net, sp.x_train[:m], sp.y_train[:m], sp.x_test, sp.y_test)
        scan = study.finite_accuracies(*args, config=recipe, grid=grid_for(a.image, a.grid), seeds=seeds[:1], val=sp.val)
        best = study.finite_accuracies(*args, config=recipe, grid=[scan.setting], seeds=seeds, val=sp.val,
                                       on_failure="report")
        k = kernels.at(m)
        kernel = k.fit(k.better)
        test = stats.paired(best.scores, kernel.score, label=f"finite − {k.better.upper()} at {m}")
        record["points"].append(dict(
            n_train=m, finite=100 * best.acc, finite_se_seeds=100 * best.acc_se, seed_accs=[100 * x for x in best.seed_accs],
            setting=best.label, scan_val={formatting.setting_label(st): 100 * float(np.mean([r.val_acc for r in rs]))
                                          for st, rs in scan.runs},
            steps_chosen=best.steps, nngp=100 * k.nngp.acc, ntk=100 * k.ntk.acc, better=k.better,
            gap=100 * test.estimate, gap_se=100 * test.se, p=test.p, df=test.df,
            failures=[f"{lab}, seed {s}: {why}" for lab, s, why in scan.failures + best.failures],
            seconds=time.perf_counter() - t0))
        pts = record["points"]
        if len(pts) >= 2:
            record["fit"] = crossing([p["n_train"] for p in pts], [p["gap"] for p in pts], [p["gap_se"] for p in pts])
        record["wall_seconds"] = time.perf_counter() - t_start
        out_path.write_text(json.dumps(record, indent=1))
        p = pts[-1]
        print(f"m={m}: finite {p['finite']:.1f} ± {p['finite_se_seeds']:.1f} ({p['setting']}), NNGP {p['nngp']:.1f}, "
              f"NTK {p['ntk']:.1f}; gap {p['gap']:+.2f} ± {p['gap_se']:.2f} (p = {p['p']:.3g}); {p['seconds']:.0f} s",
              flush=True)
    record["matmul_gflops_end"] = matmul_gflops()
    out_path.write_text(json.dumps(record, indent=1))
    if "fit" in record:
        print("fit:", json.dumps(record["fit"]))
    figure(record, out_path.with_suffix(".png"))


def figure(record, path):
    fig, ax, bx = two_panels()
    pts = record["points"]
    m = np.array([p["n_train"] for p in pts])
    ax.errorbar(m, [p["finite"] for p in pts], [p["finite_se_seeds"] for p in pts], fmt="o-", capsize=3,
                label=f"best finite, width {record['width']}, {record['steps']:,} steps ({record['seeds']} seeds)")
    ax.plot(m, [p["nngp"] for p in pts], "s--", label="NNGP")
    ax.plot(m, [p["ntk"] for p in pts], "^:", label="NTK")
    bx.errorbar(m, [p["gap"] for p in pts], [p["gap_se"] for p in pts], fmt="o", capsize=3, label="measured")
    fit = record.get("fit")
    if fit:
        z = fit["zero_at"]
        shown = z if m.min() / 4 <= z <= m.max() * 16 else None
        xs = np.geomspace(m.min(), max(m.max(), shown or 0) * 1.2, 50)
        bx.plot(xs, fit["intercept"] + fit["slope_per_doubling"] / np.log(2) * np.log(xs), "-", lw=1,
                label=f"fit: {fit['slope_per_doubling']:+.2f} points per doubling")
        if shown:
            lo, hi = fit["zero_at_68"]
            bx.axvline(z, color="C3", ls="--", lw=1, label=f"gap = 0 at ~{z:,.0f} images (68%: {lo:,.0f}–{hi:,.0f})"
                       + (", extrapolated" if fit["extrapolated"] else ""))
    finish_figure(fig, ax, bx, record, path, "training images (log scale)",
                  "finite − better kernel (points, ± paired SE)", "the gap and where it would change sign")


def two_panels():
    """A figure of two panels side by side in the project's style: (fig, accuracy axes, gap axes)."""
    import matplotlib.pyplot as plt
    from nbkernels import plots
    plots.use_style()
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4))
    return fig, ax, bx


def finish_figure(fig, ax, bx, record, path, xlabel, gap_label, gap_title):
    """The accuracy panel ``ax`` and gap panel ``bx`` finished alike (log2 x axes, zero line, legends,
    labels, a title naming the data, scale and matmul rate) and saved to ``path``."""
    from nbkernels import plots
    bx.axhline(0, color="k", lw=0.7)
    for a_ in (ax, bx):
        a_.set_xscale("log", base=2)
        a_.legend(fontsize=7)
    plots.label(ax, xlabel, "test accuracy (%)")
    plots.label(bx, xlabel, gap_label)
    ax.set_title("accuracy"); bx.set_title(gap_title)
    fig.suptitle(f"{record['what']} · {record['n_test']:,} test images · {record['n_val']:,} validation · "
                 f"{record.get('device', 'this CPU')} ({record['matmul_gflops_start']:.0f} GFLOP/s float32 matmul)",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--figure"]:  # crossing.py --figure RESULT.json: redraw a (possibly partial) result
        res = HERE / sys.argv[2]
        figure(json.loads(res.read_text()), res.with_suffix(".png"))
    else:
        main()
