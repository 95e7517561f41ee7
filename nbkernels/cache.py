"""A content-addressed result cache on disk, so re-running a notebook is instant.

Entries are keyed by everything that determines them: a configuration (any JSON-able dict, which
should hold fingerprints of the data it used, see :func:`fingerprint`) and the version of the
function that computed them. Writes go to a temporary file that is renamed into place, so an
interrupted or concurrent run never leaves a half-written entry; every entry carries a SHA-256 of its
payload, checked on read, and a corrupt entry is recomputed with a warning.

    >>> res = nbk.cache.cached({"exp": "nngp_vs_ntk", "n": 500, "data": ds_fp}, run, version="1")

Default location ``~/.cache/nbkernels/results``; ``$NBKERNELS_CACHE`` moves it, and
``NBKERNELS_CACHE=off`` turns caching off.
"""
from __future__ import annotations

import hashlib
import json
import os
import pickle
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable, Optional, Union

import numpy as np
from numpy.typing import ArrayLike

from . import settings

_MAGIC = b"NBKCACHE1\n"


def fingerprint(x: ArrayLike) -> str:
    """A short hash of an array's values, shape and dtype (for cache keys)."""
    a = np.ascontiguousarray(np.asarray(x))
    h = hashlib.sha256()
    h.update(str((a.shape, a.dtype.str)).encode())
    h.update(a.tobytes())
    return h.hexdigest()[:20]


def _canonical(obj):
    return json.dumps(obj, sort_keys=True, default=_json_default, separators=(",", ":"))


def _json_default(o):
    if isinstance(o, (np.integer, np.floating)):
        return o.item()
    if isinstance(o, np.ndarray):
        return {"__array__": fingerprint(o)}
    return repr(o)


class CorruptEntry(Exception):
    pass


class Cache:
    """A folder of entries ``<key>.pkl``; see the module docstring."""

    def __init__(self, root: Union[str, os.PathLike, None] = None):
        env = settings.cache_dir()
        self.enabled = root is not None or env != "off"
        if root is None:
            root = Path(env) / "results" if env and env != "off" else Path.home() / ".cache" / "nbkernels" / "results"
        self.root = Path(root)

    def key(self, config: dict, version: str = "0") -> str:
        """The file name of ``config`` at ``version``: a hash of both (any JSON-able dict)."""
        return hashlib.sha256(_canonical({"config": config, "version": version}).encode()).hexdigest()[:32]

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.pkl"

    def get(self, key: str) -> Any:
        """The stored value, or raise KeyError (missing) / CorruptEntry (checksum or format wrong)."""
        path = self.path(key)
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            raise KeyError(key) from None
        if not blob.startswith(_MAGIC) or len(blob) < len(_MAGIC) + 64:
            raise CorruptEntry(f"{path}: not a cache entry")
        digest = blob[len(_MAGIC):len(_MAGIC) + 64].decode("ascii", "replace")
        payload = blob[len(_MAGIC) + 64:]
        if hashlib.sha256(payload).hexdigest() != digest:
            raise CorruptEntry(f"{path}: checksum mismatch")
        return pickle.loads(payload)

    def put(self, key: str, value: Any) -> Path:
        """Store ``value`` under ``key``, written whole or not at all (a temporary file renamed), with its checksum."""
        payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".pkl")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(_MAGIC)
                f.write(hashlib.sha256(payload).hexdigest().encode("ascii"))
                f.write(payload)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)  # atomic: readers see the old entry or the whole new one
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
        return path

    def __contains__(self, key):
        return self.path(key).exists()

    def get_or_compute(self, config: dict, compute: Callable[[], Any], version: str = "0") -> Any:
        """The cached value for (config, version), computing and storing it when absent or corrupt."""
        if not self.enabled:
            return compute()
        key = self.key(config, version)
        try:
            return self.get(key)
        except KeyError:
            pass
        except (CorruptEntry, pickle.UnpicklingError, EOFError, AttributeError, ImportError) as e:
            warnings.warn(f"nbkernels cache: entry {key} is corrupt ({e}); recomputing it.", stacklevel=2)
        value = compute()
        self.put(key, value)
        return value


_DEFAULT = None


def default_cache() -> Cache:
    global _DEFAULT
    env = settings.cache_dir()
    if _DEFAULT is None or _DEFAULT._env != env:
        _DEFAULT = Cache()
        _DEFAULT._env = env
    return _DEFAULT


def cached(config: dict, compute: Callable[[], Any], version: str = "0", cache: Optional[Cache] = None) -> Any:
    """One line for notebooks: ``res = cached(config, lambda: experiment(...), version="2")``."""
    return (cache or default_cache()).get_or_compute(config, compute, version)
