"""Data: CIFAR-10 (official python-pickle layout) and scikit-learn's bundled digits, and preprocessing.

    >>> ds = nbk.data.load("cifar10", n_train=2000, n_test=1000)       # float32 NHWC in [0, 1]
    >>> ds = nbk.data.load("auto")                                      # CIFAR-10 if found, else digits
    >>> x_train, x_test = nbk.data.zca(ds.x_train, ds.x_test, eps=0.1)  # regularized ZCA
    >>> y = nbk.data.one_hot(ds.y_train)                                # -0.1 / 0.9 targets

CIFAR-10 is looked for in ``data_dir``, then ``$NBKERNELS_DATA``, then ``~/.cache/nbkernels``: a
folder holding ``cifar-10-batches-py/`` (or that folder itself) with any number of
``data_batch_*`` files, ``test_batch`` and ``batches.meta``. Absent everywhere, the official
archive is downloaded into the first of those places (:func:`download_root`), checked against its
MD5 and extracted atomically, so the next load finds it there.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import pickle
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np
from numpy.typing import ArrayLike

from . import formatting, settings

PathLike = Union[str, os.PathLike]

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_DIRNAME = "cifar-10-batches-py"
DATASETS = ("cifar10", "digits", "auto")


class DataError(ValueError):
    """Data that is missing or malformed; the message names the problem and the fix."""


@dataclasses.dataclass
class Dataset:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list
    name: str
    source: str = ""
    x_val: Optional[np.ndarray] = None   # validation images held out of the training pool (load(n_val=...))
    y_val: Optional[np.ndarray] = None

    @property
    def image_shape(self) -> tuple:
        return self.x_train.shape[1:]

    @property
    def label(self) -> str:
        """The dataset's name for people: "CIFAR-10" or "digits (sklearn)"."""
        return {"cifar10": "CIFAR-10", "digits": "digits (sklearn)"}.get(self.name, self.name)

    def describe(self) -> str:
        """What was loaded: dataset, sizes and the stored image shape. Figures and verdicts name what an
        experiment used instead (after downsampling, on subsets): :func:`nbkernels.plots.scale`."""
        h, w, c = self.image_shape
        return f"{self.label}, {len(self.x_train)} train / {len(self.x_test)} test loaded, {h}x{w}x{c} as stored"

    def replace(self, **kw: Any) -> "Dataset":
        return dataclasses.replace(self, **kw)


def _candidate_roots(data_dir):
    roots = []
    if data_dir is not None:
        roots.append(Path(data_dir))
    env = settings.data_dir()
    if env is not None:
        roots.append(env)
    roots.append(Path.home() / ".cache" / "nbkernels")
    return roots


def _batch_folder(root: Path) -> Optional[Path]:
    for folder in (root / CIFAR10_DIRNAME, root):
        if folder.is_dir() and any(folder.glob("data_batch_*")):
            return folder
    return None


def find_cifar10(data_dir: Optional[PathLike] = None) -> Optional[Path]:
    """The first folder holding CIFAR-10 batches, or None."""
    for root in _candidate_roots(data_dir):
        folder = _batch_folder(root)
        if folder is not None:
            return folder
    return None


def _unpickle(path: Path):
    try:
        with open(path, "rb") as f:
            return pickle.load(f, encoding="bytes")
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as e:
        raise DataError(f"{path} is truncated or corrupt ({type(e).__name__}: {e}). Delete the "
                        f"'{path.parent.name}' folder and download CIFAR-10 again "
                        f"(nbkernels.data.download_cifar10()).") from e


def _read_batch(path: Path):
    d = _unpickle(path)
    if not isinstance(d, dict) or b"data" not in d or b"labels" not in d:
        raise DataError(f"{path} is not a CIFAR-10 batch (expected a dict with b'data' and b'labels'). "
                        "Point NBKERNELS_DATA at the folder that holds cifar-10-batches-py.")
    x = np.asarray(d[b"data"])
    y = np.asarray(d[b"labels"], dtype=np.int64)
    if x.dtype != np.uint8 or x.ndim != 2 or x.shape[1] != 3072 or len(y) != len(x):
        raise DataError(f"{path} has data of shape {x.shape} and dtype {x.dtype} with {len(y)} labels; "
                        "expected (N, 3072) uint8 with N labels. The file is corrupt: download it again.")
    if y.size and (y.min() < 0 or y.max() > 9):
        raise DataError(f"{path} has labels outside 0..9: the file is corrupt; download it again.")
    return x.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), y


