"""`make lab` as the README says it: the server it starts finds the jupytext pairing, so saving a notebook
in JupyterLab writes its percent-format source in notebooks/src/ too."""
import json
import shlex
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import lab_server

REPO = Path(__file__).resolve().parent.parent
NAME = "00_data_tour"


def _make_lab_command() -> list:
    """The command `make lab` runs (make's dry run, with this test's Python environment as the venv)."""
    out = subprocess.run(["make", "-n", "--no-print-directory", "lab", f"VENV={sys.prefix}"], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout.strip().splitlines()
    return shlex.split([line for line in out if " lab " in f"{line} "][-1])  # the recipe's line (under make test, too)


def _api(base, path, method="GET", body=None):
    req = urllib.request.Request(f"{base}/api/contents/{path}?token=nbkernels-test", method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


def test_saving_in_make_lab_writes_the_paired_source(tmp_path):
    argv = _make_lab_command()
    assert argv[1:] == ["lab", "notebooks"], f"`make lab` runs {argv}; this test expects `jupyter lab notebooks`"
    # a copy of the repository's notebooks folder (saving must not touch the real one), laid out as in a checkout
    nbdir = tmp_path / "notebooks"
    (nbdir / "src").mkdir(parents=True)
    shutil.copy(REPO / "notebooks" / f"{NAME}.ipynb", nbdir)
    for config in (REPO / "notebooks").glob("jupytext.toml"):
        shutil.copy(config, nbdir)
    for config in REPO.glob("jupytext.toml"):
        shutil.copy(config, tmp_path)
    with lab_server.running(argv, cwd=tmp_path) as base:
        model = _api(base, f"{NAME}.ipynb")
        model["content"]["cells"].append({"cell_type": "markdown", "metadata": {}, "source": "A note saved in JupyterLab."})
        _api(base, f"{NAME}.ipynb", "PUT", {"type": "notebook", "format": "json", "content": model["content"]})
    source = nbdir / "src" / f"{NAME}.py"
    assert source.exists(), ("saving in the server `make lab` starts did not write notebooks/src/: the jupytext "
                             "configuration is not found from that server's root")
    assert "A note saved in JupyterLab." in source.read_text()
    assert source.read_text().startswith("# %% [markdown]")  # the percent format of notebooks/jupytext.toml
