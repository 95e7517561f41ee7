"""Every notebook's presets: `gpu` and `paper` only run on an accelerator, so a missing or misspelt
setting there would surface far from here, hours into a run. Check their shape here instead, and run
each notebook's data cell at `gpu` (its sizes shrunk) on small official-layout CIFAR-10 files."""
from pathlib import Path

import jupytext
import numpy as np
import pytest

from nbkernels import notebook

SOURCES = sorted((Path(__file__).resolve().parents[1] / "notebooks" / "src").glob("[0-9][0-9]_*.py"))
TRAIN_KEYS, TEST_KEYS = ("n_train", "gap_train", "n_table"), ("n_test", "gap_test")
SIZE_LISTS = ("sizes", "gap_sizes", "fcn_sizes")


def _cells(path, tag=None):
    """The notebook's code cells (those tagged ``tag``, if given)."""
    return [c.source for c in jupytext.read(path, fmt="py:percent").cells
            if c.cell_type == "code" and (tag is None or tag in c.metadata.get("tags", []))]


def _preset_cell(path):
    cell = next(c for c in _cells(path) if "PRESETS = {" in c)
    cut = cell.index("cfg = ") if "cfg = " in cell else len(cell)
    return cell[:cut], cell[cut:]


def _presets(path):
    scope = {"np": np}
    exec(_preset_cell(path)[0], scope)
    return scope["PRESETS"]


@pytest.mark.parametrize("path", SOURCES, ids=[p.stem[:2] for p in SOURCES])
def test_every_preset_sets_the_same_things_and_paper_is_full_scale(path):
    presets = _presets(path)
    assert set(presets) == set(notebook.PRESET_NAMES) == {"ci", "default", "gpu", "paper"}, path.name
    keys = set(presets["ci"])
    for name in ("default", "gpu", "paper"):
        assert set(presets[name]) == keys, (path.name, name, set(presets[name]) ^ keys)
    paper = presets["paper"]
    for key in ("image", "gap_image"):
        if key in paper:
            assert paper[key] == 32, (path.name, key)
    val = paper.get("n_val", 0)  # validation images come out of the training pool
    for key, full in (("n_train", 50000 - val), ("gap_train", 50000 - val), ("n_test", 10000), ("gap_test", 10000)):
        if key in paper:
            assert paper[key] == full, (path.name, key, paper[key])
    if "sizes" in paper:
        assert max(paper["sizes"]) + val == 50000, path.name


@pytest.mark.parametrize("path", SOURCES, ids=[p.stem[:2] for p in SOURCES])
def test_gpu_preset_fits_the_carried_subset_and_is_larger_than_default(path):
    """The GPU run (benchmarks/gpu_run.py) carries notebook.GPU_DATA images; a `gpu` size beyond it
    would stop there with "only N examples are available"."""
    presets = _presets(path)
    gpu, default = presets["gpu"], presets["default"]
    val = gpu.get("n_val", 0)  # held out of the training pool
    for keys, limit in ((TRAIN_KEYS + SIZE_LISTS, notebook.GPU_DATA["n_train"] - val), (TEST_KEYS, notebook.GPU_DATA["n_test"])):
        for key in keys:
            if key in gpu:
                assert np.max(gpu[key]) <= limit, (path.name, key, gpu[key], limit)
    for key in ("image", "gap_image"):
        if key in gpu:
            assert gpu[key] in (8, 16, 32) and gpu[key] >= default[key], (path.name, key)
    assert any(np.max(gpu[k]) > np.max(default[k]) for k in TRAIN_KEYS + TEST_KEYS + SIZE_LISTS + ("image",)
               if k in gpu), f"{path.name}: the gpu preset is no larger than default"


def _shrunk(cfg):
    """The preset with its sizes cut to what a 60-image test folder holds (images and the rest kept)."""
    small = dict(cfg)
    for key in TRAIN_KEYS:
        if key in small:
            small[key] = 40
    for key in TEST_KEYS:
        if key in small:
            small[key] = 20
    if "n_val" in small:
        small["n_val"] = 10
    for key in SIZE_LISTS:
        if key in small:
            small[key] = [10, 20, 40][:len(small[key])]
    return small


@pytest.mark.parametrize("path", SOURCES, ids=[p.stem[:2] for p in SOURCES])
def test_gpu_preset_data_cell_runs_at_small_size(path, tiny_cifar, monkeypatch, capsys):
    monkeypatch.setenv("NBKERNELS_DATA", str(tiny_cifar))
    cells = _cells(path)
    imports = next(c for c in cells if "import nbkernels" in c)
    (params,) = _cells(path, "parameters")
    head, tail = _preset_cell(path)
    scope = {}
    exec(imports, scope)
    exec(params, scope)
    scope["preset"] = "gpu"
    exec(head, scope)
    gpu = scope["PRESETS"]["gpu"]
    scope["PRESETS"]["gpu"] = _shrunk(gpu)
    exec(tail, scope)
    assert scope["cfg"]["preset"] == "gpu" and scope["ds"].name == "cifar10"
    out = capsys.readouterr().out
    assert "CIFAR-10" in out and "gpu" in out, out
    if "image" in gpu:
        x = scope["x_tr"] if "x_tr" in scope else (scope["sp"].x_train if "sp" in scope else scope["x_vec"])
        assert x.shape[1:3] == (gpu["image"], gpu["image"]), (path.name, x.shape)


def test_all_fourteen_notebooks_are_checked():
    assert len(SOURCES) == 14