def read_cifar10(folder: PathLike) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Read every ``data_batch_*``, ``test_batch`` and ``batches.meta`` in ``folder`` (uint8 NHWC)."""
    folder = Path(folder)
    batches = sorted(folder.glob("data_batch_*"), key=lambda p: (len(p.name), p.name))
    if not batches:
        raise DataError(f"{folder} holds no data_batch_* files: it is not a CIFAR-10 folder.")
    test = folder / "test_batch"
    if not test.exists():
        raise DataError(f"{folder} has training batches but no test_batch: copy it from the official "
                        "archive or download again.")
    parts = [_read_batch(p) for p in batches]
    x_train = np.concatenate([p[0] for p in parts])
    y_train = np.concatenate([p[1] for p in parts])
    x_test, y_test = _read_batch(test)
    names = [f"class {i}" for i in range(10)]
    meta = folder / "batches.meta"
    if meta.exists():
        m = _unpickle(meta)
        if not isinstance(m, dict):
            raise DataError(f"{meta} holds a {type(m).__name__}, not CIFAR-10's metadata (a dict with b'label_names'). "
                            "The file is corrupt or from another dataset: delete it (class names then default to "
                            "'class 0'..'class 9') or download CIFAR-10 again.")
        raw = m.get(b"label_names", names)
        if not isinstance(raw, (list, tuple)) or len(raw) != 10:
            raise DataError(f"{meta} names {len(raw) if isinstance(raw, (list, tuple)) else type(raw).__name__} classes "
                            "(b'label_names'); CIFAR-10 has 10. The file is corrupt or from another dataset "
                            "(CIFAR-100?): delete it or download CIFAR-10 again.")
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in raw]
    return x_train, y_train, x_test, y_test, names


def write_cifar10(root: PathLike, x_train: ArrayLike, y_train: ArrayLike, x_test: ArrayLike, y_test: ArrayLike,
                  names: Optional[Sequence[str]] = None, per_batch: int = 10000) -> Path:
    """Write uint8 NHWC 32x32x3 images in the official python-pickle layout (protocol 2, bytes keys,
    row-major CHW rows of 3072, ``per_batch`` images per ``data_batch_*``) under ``root``, so
    :func:`read_cifar10` and a real download read the same way; returns the
    ``cifar-10-batches-py`` folder. An existing folder is refused rather than mixed into."""
    folder = Path(root) / CIFAR10_DIRNAME
    if folder.exists():
        raise DataError(f"{folder} already exists: write into an empty folder (or delete it first).")
    arrays = []
    for what, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        x, y = np.asarray(x), np.asarray(y)
        if x.dtype != np.uint8 or x.shape[1:] != (32, 32, 3) or len(y) != len(x):
            raise DataError(f"{what} images must be uint8 (N, 32, 32, 3) with N labels, got {x.dtype} "
                            f"{x.shape} and {len(y)} labels.")
        arrays.append((x.transpose(0, 3, 1, 2).reshape(len(x), 3072), [int(v) for v in y]))
    folder.mkdir(parents=True)

    def dump(name, label, x, y):
        d = {b"batch_label": label.encode(), b"labels": y, b"data": x,
             b"filenames": [f"{name}_{i}.png".encode() for i in range(len(y))]}
        with open(folder / name, "wb") as f:
            pickle.dump(d, f, protocol=2)

    (x_tr, y_tr), (x_te, y_te) = arrays
    starts = range(0, max(len(y_tr), 1), per_batch)
    for i, s in enumerate(starts, 1):
        dump(f"data_batch_{i}", f"training batch {i} of {len(starts)}", x_tr[s:s + per_batch], y_tr[s:s + per_batch])
    dump("test_batch", "testing batch 1 of 1", x_te, y_te)
    names = names or [f"class {i}" for i in range(10)]
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [n.encode() for n in names], b"num_cases_per_batch": per_batch,
                     b"num_vis": 3072}, f, protocol=2)
    return folder


def write_subset(root: PathLike, n_train: int, n_test: int, data_dir: Optional[PathLike] = None, seed: int = 0) -> Path:
    """Copy the class-balanced subset that ``load("cifar10", n_train, n_test, seed=seed)`` picks into a
    new official-layout folder under ``root`` (for carrying a small CIFAR-10 to another machine): loading
    it back with the same sizes gives the same images and labels (the order is drawn again, so prefixes
    such as ``x_train[:250]`` are other class-balanced subsets of them)."""
    folder = find_cifar10(data_dir)
    if folder is None:
        raise DataError(_not_found_message(data_dir))
    x_train, y_train, x_test, y_test, names = read_cifar10(folder)
    tr = balanced_subset(y_train, n_train, seed, "n_train")
    te = balanced_subset(y_test, n_test, seed, "n_test")
    return write_cifar10(root, x_train[tr], y_train[tr], x_test[te], y_test[te], names)


def balanced_subset(y: np.ndarray, n: Optional[int], seed: int = 0, what: str = "n") -> np.ndarray:
    """Indices of a deterministic, class-balanced subset of size ``n`` (classes within +-1)."""
    if n is None:
        return np.arange(len(y))
    n = check_count(n, what)
    if n > len(y):
        raise DataError(f"{what}={n} but only {len(y)} examples are available: ask for at most {len(y)}.")
    rng = np.random.default_rng(seed)
    classes = np.unique(y)
    pools = {c: rng.permutation(np.flatnonzero(y == c)) for c in classes}
    # Round-robin over classes in a seeded order: every prefix stays balanced.
    take, order = [], rng.permutation(classes)
    counts = {c: 0 for c in classes}
    while len(take) < n:
        progressed = False
        for c in order:
            if len(take) == n:
                break
            if counts[c] < len(pools[c]):
                take.append(pools[c][counts[c]])
                counts[c] += 1
                progressed = True
        if not progressed:
            break
    return np.asarray(take)


def _to_float(x_uint8):
    return (x_uint8.astype(np.float32) / 255.0)


def download_root(data_dir: Optional[PathLike] = None) -> Path:
    """Where a download goes: the first place :func:`find_cifar10` looks (``data_dir``, else
    ``$NBKERNELS_DATA``, else ``~/.cache/nbkernels``), so the next load finds it. The results cache
    (``$NBKERNELS_CACHE``) is another matter and never holds data."""
    return _candidate_roots(data_dir)[0]


def download_cifar10(root: Optional[PathLike] = None, url: str = CIFAR10_URL, timeout: float = 30.0, md5: str = CIFAR10_MD5) -> Path:
    """Download the official archive into ``root`` (default :func:`download_root`), check its MD5 and
    extract it atomically; returns the ``cifar-10-batches-py`` folder."""
    from tqdm.auto import tqdm

    root = Path(root) if root is not None else download_root()
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=".download-") as tmp:
        archive = Path(tmp) / "cifar-10-python.tar.gz"
        digest = hashlib.md5()
        with urllib.request.urlopen(url, timeout=timeout) as resp, open(archive, "wb") as f:
            total = int(resp.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc="CIFAR-10") as bar:
                while chunk := resp.read(1 << 20):
                    f.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
        if digest.hexdigest() != md5:
            raise DataError(f"the CIFAR-10 download from {url} has MD5 {digest.hexdigest()}, expected "
                            f"{md5}: the download was corrupted; try again.")
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        target = root / CIFAR10_DIRNAME
        if not target.exists():
            os.replace(Path(tmp) / CIFAR10_DIRNAME, target)
    return root / CIFAR10_DIRNAME


def _not_found_message(data_dir):
    places = ", ".join(str(r) for r in _candidate_roots(data_dir))
    return (f"CIFAR-10 was not found (looked in {places}) and could not be downloaded. Put the "
            f"'{CIFAR10_DIRNAME}' folder in one of those places or set NBKERNELS_DATA to the folder "
            "holding it; or use nbk.data.load('digits'), which needs no download, or 'auto'.")


def _load_cifar10(data_dir, download=True):
    folder = find_cifar10(data_dir)
    if folder is None:
        if not download:
            raise DataError(_not_found_message(data_dir))
        try:
            folder = download_cifar10(download_root(data_dir))
        except DataError:
            raise
        except Exception as e:  # offline: urllib raises URLError, timeouts, ...
            raise DataError(_not_found_message(data_dir) + f" (download failed: {e})") from e
    x_train, y_train, x_test, y_test, names = read_cifar10(folder)
    return x_train, y_train, x_test, y_test, names, str(folder)


def _load_digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images.astype(np.float32) / 16.0)[..., None]
    y = d.target.astype(np.int64)
    # A fixed, class-balanced split: the first 1200 of a balanced order train, the rest test.
    order = balanced_subset(y, len(y), seed=12345)
    tr, te = order[:1200], order[1200:]
    return (x[tr], y[tr], x[te], y[te], [str(i) for i in range(10)], "sklearn.datasets.load_digits")


def load(name: str = "auto", n_train: Optional[int] = None, n_test: Optional[int] = None,
         data_dir: Optional[PathLike] = None, seed: int = 0, download: bool = True, verbose: bool = True,
         n_val: Optional[int] = None) -> Dataset:
    """Load a dataset as float32 NHWC images in [0, 1] with integer labels.

    The subset's order is class-balanced in every prefix, so the first ``n_train`` images are the same with
    or without ``n_val``, and the next ``n_val`` (the validation images) are balanced too.

    Parameters
    ----------
    name : {"auto", "cifar10", "digits"}
        ``"cifar10"``; ``"digits"`` (scikit-learn's bundled 8x8 digits, offline); ``"auto"``: CIFAR-10 when
        found or downloadable, else digits, saying which.
    n_train, n_test : int, optional
        Deterministic class-balanced subsets of the training pool and the test batch (None: all).
    data_dir : str or path, optional
        The folder holding ``cifar-10-batches-py`` (else ``$NBKERNELS_DATA``, else ``~/.cache/nbkernels``).
    seed : int
        Draws the subsets.
    download : bool
        Download the official archive (MD5-checked) when no copy is found.
    verbose : bool
        Say which dataset and folder were used.
    n_val : int, optional
        Further training images held out as a validation set (``x_val``, ``y_val``); needs ``n_train``.

    Returns
    -------
    Dataset
        ``x_train``, ``y_train``, ``x_test``, ``y_test`` (and ``x_val``, ``y_val``), class names and source.

    Raises
    ------
    DataError
        A missing, truncated or malformed copy, or more images than the pool holds.
    ValueError
        An unknown name or a count that is not a whole number.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; use one of {DATASETS}.")
    for what, n in (("n_train", n_train), ("n_test", n_test), ("n_val", n_val)):
        check_count(n, what, allow_none=True)
    fell_back = False
    if name == "auto":
        try:
            raw = _load_cifar10(data_dir, download=download)
            name = "cifar10"
        except DataError as e:
            if find_cifar10(data_dir) is not None:
                raise  # found but broken: say so rather than silently switching
            raw = _load_digits()
            name, fell_back = "digits", True
            if verbose:
                print("nbkernels: CIFAR-10 not available, using scikit-learn's digits instead "
                      f"({str(e).split('.')[0]}).", file=sys.stderr)
        else:
            if verbose:
                print(f"nbkernels: using CIFAR-10 from {formatting.path(raw[-1])}")  # information, not a warning: stdout
    elif name == "cifar10":
        raw = _load_cifar10(data_dir, download=download)
    else:
        raw = _load_digits()
    x_train, y_train, x_test, y_test, names, source = raw
    if fell_back:  # sizes chosen for CIFAR-10 presets: take what digits has, and say so
        capped = [(w, n, len(y)) for w, n, y in (("n_train", n_train, y_train), ("n_test", n_test, y_test))
                  if n is not None and n > len(y)]
        if capped and verbose:
            print("nbkernels: digits has fewer examples than asked; using " +
                  ", ".join(f"{w}={have} (asked {n})" for w, n, have in capped) + ".", file=sys.stderr)
        n_train = None if n_train is None else min(n_train, len(y_train))
        n_test = None if n_test is None else min(n_test, len(y_test))
    if n_val is not None:
        if n_val < 1:
            raise DataError(f"n_val={n_val}: give at least 1 validation image, or n_val=None for none.")
        if n_train is None:
            raise DataError("n_val needs n_train: the validation images are the ones after the first n_train of the "
                            "training pool, so say how many train.")
        pool = balanced_subset(y_train, n_train + n_val, seed, f"n_train + n_val ({n_train} + {n_val})")
        tr, va = pool[:n_train], pool[n_train:]
    else:
        tr, va = balanced_subset(y_train, n_train, seed, "n_train"), None
    te = balanced_subset(y_test, n_test, seed, "n_test")
    to_float = _to_float if x_train.dtype == np.uint8 else (lambda a: a.astype(np.float32))
    val = {} if va is None else dict(x_val=to_float(x_train[va]), y_val=y_train[va])
    return Dataset(to_float(x_train[tr]), y_train[tr], to_float(x_test[te]), y_test[te],
                   list(names), name, source, **val)


# ----------------------------------------------------------------------------------------------
# preprocessing


def check_count(n: Any, what: str, *, allow_none: bool = False, minimum: Optional[int] = 1) -> Optional[int]:
    """``n`` as an int when it is a whole number (of at least ``minimum``, unless None: the caller checks the
    range with its own message); None passes with ``allow_none``. Otherwise a ValueError naming ``what``, its
    value and the fix: ``100.7`` is refused, not truncated."""
    if n is None and allow_none:
        return None
    if isinstance(n, (float, np.floating)) and float(n).is_integer():
        n = int(n)
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or (minimum is not None and n < minimum):
        low = 0 if minimum is None else minimum
        try:
            hint = f"{what}={max(low, round(float(n)))}"
        except (TypeError, ValueError, OverflowError):
            hint = f"{what}=<a whole number>"
        raise ValueError(f"{what}={n!r} must be a whole number" + (f" of at least {minimum}" if minimum is not None else "")
                         + (" (or None)" if allow_none else "") + f"; pass e.g. {hint}.")
    return int(n)


def check_finite(x: ArrayLike, name: str = "x") -> None:
    """A DataError naming ``name`` when ``x`` holds NaN or infinite values."""
    x = np.asarray(x)
    if not np.all(np.isfinite(x)):
        bad = int(x.size - np.isfinite(x).sum())
        raise DataError(f"{name} has {bad} NaN or infinite values: drop or impute those pixels first.")
    return x


def standardize_channels(x_train: np.ndarray, x_test: Optional[np.ndarray] = None) -> Union[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Per-channel standardization with the training set's mean and std."""
    x_train = check_finite(x_train, "x_train")
    axes = tuple(range(x_train.ndim - 1))
    mean, std = x_train.mean(axes), x_train.std(axes) + 1e-8
    out = (x_train - mean) / std
    return out if x_test is None else (out, (check_finite(x_test, "x_test") - mean) / std)


def standardize_images(x: np.ndarray) -> np.ndarray:
    """Per-image standardization ("layer norm"): each image to zero mean and unit variance."""
    x = check_finite(x)
    axes = tuple(range(1, x.ndim))
    mean = x.mean(axes, keepdims=True)
    std = x.std(axes, keepdims=True)
    return (x - mean) / np.maximum(std, 1e-8)


class ZCA:
    """Regularized ZCA whitening ``W = (S + eps * tr(S)/d * I)^(-1/2)``, fitted on training features.

    ``eps`` is relative to the mean eigenvalue; ``eps=0`` whitens fully (on the span of the training
    data when ``n_train < d``, where ``S`` is singular). Features are centred with the training mean.
    Fitted through the SVD of the data, so it costs ``O(min(n, d)^2 max(n, d))``.
    """

    def __init__(self, eps: float = 0.1):
        if not eps >= 0:
            raise ValueError(f"ZCA eps must be >= 0, got {eps!r}.")
        self.eps = float(eps)

    def fit(self, x_train: np.ndarray) -> "ZCA":
        x = check_finite(x_train, "x_train").reshape(len(x_train), -1).astype(np.float64)
        n, d = x.shape
        self.mean_ = x.mean(0)
        _, s, vt = np.linalg.svd(x - self.mean_, full_matrices=False)
        return self._from_svd(s, vt, n, d)

    def with_eps(self, eps: float) -> "ZCA":
        """The same fit with another ``eps``, reusing the decomposition (a sweep over eps costs one SVD)."""
        other = ZCA(eps)
        other.mean_ = self.mean_
        return other._from_svd(*self._svd)

    def _from_svd(self, s, vt, n, d):
        self._svd = (s, vt, n, d)
        eig = s ** 2 / n                                   # nonzero eigenvalues of the covariance
        tol = eig.max() * max(n, d) * np.finfo(np.float64).eps if eig.size else 0.0
        keep = eig > tol
        self.eigenvalues_ = np.sort(np.concatenate([eig, np.zeros(max(d - len(eig), 0))]))[::-1]
        reg = self.eps * eig.sum() / d
        self.vectors_ = vt[keep]
        self.scale_ = (eig[keep] + reg) ** -0.5
        # Outside the span of the data the covariance is 0: regularized, those directions scale by reg^-1/2.
        self.complement_ = reg ** -0.5 if reg > 0 else 0.0
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        shape = x.shape
        x = check_finite(x).reshape(len(x), -1).astype(np.float64) - self.mean_
        proj = x @ self.vectors_.T
        out = (proj * self.scale_) @ self.vectors_
        if self.complement_:
            out += self.complement_ * (x - proj @ self.vectors_)
        return out.reshape(shape).astype(np.float32)


def zca(x_train: np.ndarray, x_test: Optional[np.ndarray] = None, eps: float = 0.1) -> Union[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Whiten the training (and test) images with a regularized :class:`ZCA` fitted on the training images.

    Parameters
    ----------
    x_train : numpy.ndarray, shape (N, ...)
    x_test : numpy.ndarray, optional
    eps : float
        The regularizer, relative to the mean eigenvalue: ``(Σ + eps · tr(Σ)/d · I)^(-1/2)``.

    Returns
    -------
    numpy.ndarray, or a pair of them
        The whitened training images, and the test images when given.
    """
    z = ZCA(eps).fit(x_train)
    return z.transform(x_train) if x_test is None else (z.transform(x_train), z.transform(x_test))


def downsample(x: np.ndarray, factor: int) -> np.ndarray:
    """Average-pool NHWC images by ``factor`` (32 -> 16 -> 8 for CPU-sized presets)."""
    factor = check_count(factor, "factor")
    if factor == 1:
        return x
    n, h, w, c = x.shape
    if h % factor or w % factor:
        raise ValueError(f"downsample factor {factor} does not divide the image size {h}x{w}.")
    return x.reshape(n, h // factor, factor, w // factor, factor, c).mean((2, 4))


def augment(x: ArrayLike, seed: int, flip: bool = True, crop_padding: int = 4) -> np.ndarray:
    """Random horizontal flips and random crops with zero padding, deterministic for ``seed``.

    Parameters
    ----------
    x : array_like, shape (N, H, W, C)
    seed : int
    flip : bool
        Flip each image with probability 1/2.
    crop_padding : int
        Pad by this many pixels and crop back at a random offset; at most half the image's side.

    Returns
    -------
    numpy.ndarray, shape (N, H, W, C)
    """
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"augment needs NHWC images, got shape {x.shape}; augment before flattening.")
    n, h, w, c = x.shape
    crop_padding = check_count(crop_padding, "crop_padding", minimum=0)
    if crop_padding > min(h, w) // 2:
        raise ValueError(f"crop_padding={crop_padding} pads a {h}x{w} image by more than half its side, so a crop "
                         f"can hold mostly padding; use 0..{min(h, w) // 2} (the paper pads 32x32 images by 4).")
    rng = np.random.default_rng(seed)
    out = np.array(x, copy=True)
    if flip:
        flips = rng.random(n) < 0.5
        out[flips] = out[flips, :, ::-1]
    if crop_padding:
        p = crop_padding
        padded = np.pad(out, ((0, 0), (p, p), (p, p), (0, 0)))
        dy, dx = rng.integers(0, 2 * p + 1, size=(2, n))
        for i in range(n):
            out[i] = padded[i, dy[i]:dy[i] + h, dx[i]:dx[i] + w]
    return out


def one_hot(y: ArrayLike, n_classes: int = 10) -> np.ndarray:
    """Zero-mean one-hot targets: -1/k off the label, 1 - 1/k on it (-0.1 / 0.9 for 10 classes).

    Parameters
    ----------
    y : array_like of int, shape (n,)
        Class indices (whole-valued floats are accepted; other floats are refused).
    n_classes : int
        k.

    Returns
    -------
    numpy.ndarray of float32, shape (n, k)
    """
    y = np.asarray(y)
    if y.dtype.kind == "f" and y.size and np.all(np.isfinite(y)) and np.all(y == np.round(y)):
        y = y.astype(np.int64)  # whole-valued floats (labels read back from a float array) are labels
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise ValueError(f"labels must be integers in 0..{n_classes - 1} in a 1-D array, got shape {y.shape} and dtype "
                         f"{y.dtype}" + (f" (e.g. {y.ravel()[:3].tolist()})" if y.size else "") + ". Pass class indices, "
                         "not one-hot rows or scores (labels.argmax(-1) turns one-hot rows into indices).")
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(f"labels must be integers in 0..{n_classes - 1}, got values from {y.min()} to {y.max()}; pass "
                         f"n_classes={int(y.max()) + 1} if there are that many classes.")
    return (np.eye(n_classes, dtype=np.float32)[y] - 1.0 / n_classes).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class Split:
    """Prepared arrays of a dataset with a validation set: choose settings on ``val``, report on ``test``.
    Targets are one-hot, zero-mean shifted as :func:`prepare` gives them."""
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def val(self) -> tuple[np.ndarray, np.ndarray]:
        return self.x_val, self.y_val


def prepare_split(ds: Dataset, **kw: Any) -> Split:
    """:func:`prepare` for a dataset loaded with ``n_val``: the validation images go through the same pipeline
    as the test images (every statistic fitted on the training images alone).

    Parameters
    ----------
    ds : Dataset
        Loaded with ``n_val`` (:func:`load`).
    **kw
        :func:`prepare`'s options (``downsample_to``, ``preprocess``, ``zca_eps``, ``flatten``).

    Returns
    -------
    Split
        ``x_train``, ``y_train``, ``x_val``, ``y_val``, ``x_test``, ``y_test`` (and ``val`` as a pair).
    """
    if ds.x_val is None:
        raise DataError("this dataset has no validation images: load it with n_val=N (held out of the training pool).")
    both = dataclasses.replace(ds, x_test=np.concatenate([ds.x_val, ds.x_test]),
                               y_test=np.concatenate([ds.y_val, ds.y_test]), x_val=None, y_val=None)
    x_tr, y_tr, x_all, y_all = prepare(both, **kw)
    v = len(ds.x_val)
    return Split(x_tr, y_tr, x_all[:v], y_all[:v], x_all[v:], y_all[v:])


def prepare(ds: Dataset, *, downsample_to: Optional[int] = None, preprocess: str = "standardize",
            zca_eps: Optional[float] = None, flatten: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The common pipeline of the notebooks: downsample, standardize or ZCA, zero-mean one-hot targets.

    Every statistic (channel means, the ZCA) is fitted on the training images alone.

    Parameters
    ----------
    ds : Dataset
        From :func:`load`.
    downsample_to : int, optional
        The image side after average pooling; a divisor of the side (32 -> 16, 8, ...).
    preprocess : {"standardize", "layernorm", "none"}
        Per-channel standardization, per-image standardization, or the pixels as loaded.
    zca_eps : float, optional
        Regularized ZCA whitening with this relative ``eps`` (:class:`ZCA`); None for none.
    flatten : bool
        Return (N, H*W*C) vectors instead of NHWC images.

    Returns
    -------
    x_train, y_train, x_test, y_test : numpy.ndarray
        float32 inputs and (N, 10) zero-mean one-hot targets (:func:`one_hot`).
    """
    x_tr, x_te = ds.x_train, ds.x_test
    check_finite(x_tr, "ds.x_train")
    check_finite(x_te, "ds.x_test")
    if downsample_to is not None:
        side = x_tr.shape[1]
        downsample_to = check_count(downsample_to, "downsample_to", allow_none=True)
        sizes = [d for d in range(1, side + 1) if side % d == 0]
        if downsample_to not in sizes:
            raise ValueError(f"downsample_to={downsample_to}: images are {side}x{x_tr.shape[2]} and average pooling can only "
                             f"reach a side that divides {side}; use one of {sizes}.")
    if downsample_to is not None and downsample_to != x_tr.shape[1]:
        f = x_tr.shape[1] // downsample_to
        x_tr, x_te = downsample(x_tr, f), downsample(x_te, f)
    if preprocess == "standardize":
        x_tr, x_te = standardize_channels(x_tr, x_te)
    elif preprocess == "layernorm":
        x_tr, x_te = standardize_images(x_tr), standardize_images(x_te)
    elif preprocess != "none":
        raise ValueError(f"unknown preprocess {preprocess!r}; use 'standardize', 'layernorm' or 'none'.")
    if zca_eps is not None:
        x_tr, x_te = zca(x_tr, x_te, zca_eps)
    if flatten:
        x_tr, x_te = x_tr.reshape(len(x_tr), -1), x_te.reshape(len(x_te), -1)
    return (x_tr.astype(np.float32), one_hot(ds.y_train, len(ds.class_names)),
            x_te.astype(np.float32), one_hot(ds.y_test, len(ds.class_names)))
