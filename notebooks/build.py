"""Build the notebooks from their sources in ``notebooks/src/`` (plain text, easy to diff and review).

Cells are separated by lines ``#%% md``, ``#%% code`` or ``#%% code tags=a,b``. A cell tagged
``verdict`` gets the stable output nbval checks (``finding reproduced: yes``, or ``no`` with
``expect=no`` in its header, for a finding that does not reproduce at the ``ci`` scale). Run it after editing a
source: ``python notebooks/build.py`` (all) or ``python notebooks/build.py 02_nngp_vs_ntk``.
"""
import re
import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent


def build(src: Path, out: Path) -> None:
    cells = []
    for block in re.split(r"^#%% ", src.read_text(), flags=re.M)[1:]:
        head, _, body = block.partition("\n")
        body = body.strip("\n")
        kind, *rest = head.split()
        tags = [t for r in rest if r.startswith("tags=") for t in r[5:].split(",")]
        cell = nbformat.v4.new_markdown_cell(body) if kind == "md" else nbformat.v4.new_code_cell(body)
        if tags:
            cell.metadata["tags"] = tags
        if "verdict" in tags:
            # `expect=no` records, honestly, a finding that does not reproduce at the ci scale
            expect = next((r[7:] for r in rest if r.startswith("expect=")), "yes")
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"finding reproduced: {expect}\n")]
            cell.execution_count = 1
        cell.id = f"c{len(cells):02d}"  # stable ids keep rebuilt notebooks' diffs small
        cells.append(cell)
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nbformat.write(nb, out)


if __name__ == "__main__":
    names = sys.argv[1:] or [p.stem for p in sorted((HERE / "src").glob("*.py"))]
    for name in names:
        build(HERE / "src" / f"{name}.py", HERE / f"{name}.ipynb")
        print("built", name)
