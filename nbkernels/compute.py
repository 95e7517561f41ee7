"""Big kernels: blocks spread over every device and host, written to a resumable store on disk.

    python -m nbkernels.compute --arch cnn-gap --depth 8 --dataset cifar10 --n-train 50000 --out DIR

The kernel is cut into ``batch_size x batch_size`` blocks (only those on and above the diagonal for
the symmetric train-train kernel). Each round takes one block per local device, stacks them along a
leading axis sharded over ``jax.local_devices()`` (``jax.sharding``), and runs the same per-layer XLA
programs as :meth:`Architecture.kernel` under ``vmap``, so every device computes its own block. After
``jax.distributed.initialize()`` each process takes the blocks whose index modulo
``jax.process_count()`` is its ``jax.process_index()`` and writes them to the shared store.

The store is a folder with ``manifest.json`` (architecture, shapes, dtype, block size, data
fingerprints) and one ``.npy`` file per block, written to a temporary name and renamed, its SHA-256
kept beside it. Run the command again after an interruption (even ``kill -9``): blocks already on
disk are verified and kept, a block whose checksum fails is recomputed, only missing blocks are
computed. ``load(DIR)`` assembles the matrices for notebooks.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import sys
import time
from pathlib import Path

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from tqdm.auto import tqdm

from . import cache as cache_mod
from . import kernels as K
from .architecture import Architecture, _jitted_block_fn

_FORMAT = "nbkernels-blockstore-1"


def sharded_blocks(arch: Architecture, x1_blocks, x2_blocks, get=("nngp", "ntk"), devices=None):
    """Kernels of D blocks at once: inputs (D, b, ...) sharded over ``devices``; returns [(nngp, ntk)] * D."""
    devices = list(devices or jax.local_devices())
    d = x1_blocks.shape[0]
    if d % len(devices):
        raise ValueError(f"{d} blocks do not divide over {len(devices)} devices.")
    mesh = Mesh(np.array(devices), ("blocks",))
    sharding = NamedSharding(mesh, PartitionSpec("blocks"))
    a = jax.device_put(x1_blocks, sharding)
    b = jax.device_put(x2_blocks, sharding)
    k = _jitted_block_fn(arch, tuple(get), batched=True)(a, b)
    nngp = np.asarray(k[0])
    ntk = None if k[1] is None else np.asarray(k[1])
    return [(nngp[i], None if ntk is None else ntk[i]) for i in range(d)]


class BlockStore:
    """A kernel on disk, block by block; see the module docstring."""

    def __init__(self, root):
        self.root = Path(root)

    @property
    def manifest_path(self):
        return self.root / "manifest.json"

    def manifest(self):
        return json.loads(self.manifest_path.read_text())

    def create(self, manifest: dict):
        self.root.mkdir(parents=True, exist_ok=True)
        if self.manifest_path.exists():
            old = self.manifest()
            if {k: v for k, v in old.items() if k != "created"} != {k: v for k, v in manifest.items() if k != "created"}:
                raise ValueError(f"{self.root} already holds a different kernel (its manifest differs): "
                                 "choose another --out folder or delete this one.")
            return
        _atomic_write(self.manifest_path, json.dumps(manifest, indent=1).encode())

    def _path(self, name, i, j):
        return self.root / "blocks" / f"{name}_{i:06d}_{j:06d}.npy"

    def write(self, name, i, j, array):
        buf = io.BytesIO()
        np.save(buf, array, allow_pickle=False)
        payload = buf.getvalue()
        path = self._path(name, i, j)
        path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(path.with_suffix(".sha256"), hashlib.sha256(payload).hexdigest().encode())
        _atomic_write(path, payload)

    def read(self, name, i, j):
        """The block, or None when it is missing or its checksum fails."""
        path = self._path(name, i, j)
        try:
            payload = path.read_bytes()
            digest = path.with_suffix(".sha256").read_text().strip()
        except FileNotFoundError:
            return None
        if hashlib.sha256(payload).hexdigest() != digest:
            return None
        return np.load(io.BytesIO(payload), allow_pickle=False)

    def status(self, name, i, j):
        """'ok', 'missing' or 'corrupt'."""
        path = self._path(name, i, j)
        if not path.exists():
            return "missing"
        return "ok" if self.read(name, i, j) is not None else "corrupt"


def _atomic_write(path: Path, payload: bytes):
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    with open(tmp, "wb") as f:
        f.write(payload)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def plan(n1, n2, b, symmetric):
    return [(i, j) for i in range(0, n1, b) for j in range(0, n2, b) if not symmetric or j >= i]


def compute_store(arch: Architecture, x1, x2, out, *, batch_size=None, dtype=None, get=("nngp", "ntk"),
                  progress=True, devices=None):
    """Compute every missing or corrupt block of the kernel into the store at ``out``; returns counts."""
    dtype = K.resolve_dtype(dtype)
    symmetric = x2 is None
    x1 = np.asarray(x1, dtype)
    x2 = x1 if symmetric else np.asarray(x2, dtype)
    arch.specs(x1.shape[1:])
    n1, n2 = len(x1), len(x2)
    devices = list(devices or jax.local_devices())
    b = batch_size or K.fit_batch_size(max(n1, n2), K.bytes_per_pair(arch.kernel_entries_per_pair(x1.shape[1:]),
                                                                       dtype.itemsize, "ntk" in get),
                                        K.block_budget() // max(1, len(devices)))
    b = min(b, max(n1, n2))
    store = BlockStore(out)
    store.create(dict(format=_FORMAT, arch=repr(arch), n1=n1, n2=n2, symmetric=symmetric, batch_size=b,
                      dtype=dtype.name, get=list(get), x1=cache_mod.fingerprint(x1),
                      x2=None if symmetric else cache_mod.fingerprint(x2), created=time.time()))
    blocks = plan(n1, n2, b, symmetric)
    mine = [blk for n, blk in enumerate(blocks) if n % jax.process_count() == jax.process_index()]
    states = {blk: store.status("nngp", *blk) for blk in mine}
    corrupt = [blk for blk, s in states.items() if s == "corrupt"]
    todo = [blk for blk, s in states.items() if s != "ok"]
    if corrupt:
        print(f"nbkernels.compute: {len(corrupt)} block(s) failed their checksum and will be recomputed: "
              f"{corrupt[:5]}{' ...' if len(corrupt) > 5 else ''}", file=sys.stderr)

    def pad(x, start):
        blk = x[start:start + b]
        return np.concatenate([blk, np.repeat(blk[-1:], b - len(blk), 0)]) if len(blk) < b else blk

    d = len(devices)
    with tqdm(total=len(mine), initial=len(mine) - len(todo), desc="kernel blocks", unit="block",
              disable=not progress) as bar:
        for r in range(0, len(todo), d):
            group = todo[r:r + d]
            group_padded = group + [group[-1]] * (d - len(group))
            xa = np.stack([pad(x1, i) for i, _ in group_padded])
            xb = np.stack([pad(x2, j) for _, j in group_padded])
            results = sharded_blocks(arch, xa, xb, get, devices)
            for (i, j), (nngp, ntk) in zip(group, results):
                m1, m2 = min(b, n1 - i), min(b, n2 - j)
                store.write("nngp", i, j, nngp[:m1, :m2])
                if ntk is not None:
                    store.write("ntk", i, j, ntk[:m1, :m2])
                bar.update(1)
    return dict(blocks=len(blocks), computed=len(todo), recomputed_corrupt=len(corrupt), batch_size=b)


def load(out) -> K.Kernel:
    """Assemble the kernel stored at ``out`` (every block must be present and intact)."""
    store = BlockStore(out)
    man = store.manifest()
    n1, n2, b = man["n1"], man["n2"], man["batch_size"]
    mats = {}
    for name in man["get"]:
        full = np.empty((n1, n2), man["dtype"])
        for i, j in plan(n1, n2, b, man["symmetric"]):
            blk = store.read(name, i, j)
            if blk is None:
                raise ValueError(f"{out}: block {name} ({i}, {j}) is missing or corrupt; run the compute command "
                                 "again to finish it.")
            full[i:i + blk.shape[0], j:j + blk.shape[1]] = blk
            if man["symmetric"] and i != j:
                full[j:j + blk.shape[1], i:i + blk.shape[0]] = blk.T
        if man["symmetric"]:
            full = (full + full.T) / 2
        mats[name] = full
    return K.Kernel(mats["nngp"], mats.get("ntk"))


def _architecture(name, depth, width):
    from .architecture import cnn, fcn
    if name == "fc":
        return fcn(depth, width)
    if name in ("cnn-vec", "cnn-gap", "lcn"):
        return cnn(depth, width, readout="gap" if name == "cnn-gap" else "vec", weight_sharing=name != "lcn")
    raise SystemExit(f"unknown --arch {name!r}; use fc, cnn-vec, cnn-gap or lcn.")


def main(argv=None):
    ap = argparse.ArgumentParser(description="Compute a big NNGP/NTK kernel into a resumable block store.")
    ap.add_argument("--arch", default="cnn-gap")
    ap.add_argument("--depth", type=int, default=8)
    ap.add_argument("--width", type=int, default=1, help="only the standard parameterization's NTK uses it")
    ap.add_argument("--dataset", default="cifar10")
    ap.add_argument("--n-train", type=int, default=None)
    ap.add_argument("--split", default="train", choices=("train", "test-train"),
                    help="train: the symmetric train-train kernel; test-train: test rows against train columns")
    ap.add_argument("--n-test", type=int, default=None)
    ap.add_argument("--downsample", type=int, default=None, help="image side after average pooling (e.g. 8)")
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--dtype", default=None, choices=(None, "float32", "float64"))
    ap.add_argument("--nngp-only", action="store_true")
    ap.add_argument("--distributed", action="store_true", help="call jax.distributed.initialize() first")
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    if a.distributed:
        jax.distributed.initialize()
    from . import data
    ds = data.load(a.dataset, n_train=a.n_train, n_test=a.n_test)
    x_tr, _, x_te, _ = data.prepare(ds, downsample_to=a.downsample)
    arch = _architecture(a.arch, a.depth, a.width)
    x1, x2 = (x_tr, None) if a.split == "train" else (x_te, x_tr)
    t0 = time.time()
    res = compute_store(arch, x1, x2, a.out, batch_size=a.batch_size, dtype=a.dtype,
                        get=("nngp",) if a.nngp_only else ("nngp", "ntk"))
    print(f"nbkernels.compute: {res['computed']} of {res['blocks']} blocks computed "
          f"({res['recomputed_corrupt']} recomputed after a failed checksum), block size {res['batch_size']}, "
          f"{time.time() - t0:.1f} s, on {len(jax.local_devices())} device(s) -> {a.out}")
    print(json.dumps(res))


if __name__ == "__main__":
    main()
