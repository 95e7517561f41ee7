import pickle

import jax
import numpy as np
import pytest

# Kernels are checked in float64; tests that need float32 ask for it explicitly.
jax.config.update("jax_enable_x64", True)


def write_cifar_folder(root, n_per_batch=(30, 30), n_test=20, seed=0, corrupt=None):
    """Tiny CIFAR-10 in the official python-pickle layout (protocol 2, bytes keys)."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)

    def batch(n, label):
        y = [int(i % 10) for i in range(n)]
        return {b"batch_label": label.encode(), b"labels": y,
                b"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8),
                b"filenames": [f"img{i}.png".encode() for i in range(n)]}

    for i, n in enumerate(n_per_batch, 1):
        with open(folder / f"data_batch_{i}", "wb") as f:
            pickle.dump(batch(n, f"training batch {i}"), f, protocol=2)
    with open(folder / "test_batch", "wb") as f:
        pickle.dump(batch(n_test, "testing batch 1 of 1"), f, protocol=2)
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": names, b"num_cases_per_batch": 10000, b"num_vis": 3072}, f, protocol=2)
    return folder


@pytest.fixture
def tiny_cifar(tmp_path, monkeypatch):
    monkeypatch.delenv("NBKERNELS_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    write_cifar_folder(tmp_path / "data")
    return tmp_path / "data"


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NBKERNELS_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium per test session (Playwright's sync API allows one per process).

    Uses Debian's chromium (installed by .ci/run); Playwright downloads no browser of its own.
    """
    import os
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} not found: install Debian's chromium (apt-get install -y chromium), as .ci/run does")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        yield b
        b.close()
