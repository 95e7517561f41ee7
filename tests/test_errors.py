"""README's "Errors you may meet": every row is run here, and its message must start as the table says."""
import pickle
import re
from pathlib import Path

import numpy as np
import pytest

import nbkernels as nbk
from nbkernels import data, notebook, predict, report

README = Path(__file__).resolve().parents[1] / "README.md"


def _table():
    section = README.read_text().split("## Errors you may meet", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[1].startswith("`"):
            rows[cells[0].split(":")[0]] = cells[1].split("`")[1]  # the first code span: the message's start
    return rows


def _corrupt_batch(tmp_path, monkeypatch, payload):
    from cifar_files import write_cifar_folder
    folder = write_cifar_folder(tmp_path / "data")
    (folder / "data_batch_1").write_bytes(payload(folder / "data_batch_1"))
    monkeypatch.setenv("NBKERNELS_DATA", str(tmp_path / "data"))
    return lambda: data.load("cifar10", verbose=False)


def _wrong_array(path):
    return pickle.dumps({b"data": np.zeros((30, 100), np.uint8), b"labels": [0] * 30}, protocol=2)


def _notebook_presets():
    from test_presets import SOURCES, _presets
    return _presets(SOURCES[0])


CASES = {
    "wrong shape": lambda tmp, mp: lambda: nbk.cnn(2, 16, readout="gap").kernel(np.zeros((4, 8, 8))),
    "mismatched inputs": lambda tmp, mp: lambda: nbk.fcn(2).kernel(np.zeros((4, 8, 8, 3)), np.zeros((4, 10))),
    "a transposed test kernel": lambda tmp, mp: lambda: predict.gradient_descent_mse(np.eye(3), np.ones((2, 4)), np.ones((3, 10))),
    "NaN images": lambda tmp, mp: lambda: nbk.cnn(2, 16).kernel(np.where(np.arange(192).reshape(1, 8, 8, 3) == 0, np.nan, 1.0)),
    "a kernel float32 cannot solve": lambda tmp, mp: lambda: predict.gradient_descent_mse(
        np.ones((50, 50), np.float32), None, np.ones((50, 10), np.float32)),
    "a request that would not fit": lambda tmp, mp: lambda: nbk.cnn(8, 1, readout="gap").kernel(
        np.zeros((20000, 32, 32, 3), np.float32), batch_size=20000, dtype="float32"),
    "a request that fits but would run for days": lambda tmp, mp: lambda: nbk.fcn(1, 4).kernel(
        np.random.default_rng(0).normal(size=(40, 6)), batch_size=2, max_hours=1e-7, progress=False),
    "a corrupt CIFAR-10 batch": lambda tmp, mp: _corrupt_batch(tmp, mp, lambda p: p.read_bytes()[:1000]),
    "CIFAR-10 batch with the wrong array inside": lambda tmp, mp: _corrupt_batch(tmp, mp, _wrong_array),
    "an unknown preset in a notebook": lambda tmp, mp: lambda: notebook.choose_preset(_notebook_presets(), "fast"),
    "an unknown preset in the report": lambda tmp, mp: lambda: report.run("fast", out=tmp),
    "an unknown dataset": lambda tmp, mp: lambda: data.load("mnist"),
}


def test_the_readme_lists_exactly_these_cases():
    assert set(_table()) == set(CASES)


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_bad_input_gives_the_documented_message(case, tmp_path, monkeypatch):
    expected = _table()[case]
    with pytest.raises(BaseException) as info:
        CASES[case](tmp_path, monkeypatch)()
    got = f"{info.type.__name__}: {info.value}"
    pattern = re.escape(expected).replace("…", ".*")  # … stands for a path that varies
    assert re.match(pattern, got), f"README says {expected!r}, the code says {got!r}"


# A hostile-input probe: each input fails before any compute is spent, with a message that names the
# argument, its value and the fix (a regex the message must match from its start).
def _cifar(tmp, mp, meta=None, **load):
    from cifar_files import write_cifar_folder
    folder = write_cifar_folder(tmp / "data")
    if meta is not None:
        (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    mp.setenv("NBKERNELS_DATA", str(tmp / "data"))
    return data.load("cifar10", verbose=False, **load)


def _images(n=20, side=8):
    return np.random.default_rng(0).normal(size=(n, side, side, 3)).astype(np.float32)


def _targets(n=20, k=10):
    return data.one_hot(np.arange(n) % k, k)


def _train(**kw):
    args = dict(x_train=_images(), y_train=_targets(), x_test=_images(), y_test=_targets())
    args.update({k: kw.pop(k) for k in list(kw) if k in args})
    from nbkernels import train
    options = dict(dict(steps=2, lr=0.1, progress=False), **kw)
    return lambda: train.train(nbk.cnn(1, 4), args["x_train"], args["y_train"], args["x_test"], args["y_test"], **options)


def _nan_pixels(tmp, mp):
    ds = _cifar(tmp, mp, n_train=20, n_test=10)
    x = ds.x_train.copy()
    x[3, 4, 5, 0] = np.nan
    return lambda: data.prepare(ds.replace(x_train=x), preprocess="none")


PROBE = {
    "downsampling to a size that is not a divisor": (
        lambda tmp, mp: (lambda ds: lambda: data.prepare(ds, downsample_to=12))(_cifar(tmp, mp, n_train=20, n_test=10)),
        r"downsample_to=12: images are 32x32 and average pooling can only reach a side that divides 32; use one of "
        r"\[1, 2, 4, 8, 16, 32\]"),
    "downsampling to a size above the image": (
        lambda tmp, mp: (lambda ds: lambda: data.prepare(ds, downsample_to=64))(_cifar(tmp, mp, n_train=20, n_test=10)),
        r"downsample_to=64: images are 32x32 .* use one of \[1, 2, 4, 8, 16, 32\]"),
    "downsampling to zero": (
        lambda tmp, mp: (lambda ds: lambda: data.prepare(ds, downsample_to=0))(_cifar(tmp, mp, n_train=20, n_test=10)),
        r"downsample_to=0 must be a whole number of at least 1 .*; pass e\.g\. downsample_to=1"),
    "a non-symmetric training kernel": (
        lambda tmp, mp: lambda: predict.gradient_descent_mse(np.array([[1.0, 0.5], [0.1, 1.0]]), None, np.ones((2, 10))),
        r"k_train_train is not symmetric: entries \(0, 1\) and \(1, 0\) differ by 0\.4 .* pass arch\.kernel\(x_train\)"),
    "a non-square training kernel": (
        lambda tmp, mp: lambda: predict.nngp_posterior(np.ones((3, 4)), None, np.ones((3, 10))),
        r"k_train_train must be square \(m, m\), got \(3, 4\): pass K\(x_train, x_train\)"),
    "batches.meta holding a list": (
        lambda tmp, mp: lambda: _cifar(tmp, mp, meta=["airplane"] * 10),
        r".*batches\.meta holds a list, not CIFAR-10's metadata .* delete it .* or download CIFAR-10 again"),
    "batches.meta naming 11 classes": (
        lambda tmp, mp: lambda: _cifar(tmp, mp, meta={b"label_names": [b"c"] * 11}),
        r".*batches\.meta names 11 classes \(b'label_names'\); CIFAR-10 has 10"),
    "a fractional number of images": (
        lambda tmp, mp: lambda: _cifar(tmp, mp, n_train=100.7),
        r"n_train=100\.7 must be a whole number of at least 1 \(or None\); pass e\.g\. n_train=101"),
    "float labels": (
        lambda tmp, mp: lambda: data.one_hot(np.array([0.5, 2.0])),
        r"labels must be integers in 0\.\.9 in a 1-D array, got shape \(2,\) and dtype float64 \(e\.g\. \[0\.5, 2\.0\]\)"),
    "targets with fewer columns than the network's outputs": (
        lambda tmp, mp: _train(y_train=_targets(k=5), y_test=_targets(k=5)),
        r"y_train has 5 columns but the network has 10 outputs: give one-hot targets .*out_dim=5"),
    "test images with other features than the training images": (
        lambda tmp, mp: _train(x_test=_images(side=4)),
        r"x_test has features of shape \(4, 4, 3\) but x_train has \(8, 8, 3\): prepare every split the same way"),
    "a negative L2": (lambda tmp, mp: _train(l2=-1.0), r"l2=-1\.0: weight decay must be 0 or positive .* use e\.g\. l2=1e-4"),
    "momentum of 1 or more": (lambda tmp, mp: _train(momentum=1.5), r"momentum=1\.5: heavy-ball momentum must be in \[0, 1\)"),
    "a fractional number of steps": (lambda tmp, mp: _train(steps=100.5),
                                     r"steps=100\.5 must be a whole number; pass e\.g\. steps=100"),
    "a crop larger than the image (training)": (
        lambda tmp, mp: _train(flip=True, crop=5),
        r"crop=5 pads a 8x8 image by more than half its side; use 0\.\.4"),
    "a crop larger than the image (augment)": (
        lambda tmp, mp: lambda: data.augment(_images(), seed=0, crop_padding=9),
        r"crop_padding=9 pads a 8x8 image by more than half its side.* use 0\.\.4"),
    "NaN pixels with preprocess='none'": (
        _nan_pixels, r"ds\.x_train has 1 NaN or infinite values: drop or impute those pixels first"),
    "NaN targets": (lambda tmp, mp: _train(y_train=np.where(_targets() > 0, np.nan, -0.1)),
                    r"y_train holds NaN or infinite values"),
    "resumability asked for without a cache": (
        lambda tmp, mp: _train(checkpoint_every=1, cache=False),
        r"checkpoint_every=1 writes checkpoints into the results cache, but cache=False: nothing could resume\. "
        r"Pass cache=True"),
    "a fractional training-set size in a kernel curve": (
        lambda tmp, mp: lambda: __import__("nbkernels.study").study.kernel_curve(
            nbk.fcn(1), _images(), _targets(), _images(), _targets(), sizes=[10.5]),
        r"sizes\[\]=10\.5 must be a whole number of at least 1"),
}


@pytest.mark.parametrize("case", sorted(PROBE))
def test_each_probed_input_fails_fast_naming_the_argument_and_the_fix(case, tmp_path, monkeypatch):
    make, pattern = PROBE[case]
    monkeypatch.setenv("NBKERNELS_CACHE", str(tmp_path / "cache"))
    call = make(tmp_path, monkeypatch)
    with pytest.raises(ValueError) as info:   # DataError is a ValueError too
        call()
    assert re.match(pattern, str(info.value)), f"{case}: the message is {str(info.value)!r}"
