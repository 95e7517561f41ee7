"""At what scale would 09, 11 and 13 show? The claimed differences measured against scale, on this CPU.

    NBKERNELS_DATA=../shared/data python benchmarks/scale_trends.py [--only 13,11,09] [--out scale_trends_cpu.json]

Three findings stay "no" at `default` because their claimed difference does not clear its paired error.
This script measures each difference against the training-set size (one kernel on the largest set serves
every smaller one through its leading blocks) and against the image size, on CIFAR-10 with the
notebooks' architectures, 2,000 test images halved into validation (every choice: diag_reg, ZCA ε) and
report. Per point: the difference in points and its paired standard error (`stats.paired(...).se`,
kernels being deterministic and scored on the same images). Per curve: a straight-line fit against
log training-set size (`stats.log_trend`, the slope per doubling), whether the largest size's
difference would clear its paired error on the full 10,000-image test batch (5,000 reported, the error
scaled by sqrt(n_report / 5,000)), and where the fitted line would cross that error (from below: where
it would start to clear; from above: where it would stop). Those are extrapolations of a measured
trend, and say so.

Kernels go through the results cache (`~/.cache/nbkernels`), so an interrupted run resumes where it was;
each section is written to the JSON as it ends. Costs on 2 cores (2026-12-02): 13 about 12 min, 11 about
10, 09 about 16.

  13  CNN-GAP − CNN-VEC, depth 2, NNGP and NTK: images 4, 8 (100-800 training images), 16 (100, 200).
  11  CNN-GAP NTK ensembles over flips + 1-pixel crops, gain k = 1 -> 6 (8x8, 100-400 images) and
      k = 1 -> 4 (16x16, 100 images, 600 test); CNN-VEC at 16x16 for comparison (250-1,000 images).
  09  best ε − no ZCA (ε in 1, 0.1, 0.01, chosen on validation), depth 3: CNN-VEC at 8x8 (250-4,000
      images) and 16x16 (250-1,000), CNN-GAP at 8x8 (100-400). The ZCA is fit on the largest training
      set of each curve and serves its subsets (unlabelled pixels only).
"""
import argparse
import json
import time
from pathlib import Path

import numpy as np

import nbkernels as nbk
from nbkernels import data, predict, stats, study

HERE = Path(__file__).resolve().parent
N_TEST = 2000
FULL_REPORT = 5000  # half of CIFAR-10's 10,000 test images
REGS = [1e-4, 1e-3, 1e-2, 1e-1, 1.0]


def point(size, a_score, b_score, **extra):
    """One measured difference a − b (points) on the same reported images, with its paired error."""
    return dict(extra, n_train=int(size), diff=100 * float(np.mean(a_score) - np.mean(b_score)),
                se=100 * stats.paired(a_score, b_score).se, n_report=int(len(a_score)),
                a=100 * float(np.mean(a_score)), b=100 * float(np.mean(b_score)))


def summarize(curve):
    """The curve's fit against log training-set size, and whether and where it would show with the full
    test batch (5,000 reported images: the paired error scaled by sqrt(n_report / 5,000))."""
    pts = curve["points"]
    sizes, diff = [p["n_train"] for p in pts], [p["diff"] for p in pts]
    se_full = float(np.mean([p["se"] * np.sqrt(p["n_report"] / FULL_REPORT) for p in pts]))
    base = {k: v for k, v in curve.items() if k in ("what", "image", "kernel", "arch", "points")}
    out = dict(base, se_at_full_report=se_full, clears_at_full_report=bool(diff[-1] > se_full))
    if len(pts) >= 2:
        t = stats.log_trend(sizes, diff)
        # rising toward the level from below: where it would clear; falling from above: where it would not
        out.update(slope_per_doubling=t.slope * np.log(2), reaches_full_report_se_at=t.reaches(se_full))
    return out


def load(n_train, n_test, image, seed=0):
    """(x_train, y_train, x_test, y_test) as the notebooks prepare them."""
    return data.prepare(data.load("auto", n_train=n_train, n_test=n_test, seed=seed), downsample_to=image)


