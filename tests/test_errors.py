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
