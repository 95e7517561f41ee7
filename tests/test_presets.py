"""Every notebook's presets: the `paper` preset only runs on an accelerator with the full CIFAR-10, so a
missing or misspelt setting there would surface hours into a run. Check its shape here instead."""
from pathlib import Path

import jupytext
import numpy as np
import pytest

SOURCES = sorted((Path(__file__).resolve().parents[1] / "notebooks" / "src").glob("[0-9][0-9]_*.py"))


def _presets(path):
    cells = [c.source for c in jupytext.read(path, fmt="py:percent").cells]
    cell = next(c for c in cells if "PRESETS = {" in c)
    scope = {"np": np}
    exec(cell[:cell.index("cfg = ")] if "cfg = " in cell else cell, scope)
    return scope["PRESETS"]


@pytest.mark.parametrize("path", SOURCES, ids=[p.stem[:2] for p in SOURCES])
def test_every_preset_sets_the_same_things_and_paper_is_full_scale(path):
    presets = _presets(path)
    assert set(presets) == {"ci", "default", "paper"}, path.name
    keys = set(presets["ci"])
    for name in ("default", "paper"):
        assert set(presets[name]) == keys, (path.name, name, set(presets[name]) ^ keys)
    paper = presets["paper"]
    for key in ("image", "gap_image"):
        if key in paper:
            assert paper[key] == 32, (path.name, key)
    for key, full in (("n_train", 50000), ("gap_train", 50000), ("n_test", 10000), ("gap_test", 10000)):
        if key in paper:
            assert paper[key] == full, (path.name, key, paper[key])
    if "sizes" in paper:
        assert max(paper["sizes"]) == 50000, path.name


def test_all_fourteen_notebooks_are_checked():
    assert len(SOURCES) == 14
