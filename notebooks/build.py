"""Build each notebook from its jupytext percent-format source in ``notebooks/src/`` (see ``notebooks/jupytext.toml``).

The sources are what you edit and review; the ``.ipynb`` files are what JupyterLab, papermill and nbval
open. jupytext does the conversion; this script adds only what a source cannot carry: the stable output
nbval checks in the cell tagged ``verdict`` (``finding reproduced: yes``, or ``no`` where the cell's
metadata says ``expect="no"``, for a finding that does not reproduce at the ``ci`` scale), stable cell
ids and the kernelspec. ``tests/test_notebooks_sync.py`` fails when a notebook and its source disagree.

    python notebooks/build.py                   # every notebook
    python notebooks/build.py 02_nngp_vs_ntk    # one
    jupytext --sync notebooks/*.ipynb           # after editing an .ipynb in JupyterLab instead
"""
import sys
from pathlib import Path

import jupytext
import nbformat
from jupytext.config import load_jupytext_configuration_file

HERE = Path(__file__).resolve().parent
CONFIG = load_jupytext_configuration_file(str(HERE / "jupytext.toml"))
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


def source_of(name: str) -> Path:
    return HERE / "src" / f"{name}.py"


def notebook_from_source(src: Path) -> nbformat.NotebookNode:
    """The notebook a percent-format source stands for, with the verdict cell's expected output."""
    nb = jupytext.read(src, fmt="py:percent", config=CONFIG)
    for i, cell in enumerate(nb.cells):
        cell.id = f"c{i:02d}"  # stable ids keep rebuilt notebooks' diffs small
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
            if "verdict" in cell.metadata.get("tags", []):
                expect = cell.metadata.get("expect", "yes")
                if expect not in ("yes", "no"):
                    raise ValueError(f"{src.name}: the verdict cell's expect={expect!r}; use \"yes\" or \"no\".")
                cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"finding reproduced: {expect}\n")]
                cell.execution_count = 1
    nb.metadata = nbformat.from_dict({"kernelspec": KERNELSPEC, "language_info": {"name": "python"}})
    nb.nbformat, nb.nbformat_minor = 4, 5
    return nb


def source_text(nb) -> str:
    """A notebook's percent-format source, as jupytext writes it with the project's configuration."""
    return jupytext.writes(nb, fmt="py:percent", config=CONFIG)


def build(name: str) -> Path:
    out = HERE / f"{name}.ipynb"
    nbformat.write(notebook_from_source(source_of(name)), out)
    return out


def names() -> list:
    return [p.stem for p in sorted((HERE / "src").glob("[0-9][0-9]_*.py"))]


if __name__ == "__main__":
    for name in sys.argv[1:] or names():
        build(name)
        print("built", name)
