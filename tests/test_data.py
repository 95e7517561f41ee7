import numpy as np
import pytest

from nbkernels import data
from cifar_files import write_cifar_folder


def test_loader_reads_official_layout(tiny_cifar):
    ds = data.load("cifar10", data_dir=tiny_cifar, download=False)
    assert ds.x_train.shape == (60, 32, 32, 3) and ds.x_train.dtype == np.float32
    assert ds.x_test.shape == (20, 32, 32, 3)
    assert 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0
    assert ds.class_names[0] == "airplane" and ds.name == "cifar10"
    # pixel layout: 1024 R, then G, then B, each row-major
    import pickle
    with open(tiny_cifar / "cifar-10-batches-py" / "data_batch_1", "rb") as f:
        raw = pickle.load(f, encoding="bytes")[b"data"]
    full = data.load("cifar10", data_dir=tiny_cifar, download=False)
    assert full.x_train[0, 0, 1, 2] == pytest.approx(raw[0, 2048 + 1] / 255.0)


def test_loader_finds_env_var(tiny_cifar, monkeypatch):
    monkeypatch.setenv("NBKERNELS_DATA", str(tiny_cifar))
    assert data.load("cifar10", download=False).x_train.shape[0] == 60
    assert data.load("auto", download=False).name == "cifar10"


def test_balanced_deterministic_subsets(tiny_cifar):
    a = data.load("cifar10", n_train=20, n_test=10, data_dir=tiny_cifar, download=False, seed=3)
    b = data.load("cifar10", n_train=20, n_test=10, data_dir=tiny_cifar, download=False, seed=3)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    assert np.bincount(a.y_train, minlength=10).tolist() == [2] * 10
    assert np.bincount(a.y_test, minlength=10).tolist() == [1] * 10
    c = data.load("cifar10", n_train=20, data_dir=tiny_cifar, download=False, seed=4)
    assert not np.array_equal(a.x_train, c.x_train)


def test_too_many_examples(tiny_cifar):
    with pytest.raises(data.DataError, match="n_train=1000 but only 60"):
        data.load("cifar10", n_train=1000, data_dir=tiny_cifar, download=False)


def test_corrupt_batch_is_named(tmp_path, monkeypatch):
    monkeypatch.delenv("NBKERNELS_DATA", raising=False)
    folder = write_cifar_folder(tmp_path / "d")
    path = folder / "data_batch_2"
    path.write_bytes(path.read_bytes()[:5000])  # truncated download
    with pytest.raises(data.DataError, match="data_batch_2 is truncated or corrupt"):
        data.load("cifar10", data_dir=tmp_path / "d", download=False)
    with pytest.raises(data.DataError):  # auto does not silently switch away from a broken copy
        data.load("auto", data_dir=tmp_path / "d", download=False, verbose=False)


