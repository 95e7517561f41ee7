"""The prepared GPU run: notebooks at the `gpu` preset on one lent GPU, their verdicts and figures back.

The GPU machine reaches no network and takes at most 64 MiB of carried files, so everything it needs
beyond its own image (JAX with CUDA, Flax, Optax, NumPy, SciPy, scikit-learn, Matplotlib, tqdm) is
packed here first: the class-balanced CIFAR-10 subset of ``nbkernels.notebook.GPU_DATA`` (every
notebook's `gpu` preset fits in it; tests/test_presets.py checks) in the official layout, xz-compressed,
and the pure-Python wheels the notebooks import (IPython, ipywidgets and theirs).

    # here, with the project venv and the registry (once): .gpu/ is git-ignored (.gitignore), so it is carried
    .venv/bin/python benchmarks/gpu_run.py pack
    # on the device: the `device` tool's run, with carry=[".gpu"] and timeout_s=600
    python3 benchmarks/gpu_run.py run --minutes 8 --jobs 3 13 09 11 01 10
    # or benchmark scripts (issue 33's curves where the CPU stops), alone or beside notebooks:
    python3 benchmarks/gpu_run.py run --minutes 9 --jobs 3 --bench "crossing.py --arch cnn-gap --image 32 \\
        --width 128 --steps 4000 --sizes 250,500,1000 --out crossing_cnn_gap_32.json" --bench ...
    # (benchmarks/README.md, "What the lent GPU should run first", has the whole command)
    # back here: the results into figures/gpu-<gpu>/ and benchmarks/gpu-<gpu>/ (committed), the wall times
    .venv/bin/python benchmarks/gpu_run.py unpack <files_at>/gpu_results.tar.gz

``run`` executes each notebook's percent source (``notebooks/src/NN_*.py``, the same cells nbval runs)
as a script with ``NBKERNELS_PRESET=gpu``, ``jobs`` at a time on the one GPU (XLA allocates on demand,
so they share its memory), and stops any still running at the deadline: what finished comes back in
``$OUT/gpu_results.tar.gz`` (figures/<notebook>/ with verdict.json, one log per notebook) and
``$OUT/summary.json`` (per notebook: return code, wall seconds, the verdict's numbers). A ``--bench`` job
runs ``benchmarks/<script>`` with its arguments in the same environment; its ``--out`` JSON (rewritten by
those scripts after every point, so a run stopped at the deadline still brings back what it measured) and
figure come back under ``gpu_results/benchmarks/``.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACK = REPO / ".gpu"
# What the notebooks import that the device image lacks (pure Python; the image has psutil, pygments
# and typing_extensions). Versions as in the project venv on 2026-12-02.
WHEELS = ["ipython==9.18.1", "ipython-pygments-lexers==1.1.1", "jedi==0.20.1", "parso==0.8.7",
          "matplotlib-inline==0.2.2", "pexpect==4.9.0", "ptyprocess==0.7.0", "prompt-toolkit==3.0.53",
          "wcwidth==0.9.4", "stack-data==0.6.3", "asttokens==3.0.2", "executing==2.3.0", "pure-eval==0.2.4",
          "traitlets==5.16.1", "ipywidgets==8.1.9", "comm==0.2.3", "widgetsnbextension==4.0.16",
          "jupyterlab-widgets==3.0.17"]
# The findings that do not reproduce on the CPU at `default`, the engine-bound ones first.
NOT_ON_CPU = ["13", "09", "11", "01", "10"]


def pack(args):
    sys.path.insert(0, str(REPO))
    from nbkernels import data, notebook

    shutil.rmtree(PACK, ignore_errors=True)
    (PACK / "whl").mkdir(parents=True)
    staging = PACK / "staging"
    folder = data.write_subset(staging, seed=0, **notebook.GPU_DATA)
    with tarfile.open(PACK / "cifar.tar.xz", "w:xz") as tar:
        tar.add(folder, arcname=folder.name)
    shutil.rmtree(staging)
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                    "--python-version", "3.12", "--implementation", "py", "-d", str(PACK / "whl"), *WHEELS],
                   check=True)
    total = sum(p.stat().st_size for p in PACK.rglob("*") if p.is_file())
    print(f"packed {PACK}: {total / 2**20:.1f} MiB (the device takes 64 MiB with the working tree)")


def _sources(names):
    """The percent sources of the named notebooks (the report's own matching: "13", "13_cntk_depth")."""
    sys.path.insert(0, str(REPO))
    from nbkernels import report

    return [REPO / "notebooks" / "src" / f"{stem}.py" for stem in report.select_notebooks(names)]


def _jobs(args):
    """(name, command, working folder, the JSON it writes or None) of every job: the notebooks', then the
    benchmarks' (their ``--out``, in benchmarks/). Notebooks run when named, or (the default) when no
    benchmark is asked for."""
    notebooks = args.notebooks or ([] if args.bench else NOT_ON_CPU)
    jobs = [(src.stem, [sys.executable, str(src)], REPO / "notebooks", None)
            for src in (_sources(notebooks) if notebooks else [])]
    for i, spec in enumerate(args.bench):
        words = shlex.split(spec)
        script = REPO / "benchmarks" / words[0]
        if not script.exists():
            raise SystemExit(f"--bench {spec!r}: no script benchmarks/{words[0]}.")
        if "--out" not in words[:-1]:
            raise SystemExit(f"--bench {spec!r}: give the script an --out file, so its results can come back.")
        out = REPO / "benchmarks" / words[words.index("--out") + 1]
        jobs.append((f"bench{i}_{script.stem}", [sys.executable, str(script), *words[1:]], REPO / "benchmarks", out))
    return jobs


def run(args):
    queue = _jobs(args)  # a wrong job stops here, before anything is installed
    outputs = {name: out for name, _, _, out in queue if out is not None}
    out = Path(os.environ.get("OUT") or args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(args.work)
    site, data_root, results = work / "site", work / "data", work / "results"
    for p in (site, data_root, results):
        p.mkdir(parents=True, exist_ok=True)
    wheels = sorted((PACK / "whl").glob("*.whl"))
    if wheels:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
                        "--no-cache-dir", "--upgrade", "--target", str(site), *map(str, wheels)], check=True)
    if (PACK / "cifar.tar.xz").exists():
        with tarfile.open(PACK / "cifar.tar.xz") as tar:
            tar.extractall(data_root, filter="data")
    env = dict(os.environ, NBKERNELS_PRESET=args.preset, NBKERNELS_STATIC_WIDGETS="1", MPLBACKEND="Agg",
               NBKERNELS_FIGURES=str(results / "figures"),  # each notebook writes figures/<its name>/
               NBKERNELS_DATA=str(data_root), NBKERNELS_CACHE=str(work / "cache"),
               XLA_PYTHON_CLIENT_PREALLOCATE="false", PYTHONUNBUFFERED="1",
               PYTHONPATH=os.pathsep.join([str(REPO), str(site), os.environ.get("PYTHONPATH", "")]))
    probe = subprocess.run([sys.executable, "-c", "import jax; print(jax.__version__, jax.devices())"],
                           env=env, capture_output=True, text=True)
    device = (probe.stdout or probe.stderr).strip()
    print("device:", device, flush=True)
    deadline = time.time() + 60 * args.minutes
    running, done = {}, {}
    while queue or running:
        while queue and len(running) < args.jobs and time.time() < deadline:
            name, cmd, cwd, _ = queue.pop(0)
            log = open(results / f"{name}.log", "w")
            proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
            running[name] = (proc, time.time(), log)
            print(f"started {name}", flush=True)
        if time.time() >= deadline:
            for name, (proc, t0, log) in running.items():
                proc.kill()
                proc.wait()
                done[name] = dict(rc="stopped at the deadline", wall_s=round(time.time() - t0))
            running = {}
            done.update({job[0]: dict(rc="not started: no time left") for job in queue})
            queue = []
            break
        for name, (proc, t0, log) in list(running.items()):
            if proc.poll() is not None:
                log.close()
                done[name] = dict(rc=proc.returncode, wall_s=round(time.time() - t0))
                print(f"finished {name}: rc {proc.returncode}, {done[name]['wall_s']} s", flush=True)
                del running[name]
        time.sleep(2)
    for name, row in done.items():
        out_json = outputs.get(name)
        if out_json is not None:  # a benchmark: its JSON and figure, as far as it got
            got = [p for p in (out_json, out_json.with_suffix(".png")) if p.exists()]
            (results / "benchmarks").mkdir(exist_ok=True)
            for p in got:
                shutil.copy(p, results / "benchmarks" / p.name)
            row.update(outputs=[p.name for p in got])
            continue
        v = results / "figures" / name / "verdict.json"
        if v.exists():
            verdict = json.loads(v.read_text())
            row.update(reproduced=verdict["reproduced"], scale=verdict.get("scale"),
                       numbers=[n for n in verdict["numbers"] if n.get("key")])
    summary = dict(device=device, preset=args.preset, minutes=args.minutes, jobs=args.jobs, notebooks=done)
    (results / "summary.json").write_text(json.dumps(summary, indent=1))
    shutil.copy(results / "summary.json", out / "summary.json")
    with tarfile.open(out / "gpu_results.tar.gz", "w:gz") as tar:
        tar.add(results, arcname="gpu_results")
    print(json.dumps(summary, indent=1))


