"""pyproject.toml and environment.yml describe the same environment."""
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _name(req):
    return re.split(r"[<>=!~\[ ;]", req.strip(), 1)[0].lower().replace("_", "-")


def test_dependency_lists_agree():
    py = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {r.strip() for r in py["dependencies"] + py["optional-dependencies"]["test"]}
    env = (ROOT / "environment.yml").read_text()
    pip_section = env.split("- pip:", 1)[1]
    listed = {ln.strip()[2:].strip() for ln in pip_section.splitlines() if ln.strip().startswith("- ")}
    listed.discard("-e .")
    assert {_name(r): r for r in listed} == {_name(r): r for r in wanted}


def test_required_dependencies_declared():
    py = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {_name(r) for r in py["dependencies"]}
    assert {"jax", "jaxlib", "flax", "optax", "numpy", "matplotlib", "ipywidgets", "jupyterlab", "nbval",
            "papermill", "tqdm", "scikit-learn", "nbconvert"} <= names
    assert all(re.search(r">=\d", r) for r in py["dependencies"]), "every dependency has a lower bound"