def test_folder_without_batches(tmp_path, monkeypatch):
    monkeypatch.delenv("NBKERNELS_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(data.DataError, match="not found.*empty.*digits"):
        data.load("cifar10", data_dir=tmp_path / "empty", download=False)
    with pytest.raises(data.DataError, match="no data_batch"):
        data.read_cifar10(tmp_path / "empty")


def test_auto_falls_back_to_digits(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("NBKERNELS_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    ds = data.load("auto", download=False)
    assert ds.name == "digits" and ds.x_train.shape[1:] == (8, 8, 1)
    assert "digits" in capsys.readouterr().err
    small = data.load("auto", n_train=5000, n_test=100, download=False)  # a CIFAR-sized preset
    assert len(small.x_train) == 1200 and len(small.x_test) == 100
    assert "n_train=1200 (asked 5000)" in capsys.readouterr().err
    with pytest.raises(data.DataError, match="n_train=5000 but only 1200"):  # asked for digits by name: an error
        data.load("digits", n_train=5000)
    assert "digits" in ds.describe()


def test_unknown_dataset():
    with pytest.raises(ValueError, match="unknown dataset 'mnist'"):
        data.load("mnist")


def test_offline_download_error_names_places(tmp_path, monkeypatch):
    import urllib.error
    monkeypatch.delenv("NBKERNELS_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))

    def offline(*a, **k):
        raise urllib.error.URLError("network unreachable")

    monkeypatch.setattr(data, "download_cifar10", offline)
    with pytest.raises(data.DataError, match="looked in .*could not be downloaded.*digits"):
        data.load("cifar10")
    assert data.load("auto", verbose=False).name == "digits"


def _rand(n, d=48, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, d)) @ rng.normal(size=(d, d))).reshape(n, 4, 4, 3)


@pytest.mark.parametrize("n", [200, 20])  # n > d and n < d (48 features)
def test_zca_whitens(n):
    x = _rand(n, 48)
    z = data.ZCA(0.0).fit(x)
    w = z.transform(x).reshape(n, -1).astype(np.float64)
    sv = np.linalg.svd(w / np.sqrt(n), compute_uv=False)
    rank = min(n - 1, 48)
    np.testing.assert_allclose(sv[:rank] ** 2, 1.0, atol=1e-4)
    assert np.all(sv[rank:] < 1e-3)


def test_zca_regularized_matches_formula():
    x = _rand(100, 48, seed=1).reshape(100, -1).astype(np.float64)
    eps = 0.3
    xc = x - x.mean(0)
    cov = xc.T @ xc / len(x)
    lam, u = np.linalg.eigh(cov + eps * np.trace(cov) / 48 * np.eye(48))
    W = u @ np.diag(lam ** -0.5) @ u.T
    ours = data.zca(x.reshape(100, 4, 4, 3), eps=eps).reshape(100, -1)
    np.testing.assert_allclose(ours, xc @ W, rtol=1e-4, atol=1e-4)
    # a sweep reuses one decomposition and gives the same whitening
    refit = data.ZCA(0.0).fit(x.reshape(100, 4, 4, 3)).with_eps(eps).transform(x.reshape(100, 4, 4, 3))
    np.testing.assert_allclose(refit.reshape(100, -1), ours, rtol=1e-5, atol=1e-6)
    # large eps approaches a rescaled identity: whitening barely changes the image
    far = data.zca(x.reshape(100, 4, 4, 3), eps=1e6).reshape(100, -1)
    c = np.corrcoef(far.ravel(), xc.ravel())[0, 1]
    assert c > 0.9999


def test_zca_rejects_nan():
    x = np.zeros((5, 4, 4, 3)); x[0, 0, 0, 0] = np.nan
    with pytest.raises(data.DataError, match="1 NaN"):
        data.zca(x)


def test_augment_shapes_and_determinism():
    x = np.random.default_rng(0).random((6, 8, 8, 3)).astype(np.float32)
    a, b = data.augment(x, seed=1), data.augment(x, seed=1)
    assert a.shape == x.shape and a.dtype == x.dtype
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, data.augment(x, seed=2))
    flipped = data.augment(x, seed=0, crop_padding=0)
    for i in range(6):  # each image is itself or its mirror image
        assert np.array_equal(flipped[i], x[i]) or np.array_equal(flipped[i], x[i, :, ::-1])


def test_downsample_and_one_hot():
    x = np.arange(2 * 4 * 4 * 1, dtype=np.float32).reshape(2, 4, 4, 1)
    d = data.downsample(x, 2)
    assert d.shape == (2, 2, 2, 1) and d[0, 0, 0, 0] == pytest.approx((0 + 1 + 4 + 5) / 4)
    y = data.one_hot(np.array([0, 3]))
    assert y.shape == (2, 10) and y[0, 0] == pytest.approx(0.9) and y[0, 1] == pytest.approx(-0.1)
    np.testing.assert_allclose(y.sum(1), 0.0, atol=1e-6)
    with pytest.raises(ValueError, match="labels"):
        data.one_hot(np.array([11]))


def test_standardize():
    x = np.random.default_rng(0).random((10, 4, 4, 3)) * 5 + 2
    tr, te = data.standardize_channels(x, x[:3])
    np.testing.assert_allclose(tr.mean((0, 1, 2)), 0, atol=1e-6)
    np.testing.assert_allclose(tr.std((0, 1, 2)), 1, atol=1e-4)
    li = data.standardize_images(x)
    np.testing.assert_allclose(li.reshape(10, -1).std(1), 1, atol=1e-4)


def _local_archive(tmp_path):
    """The official archive's layout (a tar.gz holding cifar-10-batches-py/), built from tiny batches."""
    import hashlib
    import tarfile

    from cifar_files import write_cifar_folder
    src = write_cifar_folder(tmp_path / "src")
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src, arcname="cifar-10-batches-py")
    return archive.as_uri(), hashlib.md5(archive.read_bytes()).hexdigest()