def unpack(args):
    with tarfile.open(args.archive) as tar:
        tmp = REPO / "reports" / "gpu_unpack"
        shutil.rmtree(tmp, ignore_errors=True)
        tar.extractall(tmp, filter="data")
    summary = json.loads((tmp / "gpu_results" / "summary.json").read_text())
    gpu = args.name or ("gpu-" + ("h200" if "H200" in summary["device"] else "h100" if "H100" in summary["device"]
                                  else "unknown"))
    dest = REPO / "figures" / gpu
    dest.mkdir(parents=True, exist_ok=True)
    for nb in ((tmp / "gpu_results" / "figures").iterdir() if (tmp / "gpu_results" / "figures").is_dir() else []):
        shutil.rmtree(dest / nb.name, ignore_errors=True)
        shutil.copytree(nb, dest / nb.name)
    shutil.copy(tmp / "gpu_results" / "summary.json", dest / "summary.json")
    print(f"figures and summary -> {dest}")
    if (tmp / "gpu_results" / "benchmarks").is_dir():
        bench = REPO / "benchmarks" / gpu
        shutil.copytree(tmp / "gpu_results" / "benchmarks", bench, dirs_exist_ok=True)
        print(f"benchmark results -> {bench}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("pack", help="here: the CIFAR-10 subset and the wheels -> .gpu/")
    r = sub.add_parser("run", help="on the GPU machine: notebooks at `gpu`, results -> $OUT")
    r.add_argument("notebooks", nargs="*", help=f"two-digit numbers (default: {' '.join(NOT_ON_CPU)})")
    r.add_argument("--minutes", type=float, default=8.0, help="deadline for the whole run")
    r.add_argument("--jobs", type=int, default=3, help="notebooks at a time on the one GPU")
    r.add_argument("--work", default="/tmp/nbk_gpu", help="scratch folder there")
    r.add_argument("--preset", default="gpu", help="another preset only to try the run here (ci)")
    r.add_argument("--out", default="gpu_out", help="results folder when $OUT is not set")
    r.add_argument("--bench", action="append", default=[], metavar='"SCRIPT ARGS"',
                   help="a benchmarks/ script and its arguments, with --out (repeatable)")
    u = sub.add_parser("unpack", help="here: gpu_results.tar.gz -> figures/gpu-<gpu>/")
    u.add_argument("archive")
    u.add_argument("--name", help="folder name under figures/ (default gpu-<model>)")
    args = ap.parse_args(argv)
    {"pack": pack, "run": run, "unpack": unpack}[args.cmd](args)


if __name__ == "__main__":
    main()