def trend_13():
    """CNN-GAP − CNN-VEC at depth 2, against training-set size and image size."""
    curves = []
    for image, sizes in [(4, [100, 200, 400, 800]), (8, [100, 200, 400, 800]), (16, [100, 200])]:
        x_tr, y_tr, x_te, y_te = load(max(sizes), N_TEST, image)
        t0 = time.perf_counter()
        res = {ro: study.kernel_curve(nbk.cnn(2, 256, readout=ro), x_tr, y_tr, x_te, y_te, sizes, diag_regs=REGS)
               for ro in ("gap", "vec")}
        for g in ("nngp", "ntk"):
            curves.append(summarize(dict(
                what=f"13: CNN-GAP − CNN-VEC {g.upper()}, depth 2, {image}x{image}", image=image, kernel=g,
                points=[point(m, res["gap"].at(m).fit(g).score, res["vec"].at(m).fit(g).score) for m in sizes])))
        print(f"13 {image}x{image}: {time.perf_counter() - t0:.0f} s; " + "; ".join(
            f"{c['kernel']} " + ", ".join(f"{p['n_train']}: {p['diff']:+.1f}±{p['se']:.1f}" for p in c["points"])
            for c in curves[-2:]), flush=True)
    return curves


def ensemble_gain(arch, x_tr, y_tr, x_te, y_te, sizes, draws, crop):
    """NTK ensemble over augmented draws of the largest training set, sliced to each size: k = 1 -> draws."""
    base = study.kernel_curve(arch, x_tr, y_tr, x_te, y_te, sizes, diag_regs=REGS)
    n_val = len(x_te) // 2
    total = {m: 0.0 for m in sizes}
    for i in range(draws):
        xa = x_tr if i == 0 else data.augment(x_tr, seed=i, flip=True, crop_padding=crop)
        k_tt = study.timed_kernel(arch, xa, None).ntk
        k_st = study.timed_kernel(arch, x_te, xa).ntk
        for m in sizes:
            total[m] = total[m] + predict.gradient_descent_mse(k_tt[:m, :m], k_st[:, :m], y_tr[:m],
                                                               diag_reg=base.at(m).ntk.diag_reg, on_precision="ignore")
    y_rep = y_te[n_val:]
    return [point(m, predict.correct(total[m][n_val:] / draws, y_rep), base.at(m).ntk.score, draws=draws,
                  diag_reg=base.at(m).ntk.diag_reg) for m in sizes]


def trend_11():
    """Kernel ensembles over flips + 1-pixel crops: the gain of k draws over the plain kernel."""
    curves = []
    for name, ro, depth, image, sizes, n_test, draws in [
            ("CNN-GAP", "gap", 2, 8, [100, 200, 400], 1000, 6),
            ("CNN-GAP", "gap", 2, 16, [100], 600, 4),
            ("CNN-VEC", "vec", 3, 16, [250, 500, 1000], 1000, 6)]:
        x_tr, y_tr, x_te, y_te = load(max(sizes), n_test, image)
        t0 = time.perf_counter()
        pts = ensemble_gain(nbk.cnn(depth, 256, readout=ro), x_tr, y_tr, x_te, y_te, sizes, draws, crop=1)
        curves.append(summarize(dict(what=f"11: {name} NTK ensemble k = 1 -> {draws}, depth {depth}, {image}x{image}",
                                     image=image, arch=name, points=pts)))
        print(f"11 {name} {image}x{image}: {time.perf_counter() - t0:.0f} s; " +
              ", ".join(f"{p['n_train']}: {p['diff']:+.1f}±{p['se']:.1f}" for p in pts), flush=True)
    return curves


