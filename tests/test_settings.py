"""The compute settings (nbkernels.settings) and the input boundary: read from the environment in one
module, overridden by a context or an argument, recorded by the kernel; channels-first images warned about."""
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import nbkernels as nbk
from nbkernels import blocks, settings

PACKAGE = Path(nbk.__file__).resolve().parent


def test_environment_is_read_once_into_a_frozen_settings_object():
    s = settings.Settings.from_env({"NBKERNELS_FUSED": "0", "NBKERNELS_BLOCK_GB": "0.5",
                                    "NBKERNELS_MAX_HOURS": "none", "NBKERNELS_PACK": "1"})
    assert (s.fused, s.block_gb, s.max_hours, s.pack) == (False, 0.5, None, True)
    assert settings.Settings.from_env({}) == settings.Settings()
    with pytest.raises(ValueError, match=r"\$NBKERNELS_FUSED='yes' is not a valid fused: use 0 or 1"):
        settings.Settings.from_env({"NBKERNELS_FUSED": "yes"})
    with pytest.raises(ValueError, match=r"block_gb must be positive, got -1.0 \(\$NBKERNELS_BLOCK_GB\)"):
        settings.Settings.from_env({"NBKERNELS_BLOCK_GB": "-1"})
    with pytest.raises(Exception):
        settings.Settings().fused = False  # frozen


def test_a_context_overrides_the_settings_and_the_kernel_records_them():
    x = np.random.default_rng(0).normal(size=(6, 5, 5, 3))
    arch = nbk.cnn(2, 4, readout="gap")
    before = settings.get()
    with settings.context(fused=False, block_gb=0.25) as inner:
        assert settings.get() is inner and (inner.fused, inner.block_gb) == (False, 0.25)
        k = arch.kernel(x, progress=False)
        plan = blocks.plan(arch, x, None)
        assert not plan.fused and plan.settings is inner
    assert settings.get() == before
    assert k.settings == inner
    one = arch.kernel(x, progress=False, settings=settings.Settings(fused=True))
    assert one.settings.fused and np.allclose(one.ntk, k.ntk, rtol=1e-12)  # the path changes no number
    with pytest.raises(TypeError, match=r"unknown setting\(s\) \['fast'\]"):
        with settings.context(fast=True):
            pass


def test_no_module_below_the_settings_reads_the_environment():
    """Only the settings module reads ``os.environ`` (the report builds its children's environment)."""
    readers = {p.name for p in PACKAGE.glob("*.py") if re.search(r"os\.environ\.get|os\.environ\[|getenv", p.read_text())}
    assert readers == {"settings.py"}, readers


def test_the_kernel_modules_import_in_one_direction_and_nothing_turns_x64_on():
    """settings, kernels, layers, fused, blocks, engine, architecture: each imports only modules before
    it (the engine no longer reaches back to the architecture to compile the fused kernel), and compiling
    the fused kernel leaves JAX's 64-bit mode as it was."""
    import ast
    order = ["settings", "kernels", "layers", "fused", "blocks", "engine", "architecture"]
    for i, name in enumerate(order):
        tree = ast.parse((PACKAGE / f"{name}.py").read_text())
        for node in ast.walk(tree):  # imports for type annotations alone (`if TYPE_CHECKING:`) never run
            if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
                node.body = []
        imported = {n.module or a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level == 1
                    for a in n.names}
        later = imported & set(order[i + 1:])
        assert not later, (name, later)
    code = "import jax; from nbkernels import engine; engine.warm(); print(jax.config.jax_enable_x64)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-1] == "False"


def test_channels_first_images_get_a_warning_naming_the_transpose():
    x = np.random.default_rng(0).normal(size=(6, 3, 8, 8))
    with pytest.warns(nbk.ChannelsFirstWarning, match=r"looks channels-first.*np\.transpose\(x1, \(0, 2, 3, 1\)\)"):
        nbk.cnn(1, 4).kernel(x, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nbk.cnn(1, 4).kernel(np.transpose(x, (0, 2, 3, 1)), progress=False)  # NHWC: no warning
        nbk.cnn(1, 4).kernel(np.zeros((2, 8, 8, 1)) + 1.0, progress=False)  # one channel, NHWC
    from nbkernels import data, train
    y = data.one_hot(np.arange(6) % 10)
    with pytest.warns(nbk.ChannelsFirstWarning) as caught:
        train.train(nbk.cnn(1, 2), x, y, x, y, steps=1, lr=0.01, cache=False, progress=False)
    assert [str(w.message).split(" has shape")[0] for w in caught] == ["x_train", "x_test"]  # each array named once