@pytest.mark.parametrize("cache", ["off", "moved"])
def test_a_download_goes_where_the_loader_looks_whatever_the_cache_says(tmp_path, monkeypatch, cache):
    url, md5 = _local_archive(tmp_path)
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("NBKERNELS_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NBKERNELS_CACHE", "off" if cache == "off" else str(tmp_path / "results-cache"))
    calls = []
    real = data.download_cifar10

    def local(root=None, **kw):
        calls.append(root)
        return real(root, url=url, md5=md5)

    monkeypatch.setattr(data, "download_cifar10", local)
    ds = data.load("cifar10", verbose=False)
    assert len(ds.x_train) == 60 and calls == [home / ".cache" / "nbkernels"]
    assert (home / ".cache" / "nbkernels" / "cifar-10-batches-py" / "data_batch_1").exists()
    assert not (tmp_path / "off").exists() and not (tmp_path / "results-cache" / "cifar-10-batches-py").exists()
    assert data.find_cifar10() == home / ".cache" / "nbkernels" / "cifar-10-batches-py"
    data.load("cifar10", verbose=False)
    assert len(calls) == 1, "the second load downloaded again instead of finding the first download"


def test_a_download_goes_to_nbkernels_data_when_it_is_set(tmp_path, monkeypatch):
    url, md5 = _local_archive(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("NBKERNELS_DATA", str(tmp_path / "data"))
    folder = data.download_cifar10(url=url, md5=md5)
    assert folder == tmp_path / "data" / "cifar-10-batches-py" and data.find_cifar10() == folder
    with pytest.raises(data.DataError, match="has MD5 .* expected 0+: the download was corrupted"):
        data.download_cifar10(tmp_path / "other", url=url, md5="0" * 32)


def _as_set(ds):
    """Images and labels as a sorted set of rows: subsets compared regardless of their drawn order."""
    rows = np.concatenate([ds.x_train.reshape(len(ds.x_train), -1), ds.y_train[:, None]], axis=1)
    return rows[np.lexsort(rows.T[::-1])]


def test_write_cifar10_reads_back_exactly_as_the_official_layout(tmp_path):
    rng = np.random.default_rng(0)
    x_tr = rng.integers(0, 256, (25, 32, 32, 3), dtype=np.uint8)
    y_tr = np.arange(25) % 10
    x_te = rng.integers(0, 256, (7, 32, 32, 3), dtype=np.uint8)
    y_te = np.arange(7) % 10
    folder = data.write_cifar10(tmp_path, x_tr, y_tr, x_te, y_te, per_batch=10)
    assert sorted(p.name for p in folder.iterdir()) == ["batches.meta", "data_batch_1", "data_batch_2",
                                                         "data_batch_3", "test_batch"]
    a, b, c, d, names = data.read_cifar10(folder)
    np.testing.assert_array_equal(a, x_tr); np.testing.assert_array_equal(b, y_tr)
    np.testing.assert_array_equal(c, x_te); np.testing.assert_array_equal(d, y_te)
    assert names == [f"class {i}" for i in range(10)]
    with pytest.raises(data.DataError, match="already exists"):
        data.write_cifar10(tmp_path, x_tr, y_tr, x_te, y_te)
    with pytest.raises(data.DataError, match=r"uint8 \(N, 32, 32, 3\)"):
        data.write_cifar10(tmp_path / "other", x_tr.astype(np.float32), y_tr, x_te, y_te)


def test_a_written_subset_loads_as_the_same_images(tiny_cifar, tmp_path):
    carried = data.write_subset(tmp_path / "carried", n_train=20, n_test=10, data_dir=tiny_cifar, seed=0)
    src = data.load("cifar10", n_train=20, n_test=10, data_dir=tiny_cifar, download=False, seed=0)
    back = data.load("cifar10", n_train=20, n_test=10, data_dir=carried.parent, download=False, seed=0)
    np.testing.assert_array_equal(_as_set(src), _as_set(back))
    assert sorted(back.y_test) == sorted(src.y_test) and back.class_names == src.class_names
    with pytest.raises(data.DataError, match="n_train=21 but only 20"):
        data.load("cifar10", n_train=21, data_dir=carried.parent, download=False)


def test_validation_is_held_out_of_the_training_pool(tiny_cifar):
    """n_val takes the images after the first n_train of the balanced order: the training images are the
    same with or without it, the validation images are distinct from them and balanced, the test set untouched."""
    plain = data.load("cifar10", n_train=20, n_test=10, data_dir=tiny_cifar, download=False, seed=3)
    ds = data.load("cifar10", n_train=20, n_val=20, n_test=10, data_dir=tiny_cifar, download=False, seed=3)
    np.testing.assert_array_equal(ds.x_train, plain.x_train)
    np.testing.assert_array_equal(ds.x_test, plain.x_test)
    assert ds.x_val.shape == (20, 32, 32, 3) and np.bincount(ds.y_val, minlength=10).tolist() == [2] * 10
    flat = lambda a: {a_.tobytes() for a_ in a}
    assert not flat(ds.x_val) & flat(ds.x_train)
    sp = data.prepare_split(ds, downsample_to=8)
    x_tr, _, x_te, y_te = data.prepare(plain, downsample_to=8)
    np.testing.assert_array_equal(sp.x_train, x_tr)          # statistics from the training images alone
    np.testing.assert_array_equal(sp.x_test, x_te)
    assert sp.x_val.shape == (20, 8, 8, 3) and sp.y_val.shape == (20, 10) and sp.val[0] is sp.x_val


def test_validation_errors_name_the_fix(tiny_cifar):
    with pytest.raises(data.DataError, match=r"n_train \+ n_val \(50 \+ 20\)=70 but only 60"):
        data.load("cifar10", n_train=50, n_val=20, data_dir=tiny_cifar, download=False)
    with pytest.raises(data.DataError, match="n_val needs n_train"):
        data.load("cifar10", n_val=5, data_dir=tiny_cifar, download=False)
    with pytest.raises(data.DataError, match="load it with n_val"):
        data.prepare_split(data.load("cifar10", n_train=10, data_dir=tiny_cifar, download=False))


def test_regularized_zca_keeps_classes_separable():
    """The data tour's second check as a test of the package: after ZCA at eps = 0.1, a nearest-class-mean
    classifier on scikit-learn's digits stays far above chance (10%)."""
    ds = data.load("digits", n_train=1000, n_test=500)
    x_tr, x_te = data.standardize_channels(ds.x_train, ds.x_test)
    z = data.ZCA(0.1).fit(x_tr)
    f_tr, f_te = (z.transform(a).reshape(len(a), -1) for a in (x_tr, x_te))
    means = np.stack([f_tr[ds.y_train == c].mean(0) for c in range(10)])
    pred = ((f_te[:, None, :] - means[None]) ** 2).sum(-1).argmin(1)
    acc = (pred == ds.y_test).mean()
    assert acc - 0.1 > 5 * np.sqrt(acc * (1 - acc) / len(pred)), acc
