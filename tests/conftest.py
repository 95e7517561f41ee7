import jax
import pytest

from cifar_files import write_cifar_folder

# Kernels are checked in float64; tests that need float32 ask for it explicitly.
jax.config.update("jax_enable_x64", True)




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
