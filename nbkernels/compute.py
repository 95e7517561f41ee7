"""Big kernels: blocks spread over every device and host, written to a resumable store on disk.

    python -m nbkernels.compute --arch cnn-gap --depth 8 --dataset cifar10 --n-train 50000 --out DIR

The block engine (:mod:`nbkernels.engine`) cuts the kernel into ``batch_size x batch_size`` blocks
(only those on and above the diagonal for the symmetric train-train kernel), runs one block per local
device at a time sharded over ``jax.local_devices()``, and this module's :class:`StoreSink` writes each
finished block. With several processes (``--num-processes``, one per host) each takes the blocks whose
index modulo the process count is its process id, all writing one shared store.

The store is a folder with ``manifest.json`` (architecture, shapes, dtype, block size, data
fingerprints) and one file per block holding every field (NNGP and NTK) and their SHA-256, written to a
temporary name, flushed and renamed: a block is on disk whole or not at all, whatever instant a
``kill -9`` strikes. Run the command again after an interruption: blocks already on disk are verified
and kept, a block whose checksum fails is recomputed, only missing blocks are computed. ``load(DIR)``
assembles the matrices for notebooks into one preallocated array per field.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import io
import json
import os
import sys
import time
import zipfile
from pathlib import Path
from typing import Optional, Sequence, Union

import jax
import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from . import blocks, engine
from . import cache as cache_mod
from . import settings as settings_mod
from . import kernels as K
from .architecture import Architecture

_FORMAT = "nbkernels-blockstore-2"  # 2: one file per block with every field (1 had a file per field)


class BlockStore:
    """A kernel on disk, block by block; see the module docstring."""

    def __init__(self, root: Union[str, os.PathLike]):
        self.root = Path(root)

    @property
    def manifest_path(self) -> Path:
        return self.root / "manifest.json"

    def manifest(self) -> dict:
        """The store's manifest: what kernel it holds (architecture, inputs' fingerprints, blocks, dtype)."""
        return json.loads(self.manifest_path.read_text())

    def create(self, manifest: dict) -> None:
        """Start a store with ``manifest``, or check that the store already there holds the same kernel."""
        self.root.mkdir(parents=True, exist_ok=True)
        if self.manifest_path.exists():
            old = self.manifest()
            if old.get("format") != manifest["format"]:
                raise ValueError(f"{self.root} holds a kernel store of format {old.get('format')!r}, written by "
                                 f"another version of nbkernels (this one writes {manifest['format']!r}): "
                                 "choose another --out folder or delete this one.")
            if {k: v for k, v in old.items() if k != "created"} != {k: v for k, v in manifest.items() if k != "created"}:
                raise ValueError(f"{self.root} already holds a different kernel (its manifest differs): "
                                 "choose another --out folder or delete this one.")
            return
        _atomic_write(self.manifest_path, json.dumps(manifest, indent=1).encode())

    def path(self, i: int, j: int) -> Path:
        """The file of block ``(i, j)``."""
        return self.root / "blocks" / f"block_{i:06d}_{j:06d}.npz"

    def write(self, i: int, j: int, fields: dict) -> None:
        """All of a block's fields in one file, with the SHA-256 of their bytes, atomically."""
        arrays = {name: np.ascontiguousarray(a) for name, a in fields.items()}
        buf = io.BytesIO()
        np.savez(buf, sha256=np.frombuffer(_digest(arrays).encode(), np.uint8), **arrays)
        path = self.path(i, j)
        path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(path, buf.getvalue())

    def read(self, i: int, j: int, names: Sequence[str]) -> Optional[dict]:
        """The block's fields ``{name: array}``, or None when it is missing, incomplete or corrupt."""
        try:
            with np.load(self.path(i, j), allow_pickle=False) as f:
                arrays = {name: f[name] for name in names}
                digest = f["sha256"].tobytes().decode()
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, UnicodeDecodeError):
            return None
        return arrays if _digest(arrays) == digest else None

    def status(self, i: int, j: int, names: Sequence[str]) -> str:
        """'ok', 'missing' or 'corrupt'."""
        if not self.path(i, j).exists():
            return "missing"
        return "ok" if self.read(i, j, names) is not None else "corrupt"