def trend_09():
    """Best intermediate ZCA ε (chosen on validation) − no ZCA, against training-set size."""
    curves, eps_grid = [], [1.0, 0.1, 0.01]
    for name, ro, image, sizes in [("CNN-VEC", "vec", 8, [250, 500, 1000, 2000, 4000]),
                                   ("CNN-VEC", "vec", 16, [250, 500, 1000]),
                                   ("CNN-GAP", "gap", 8, [100, 200, 400])]:
        x_tr, y_tr, x_te, y_te = load(max(sizes), N_TEST, image)
        arch, t0 = nbk.cnn(3, 256, readout=ro), time.perf_counter()
        zca = data.ZCA(0.0).fit(x_tr)
        cases = {"none": (data.standardize_images(x_tr), data.standardize_images(x_te))}
        for e in eps_grid:
            z = zca.with_eps(e)
            cases[e] = (data.standardize_images(z.transform(x_tr)), data.standardize_images(z.transform(x_te)))
        res = {c: study.kernel_curve(arch, a, y_tr, b, y_te, sizes, diag_regs=REGS) for c, (a, b) in cases.items()}
        for g in ("nngp", "ntk"):
            pts = []
            for m in sizes:
                best = max(eps_grid, key=lambda e: res[e].at(m).fit(g).best_val)   # chosen on the validation half
                pts.append(point(m, res[best].at(m).fit(g).score, res["none"].at(m).fit(g).score, eps=best))
            curves.append(summarize(dict(what=f"09: {name} {g.upper()} best ε − no ZCA, depth 3, {image}x{image}",
                                         image=image, arch=name, kernel=g, points=pts)))
        print(f"09 {name} {image}x{image}: {time.perf_counter() - t0:.0f} s; " + "; ".join(
            f"{c['kernel']} " + ", ".join(f"{p['n_train']}: {p['diff']:+.1f}±{p['se']:.1f} (ε {p['eps']:g})" for p in c["points"])
            for c in curves[-2:]), flush=True)
    return curves


SECTIONS = {"13": trend_13, "11": trend_11, "09": trend_09}


def figure(results, path):
    import matplotlib.pyplot as plt
    from nbkernels import plots
    plots.use_style()
    fig, axes = plt.subplots(1, len(results), figsize=(5.2 * len(results), 4), squeeze=False)
    for ax, (sec, curves) in zip(axes[0], results.items()):
        for c in curves:
            x = [p["n_train"] for p in c["points"]]
            ax.errorbar(x, [p["diff"] for p in c["points"]], [p["se"] for p in c["points"]], fmt="o-", capsize=3,
                        label=c["what"].split(": ", 1)[1])
        ax.axhline(0, color="k", lw=0.7)
        ax.set_xscale("log", base=2)
        plots.log_ticks(ax, sorted({p["n_train"] for c in curves for p in c["points"]}))
        plots.label(ax, "training images (log scale)", "claimed difference (points, ± paired SE)")
        ax.set_title({"13": "13: pooling − flattening", "11": "11: augmented ensemble gain",
                      "09": "09: best ZCA ε − no ZCA"}[sec])
        ax.legend(fontsize=6.5)
    fig.suptitle("The claimed differences against scale · CIFAR-10, 2,000 test images (1,000 reported; "
                 "11's 16×16 GAP: 600) · this 2-core CPU", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", default="13,11,09", help="sections to measure, comma-separated (13, 11, 09; "
                                                       "'' re-summarizes and redraws the JSON's)")
    ap.add_argument("--out", default=str(HERE / "scale_trends_cpu.json"))
    args = ap.parse_args()
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.exists() else {}
    for sec in SECTIONS:  # earlier sections' curves re-summarized (the same points)
        if sec in results:
            results[sec] = [summarize(c) for c in results[sec]]
    out.write_text(json.dumps(results, indent=1))
    for sec in filter(None, args.only.split(",")):
        t0 = time.perf_counter()
        results[sec] = SECTIONS[sec]()
        results.setdefault("seconds", {})[sec] = round(time.perf_counter() - t0, 1)
        out.write_text(json.dumps(results, indent=1))
    drawn = {k: v for k, v in results.items() if k in SECTIONS}
    if drawn:
        figure(drawn, out.with_suffix(".png"))


if __name__ == "__main__":
    main()
