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


def _imported_modules():
    """Top-level modules imported by the package and the notebooks' sources."""
    import ast
    files = sorted((ROOT / "nbkernels").glob("*.py")) + sorted((ROOT / "notebooks" / "src").glob("*.py")) + [
        ROOT / "notebooks" / "build.py"]
    found = {}
    for f in files:
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for n in names:
                found.setdefault(n.split(".")[0], f.relative_to(ROOT).as_posix())
    return found


def test_every_imported_third_party_module_is_declared():
    import importlib.metadata
    import sys
    py = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {_name(r) for r in py["dependencies"]}
    env = (ROOT / "environment.yml").read_text()
    dists = importlib.metadata.packages_distributions()
    missing = []
    for module, where in sorted(_imported_modules().items()):
        if module in sys.stdlib_module_names or module in ("nbkernels", "build"):
            continue
        names = {_name(d) for d in dists.get(module, [module])}
        if not names & declared:
            missing.append(f"{module} (imported in {where}; distribution {sorted(names)}) not in pyproject.toml")
        elif not any(re.search(rf"^\s*- {re.escape(n)}\b", env, re.M | re.I) for n in names | {n.replace('-', '_') for n in names}):
            missing.append(f"{module} (imported in {where}) not in environment.yml")
    assert not missing, missing
    assert {"scipy", "ml_dtypes", "jupytext", "jax", "flax"} <= set(_imported_modules())