def _digest(arrays: dict) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = arrays[name]
        h.update(f"{name}:{a.dtype.str}:{a.shape}".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def _atomic_write(path: Path, payload: bytes):
    """Write to a temporary name, flush it to disk, rename: readers see no file or the whole file."""
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    with open(tmp, "wb") as f:
        f.write(payload)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


@dataclasses.dataclass(frozen=True)
class StoreReport:
    """What :func:`compute_store` did: the store's blocks, this process's share, how many of those it
    computed (missing or corrupt ones), how many failed their checksum, and the block side."""
    blocks: int
    mine: int
    computed: int
    recomputed_corrupt: int
    batch_size: int


def compute_store(arch: Architecture, x1: ArrayLike, x2: Optional[ArrayLike], out: Union[str, os.PathLike], *,
                  batch_size: Optional[int] = None, dtype: DTypeLike = None, get: Sequence[str] = ("nngp", "ntk"),
                  progress: bool = True, devices: Optional[Sequence[jax.Device]] = None, max_hours: Optional[float] = None,
                  settings: Optional[settings_mod.Settings] = None) -> StoreReport:
    """Compute every missing or corrupt block of the kernel into the store at ``out``, resumably.

    Parameters
    ----------
    arch : Architecture
    x1, x2 : array_like
        The inputs (``x2=None``: the symmetric kernel of ``x1``).
    out : str or path
        The store's folder; a store already there must hold the same kernel.
    batch_size : int, optional
        Inputs per block side.
    dtype : dtype, optional
    get : sequence of {"nngp", "ntk"}
    progress : bool
    devices : sequence of jax.Device, optional
        The local devices that share the blocks (default: all).
    max_hours : float, optional
        None (the default here) never stops.
    settings : Settings, optional
        As :meth:`Architecture.kernel`'s.

    Returns
    -------
    StoreReport
        The store's blocks, this process's share, how many it computed and how many were corrupt.
    """
    dtype = K.resolve_dtype(dtype)
    x1 = np.asarray(x1, dtype)
    x2 = None if x2 is None else np.asarray(x2, dtype)
    arch.specs(x1.shape[1:])
    devices = list(devices or jax.local_devices())
    p = blocks.plan(arch, x1, x2, dtype=dtype, batch_size=batch_size, get=get, devices=len(devices),
                    in_memory=False, settings=settings)
    store = BlockStore(out)
    store.create(dict(format=_FORMAT, arch=repr(arch), n1=p.n1, n2=p.n2, symmetric=p.symmetric,
                      batch_size=p.batch_size, dtype=dtype.name, get=list(get), x1=cache_mod.fingerprint(x1),
                      x2=None if x2 is None else cache_mod.fingerprint(x2), created=time.time()))
    mine = engine.mine(p.blocks)  # this process's share when several write the store
    states = {blk: store.status(*blk, p.get) for blk in mine}
    corrupt = [blk for blk, state in states.items() if state == "corrupt"]
    todo = [blk for blk, state in states.items() if state != "ok"]
    if corrupt:
        print(f"nbkernels.compute: {len(corrupt)} block(s) failed their checksum and will be recomputed: "
              f"{corrupt[:5]}{' ...' if len(corrupt) > 5 else ''}", file=sys.stderr)
    computed = engine.run(arch, x1, x2, p, store, blocks=todo, devices=devices, progress=progress,
                          max_hours=max_hours, done=len(mine) - len(todo))
    return StoreReport(blocks=len(p.blocks), mine=len(mine), computed=computed, recomputed_corrupt=len(corrupt),
                       batch_size=p.batch_size)


def load(out: Union[str, os.PathLike]) -> K.Kernel:
    """Assemble the kernel stored at ``out`` into one matrix per field (every block must be present and intact;
    a symmetric kernel's lower triangle is mirrored from the upper).

    Parameters
    ----------
    out : str or path
        The store's folder.

    Returns
    -------
    Kernel
    """
    store = BlockStore(out)
    man = store.manifest()
    p = blocks.Plan(man["n1"], man["n2"], man["batch_size"], man["symmetric"], np.dtype(man["dtype"]),
                    tuple(man["get"]))
    sink = engine.MemorySink(p)
    for i, j in p.blocks:
        fields = store.read(i, j, p.get)
        if fields is None:
            raise ValueError(f"{out}: block ({i}, {j}) is missing or corrupt; run the compute command again to "
                             "finish it.")
        sink.write(i, j, fields)
    return K.Kernel(sink.out["nngp"], sink.out.get("ntk"))


def named_architecture(name: str, depth: int, width: int) -> Architecture:
    """The architecture ``--arch name`` names (fc, cnn-vec, cnn-gap, lcn) at this depth and width."""
    from .architecture import cnn, fcn
    if name == "fc":
        return fcn(depth, width)
    if name in ("cnn-vec", "cnn-gap", "lcn"):
        return cnn(depth, width, readout="gap" if name == "cnn-gap" else "vec", weight_sharing=name != "lcn")
    raise SystemExit(f"unknown --arch {name!r}; use fc, cnn-vec, cnn-gap or lcn.")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m nbkernels.compute``: the command line of :func:`compute_store` (``--help`` lists the flags)."""
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
    ap.add_argument("--distributed", action="store_true",
                    help="several processes (hosts) share the store: jax.distributed.initialize() first")
    env = settings_mod.distributed_defaults()
    ap.add_argument("--coordinator", default=env["coordinator"],
                    help="with --distributed: host:port of process 0 (default $JAX_COORDINATOR_ADDRESS, else "
                         "JAX's cluster auto-detection)")
    ap.add_argument("--num-processes", type=int, default=env["num_processes"],
                    help="with --distributed: how many processes (default $JAX_NUM_PROCESSES)")
    ap.add_argument("--process-id", type=int, default=env["process_id"],
                    help="with --distributed: this process's id, 0 .. N-1 (default $JAX_PROCESS_ID)")
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    if a.distributed:
        if (a.num_processes is None) != (a.process_id is None):
            raise SystemExit("--num-processes and --process-id go together (or set JAX_NUM_PROCESSES and "
                             "JAX_PROCESS_ID), unless JAX detects the cluster itself (give neither).")
        jax.distributed.initialize(coordinator_address=a.coordinator, num_processes=a.num_processes,
                                   process_id=a.process_id)
    from . import data
    ds = data.load(a.dataset, n_train=a.n_train, n_test=a.n_test)
    x_tr, _, x_te, _ = data.prepare(ds, downsample_to=a.downsample)
    arch = named_architecture(a.arch, a.depth, a.width)
    x1, x2 = (x_tr, None) if a.split == "train" else (x_te, x_tr)
    t0 = time.time()
    res = compute_store(arch, x1, x2, a.out, batch_size=a.batch_size, dtype=a.dtype,
                        get=("nngp",) if a.nngp_only else ("nngp", "ntk"))
    print(f"nbkernels.compute: {res.computed} of {res.blocks} blocks computed by process "
          f"{jax.process_index()} of {jax.process_count()} "
          f"({res.recomputed_corrupt} recomputed after a failed checksum), block size {res.batch_size}, "
          f"{time.time() - t0:.1f} s, on {len(jax.local_devices())} device(s) -> {a.out}")
    print(json.dumps(dataclasses.asdict(res)))


if __name__ == "__main__":
    main()
