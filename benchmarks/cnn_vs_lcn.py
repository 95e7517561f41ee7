"""Does weight sharing help narrow networks once images are larger? CNN − LCN against width (issue 33, point 2).

    NBKERNELS_DATA=../shared/data python benchmarks/cnn_vs_lcn.py --image 16 --widths 2,8,32 \\
        --n-train 1000 --steps 1500 --out cnn_vs_lcn_16.json
    python benchmarks/cnn_vs_lcn.py --figure cnn_vs_lcn_16.json     # redraw from the JSON

Notebook 10's networks and recipe at a chosen image size: depth-2 CNN-VEC and the LCN with the same
receptive fields (3x3, no pooling), centered, ``study.RECIPE`` (minibatch 100 momentum, warm-up a tenth of
the steps, cosine) at 0.3 eta_crit, ``--seeds`` networks per width and arm, each stopped at its best step on
the validation images held out of the training pool, all scored on the same test images. At each width:
CNN − LCN, a paired one-sided test with the seeds' spread in its error (:func:`nbkernels.stats.paired`).
Notebook 10's decisive test, computed here as it would be at this scale: both (1) CNN − LCN > 0 at the
narrowest width and (2) that gap larger than at the widest. The width where the gap reaches 0: the
weighted line of gap against ln(width) (``crossing.crossing``, 68% interval from 2,000 refits).
Every run goes through the results cache (an interrupted run resumes); the JSON is rewritten after each
width.
"""
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

import nbkernels as nbk
from nbkernels import stats, study

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_kernels import matmul_gflops  # noqa: E402
from crossing import crossing, device, finish_figure, seeded_arguments, split, two_panels  # noqa: E402


def main(argv=None):
    a = seeded_arguments(argv, __doc__.split("\n")[0], [("--widths", dict(default="2,8,32")),
                                                         ("--n-train", dict(type=int, default=1000))],
                         steps=1500, out="cnn_vs_lcn_cpu.json")
    widths = sorted(int(w) for w in a.widths.split(","))
    rate = matmul_gflops()
    t_start = time.perf_counter()
    sp = split(a, a.n_train)
    out_path = HERE / a.out
    record = dict(what=f"CNN-VEC against LCN, depth {a.depth}, {a.n_train:,} training images, {a.image}x{a.image} "
                       "CIFAR-10", image=a.image, depth=a.depth, widths=widths, n_train=a.n_train, steps=a.steps,
                  seeds=a.seeds, n_val=a.n_val, n_test=a.test, matmul_gflops_start=rate,
                  machine=f"{os.cpu_count()} cores", device=device(), date=time.strftime("%Y-%m-%d"), points=[])
    t0 = time.perf_counter()
    kr = study.kernel_accuracies(nbk.cnn(a.depth, 256, readout="vec"), sp.x_train, sp.y_train, sp.x_test, sp.y_test,
                                 diag_regs=[1e-3, 1e-2, 1e-1, 1.0], val=sp.val)
    record.update(ntk=100 * kr.ntk.acc, nngp=100 * kr.nngp.acc, kernel_seconds=time.perf_counter() - t0)
    recipe = study.RECIPE.replace(warmup=a.steps // 10, lr_factor=0.3, center=True).with_steps(a.steps, evaluations=15)
    results = {}
    for w in widths:
        t0 = time.perf_counter()
        for share in (True, False):
            results[share, w] = study.finite_accuracies(
                nbk.cnn(a.depth, w, readout="vec", weight_sharing=share), sp.x_train, sp.y_train, sp.x_test,
                sp.y_test, config=recipe, seeds=range(a.seeds), on_failure="report", val=sp.val)
        cnn, lcn = results[True, w], results[False, w]
        t = stats.paired(cnn.scores, lcn.scores, label=f"CNN − LCN at width {w}")
        record["points"].append(dict(
            width=w, cnn=100 * cnn.acc, cnn_se_seeds=100 * cnn.acc_se, lcn=100 * lcn.acc, lcn_se_seeds=100 * lcn.acc_se,
            cnn_seeds=[100 * x for x in cnn.seed_accs], lcn_seeds=[100 * x for x in lcn.seed_accs],
            gap=100 * t.estimate, gap_se=100 * t.se, p=t.p, df=t.df,
            failures=[f"{arm}, seed {s}: {why}" for arm, r in (("CNN", cnn), ("LCN", lcn)) for _, s, why in r.failures],
            seconds=time.perf_counter() - t0))
        pts = record["points"]
        if len(pts) >= 2:
            record["fit"] = crossing([p["width"] for p in pts], [p["gap"] for p in pts], [p["gap_se"] for p in pts])
            w0, w1 = widths[0], w
            diff = lambda v: results[True, v].scores - results[False, v].scores
            test = stats.all_of([stats.paired(results[True, w0].scores, results[False, w0].scores,
                                              label=f"CNN − LCN at width {w0}"),
                                 stats.paired(diff(w0), diff(w1), label=f"(CNN − LCN) at width {w0} − at width {w1}")],
                                label="notebook 10's decisive test at this scale")
            record["notebook10_test"] = dict(passed=bool(test.passed), parts=[
                dict(label=p.label, estimate=100 * p.estimate, se=100 * p.se, p=p.p, passed=bool(p.passed))
                for p in test.parts])
        record["wall_seconds"] = time.perf_counter() - t_start
        out_path.write_text(json.dumps(record, indent=1))
        p = pts[-1]
        print(f"width {w}: CNN {p['cnn']:.1f} ± {p['cnn_se_seeds']:.1f}, LCN {p['lcn']:.1f} ± {p['lcn_se_seeds']:.1f}; "
              f"CNN − LCN {p['gap']:+.2f} ± {p['gap_se']:.2f} (p = {p['p']:.3g}); {p['seconds']:.0f} s", flush=True)
    record["matmul_gflops_end"] = matmul_gflops()
    out_path.write_text(json.dumps(record, indent=1))
    print(f"NTK {record['ntk']:.1f}, NNGP {record['nngp']:.1f}; fit:", json.dumps(record.get("fit")),
          "\nnotebook 10's test:", json.dumps(record.get("notebook10_test")))
    figure(record, out_path.with_suffix(".png"))


def figure(record, path):
    fig, ax, bx = two_panels()
    pts = record["points"]
    w = np.array([p["width"] for p in pts])
    for arm, fmt, lab in (("cnn", "o-", "CNN (weight sharing)"), ("lcn", "s--", "LCN (no sharing)")):
        ax.errorbar(w, [p[arm] for p in pts], [p[arm + "_se_seeds"] for p in pts], fmt=fmt, capsize=3,
                    label=f"{lab}, {record['seeds']} seeds")
    ax.axhline(record["ntk"], color="gray", ls=":", label="their common NTK")
    bx.errorbar(w, [p["gap"] for p in pts], [p["gap_se"] for p in pts], fmt="o", capsize=3, label="measured")
    fit = record.get("fit")
    if fit:
        xs = np.geomspace(w.min(), w.max(), 50)
        bx.plot(xs, fit["intercept"] + fit["slope_per_doubling"] / np.log(2) * np.log(xs), "-", lw=1,
                label=f"fit: {fit['slope_per_doubling']:+.2f} points per doubling of width")
    finish_figure(fig, ax, bx, record, path, "width (channels, log scale)", "CNN − LCN (points, ± paired SE)",
                  "what weight sharing is worth")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--figure"]:
        res = HERE / sys.argv[2]
        figure(json.loads(res.read_text()), res.with_suffix(".png"))
    else:
        main()
