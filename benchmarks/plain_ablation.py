"""Why does the plain loop's LCN beat the package's (``plain_recipe_8.json``: +1.40 ± 0.37 points on the same
loss)? The plain loop of ``plain_recipe.py`` on mean squared error, with two of its differences from the package
crossed, for each of the three networks (issue 44, point 3):

* **initialization**: per-position LeCun (weights' std 1/sqrt(9·c), the package's scale up to W_std, and
  ``nn.Conv``'s) or small (std divided by sqrt(h·w): what ``nn.ConvLocal``'s default initializer draws, because
  its fan-in counts every output position; the plain LCN of ``plain_recipe.py`` was initialized so);
* **optimizer**: Adam, or SGD with momentum 0.9 (the package's), each with warm-up and cosine decay.

Each arm scans its learning rates with seed 0 (a grid chosen at its edge grows by a factor 3, twice at most),
stops at the best of 20 validation evaluations, and trains the choice with seeds 1-3; every arm is paired on
the same 10,000 test images with the arm nearest the package (LeCun, momentum). Diagnostic, not a verdict.

    NBKERNELS_DATA=../shared/data python benchmarks/plain_ablation.py --image 8 --out plain_ablation_8.json
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from nbkernels import data, stats

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_kernels import matmul_gflops  # noqa: E402
from crossing import device  # noqa: E402
from plain_recipe import NETS, PlainCNN, plain_arm  # noqa: E402

LRS = {"adam": (0.0003, 0.001, 0.003, 0.01), "momentum": (0.03, 0.1, 0.3, 1.0)}
REFERENCE = "lecun, momentum"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--image", type=int, default=8)
    ap.add_argument("--archs", default="cnn-vec,cnn-gap,lcn")
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--out", default="plain_ablation_cpu.json")
    a = ap.parse_args(argv)
    rate = matmul_gflops()
    ds = data.load("auto", n_train=4000, n_val=1000, n_test=10000, seed=0)   # plain_recipe.py's images
    sp = data.prepare_split(ds, downsample_to=a.image)
    sp = data.Split(sp.x_train[:1000], sp.y_train[:1000], sp.x_val, sp.y_val, sp.x_test, sp.y_test)
    crop, seeds = max(a.image // 8, 1), [1, 2, 3]
    out_path = HERE / a.out
    record = dict(what=f"plain loop (MSE) ablation: initialization x optimizer, {a.image}x{a.image} CIFAR-10, "
                       f"width {a.width}", image=a.image, width=a.width, steps=a.steps, seeds=seeds,
                  lrs={k: list(v) for k, v in LRS.items()}, reference=REFERENCE, matmul_gflops_start=rate,
                  machine=f"{os.cpu_count()} cores", device=device(), date=time.strftime("%Y-%m-%d"), nets={})
    if out_path.exists():   # resume: keep the networks already finished with the same settings
        done = json.loads(out_path.read_text())
        if all(done.get(k) == record[k] for k in ("image", "width", "steps", "seeds", "lrs")):
            record["nets"], record["matmul_gflops_start"] = done["nets"], done["matmul_gflops_start"]
    for name in a.archs.split(","):
        if name in record["nets"]:
            continue
        t0, arms = time.perf_counter(), {}
        for init in ("lecun", "small"):
            for opt in ("momentum", "adam"):
                model = PlainCNN(a.width, **NETS[name], small_init=init == "small")
                t1 = time.perf_counter()
                r = plain_arm(model, sp, LRS[opt], seeds, a.steps, crop, "mse", optimizer=opt, grow=2)
                r["scan_val"] = {f"{k:g}": v for k, v in r["scan_val"].items()}
                arms[f"{init}, {opt}"] = dict(r, seconds=time.perf_counter() - t1)
                print(name, init, opt, f"{100 * arms[f'{init}, {opt}']['scores'].mean():.2f}",
                      arms[f"{init}, {opt}"]["lr"], flush=True)
        ref = arms[REFERENCE]["scores"]
        entry = {}
        for arm, r in arms.items():
            scores = r.pop("scores")
            e = dict(r, test_acc=float(scores.mean()), test_se=float(scores.mean(1).std(ddof=1) / np.sqrt(len(seeds))))
            if arm != REFERENCE:
                t = stats.paired(scores, ref, label=f"{arm} − {REFERENCE}")
                e.update(minus_reference=100 * t.estimate, se=100 * t.se, p=t.p)
            entry[arm] = e
        record["nets"][name] = dict(arms=entry, seconds=time.perf_counter() - t0)
        record["matmul_gflops_end"] = matmul_gflops()
        out_path.write_text(json.dumps(record, indent=1))
        print(name, json.dumps({k: round(100 * v["test_acc"], 2) for k, v in entry.items()}), flush=True)


if __name__ == "__main__":
    main()
