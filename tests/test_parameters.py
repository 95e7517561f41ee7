"""Notebook parameters as papermill users meet them: typed (``--help-notebook`` shows the types), and a
misspelled or mistyped ``-p`` stops the run with the valid names instead of running the default preset."""
import json
import subprocess
import sys
from pathlib import Path
from typing import Optional

import nbformat
import pytest

from nbkernels import notebook

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NAMES = sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def _namespace(injected, **annotations):
    return {"__annotations__": annotations or {"preset": str, "dataset": str, "seed": int},
            "In": ["", "import os", "preset: str = 'default'", injected, "cfg = notebook.choose_preset(...)"],
            "preset": "ci", "dataset": "auto", "seed": 0, "presett": "ci", "n_train": 5.5}


def test_an_unknown_parameter_names_itself_and_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown parameter 'presett': this notebook's parameters are preset \(str\), "
                                         r"dataset \(str\), seed \(int\)"):
        notebook.check_parameters(_namespace('# Parameters\npresett = "ci"\n'))


def test_a_parameter_of_the_wrong_type_is_refused():
    with pytest.raises(ValueError, match=r"parameter 'seed' must be int, got 'one'"):
        notebook.check_parameters(dict(_namespace('# Parameters\nseed = "one"\n'), seed="one"))
    with pytest.raises(ValueError, match=r"parameter 'n_train' must be Optional\[int\], got 5.5"):
        notebook.check_parameters(_namespace('# Parameters\nn_train = 5.5\n', n_train=Optional[int]))
    notebook.check_parameters(dict(_namespace('# Parameters\nn_train = None\n', n_train=Optional[int]), n_train=None))


def test_nothing_injected_means_nothing_to_check():
    notebook.check_parameters(_namespace("x = 1"))            # JupyterLab, nbval: no papermill cell ran before
    notebook.check_parameters({"In": []})
    notebook.check_parameters()                                # outside IPython


@pytest.mark.parametrize("name", NAMES, ids=[n[:2] for n in NAMES])
def test_the_presets_cell_checks_the_parameters_right_after_papermill_injects_them(name):
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    at = [i for i, c in enumerate(code) if "parameters" in c.metadata.get("tags", [])]
    assert len(at) == 1, f"{name}: one cell tagged parameters"
    params = code[at[0]].source.splitlines()
    assert params and all(":" in ln.split("=")[0] for ln in params if ln.strip()), (
        f"{name}: every parameter annotated with its type (papermill --help-notebook shows it): {params}")
    assert "notebook.choose_preset(" in code[at[0] + 1].source, (
        f"{name}: the code cell after the parameters cell must call notebook.choose_preset, which checks what "
        "papermill injected between them")


def test_papermill_with_a_misspelled_parameter_fails_fast_with_the_valid_names(tmp_path):
    out = subprocess.run([sys.executable, "-m", "papermill", str(NOTEBOOKS / "13_cntk_depth.ipynb"), str(tmp_path / "o.ipynb"),
                          "-p", "presett", "ci", "--cwd", str(NOTEBOOKS), "--log-level", "ERROR", "--no-progress-bar"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode != 0
    assert "unknown parameter 'presett': this notebook's parameters are preset (str), dataset (str), seed (int)" in out.stderr
    ran = json.loads((tmp_path / "o.ipynb").read_text())["cells"]
    assert not any("finding reproduced" in json.dumps(c.get("outputs", [])) for c in ran)


def test_help_notebook_shows_each_parameters_type():
    out = subprocess.run([sys.executable, "-m", "papermill", "--help-notebook", str(NOTEBOOKS / "00_data_tour.ipynb")],
                         capture_output=True, text=True, timeout=120).stdout
    for expected in ("preset: str", "dataset: str", "n_train: Optional[int]", "seed: int"):
        assert expected in out, out
    assert "Unknown type" not in out
