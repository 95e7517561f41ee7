"""Packaging as the ecosystem expects: the library's own dependencies, the notebook stack and the test tools as
extras, each with a lower and an upper bound that the installed (tested) versions satisfy; one version source;
py.typed; environment.yml saying the same as pyproject.toml."""
import ast
import importlib.metadata
import re
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
CORE = PROJECT["dependencies"]
EXTRAS = PROJECT["optional-dependencies"]
NOTEBOOK_STACK = ("jupyterlab", "ipywidgets", "ipykernel", "ipython", "papermill", "nbconvert", "nbformat", "jupytext")
TEST_TOOLS = ("pytest", "pytest-xdist", "nbval", "playwright")


def _name(req):
    return re.split(r"[<>=!~\[ ;]", req.strip(), 1)[0].lower().replace("_", "-")


def _all_requirements():
    return [r for r in CORE + EXTRAS["notebooks"] + EXTRAS["test"] if _name(r) != "nbkernels"]


def test_the_library_needs_no_notebook_stack_and_the_extras_hold_it():
    core = {_name(r) for r in CORE}
    assert {"jax", "jaxlib", "flax", "optax", "numpy", "scipy", "matplotlib"} <= core
    assert not core & set(NOTEBOOK_STACK + TEST_TOOLS), "the notebook stack and test tools are extras, not the library's"
    assert {_name(r) for r in EXTRAS["notebooks"]} == set(NOTEBOOK_STACK)
    assert {_name(r) for r in EXTRAS["test"]} == set(TEST_TOOLS) | {"nbkernels"}
    assert "nbkernels[notebooks]" in EXTRAS["test"], "the tests run the notebooks: [test] includes [notebooks]"
    assert "'.[notebooks,test]'" in (ROOT / "Makefile").read_text(), "the Makefile installs both extras"


@pytest.mark.parametrize("req", _all_requirements(), ids=_name)
def test_each_dependency_has_a_lower_and_an_upper_bound_that_the_tested_version_meets(req):
    r = Requirement(req)
    ops = {s.operator for s in r.specifier}
    assert ">=" in ops and ops & {"<", "<="}, f"{req}: give a lower bound and an upper bound"
    installed = importlib.metadata.version(r.name)
    assert r.specifier.contains(installed, prereleases=True), (
        f"{r.name} {installed} is installed and tested here but {req} excludes it: move the bounds")


def test_one_version_source():
    assert PROJECT.get("dynamic") == ["version"] and "version" not in PROJECT
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert tool["dynamic"]["version"] == {"attr": "nbkernels.__version__"}
    import nbkernels
    assert importlib.metadata.version("nbkernels") == nbkernels.__version__


def test_typed_and_described():
    assert (ROOT / "nbkernels" / "py.typed").exists()
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "py.typed" in tool["package-data"]["nbkernels"]
    assert "Typing :: Typed" in PROJECT["classifiers"] and PROJECT["urls"]


def test_environment_yml_lists_the_same_requirements():
    env = (ROOT / "environment.yml").read_text()
    pip_section = env.split("- pip:", 1)[1]
    listed = {ln.strip()[2:].strip().strip('"') for ln in pip_section.splitlines() if ln.strip().startswith("- ")}
    listed.discard('-e ".[notebooks,test]')
    assert listed == set(_all_requirements())
    assert '-e ".[notebooks,test]"' in env


def _imports(files, top_level_only=False):
    """Top-level module names imported by ``files`` (module level only, or anywhere)."""
    found = {}
    for f in files:
        tree = ast.parse(f.read_text())
        nodes = tree.body if top_level_only else ast.walk(tree)
        for node in nodes:
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for n in names:
                found.setdefault(n.split(".")[0], f.relative_to(ROOT).as_posix())
    return found


def _undeclared(imports, declared):
    dists = importlib.metadata.packages_distributions()
    own = {"nbkernels", "build", "cifar_files", "lab_server", "test_presets", "conftest"}
    return [f"{module} (imported in {where}; distribution {sorted({_name(d) for d in dists.get(module, [module])})})"
            for module, where in sorted(imports.items()) if module not in sys.stdlib_module_names and module not in own
            and not {_name(d) for d in dists.get(module, [module])} & declared]


def test_every_imported_third_party_module_is_declared_where_it_is_needed():
    package = sorted((ROOT / "nbkernels").glob("*.py"))
    core = {_name(r) for r in CORE}
    everything = {_name(r) for r in _all_requirements()} | {"packaging"}  # packaging: pip's, nbconvert's own
    assert not _undeclared(_imports(package, top_level_only=True), core), "the library imports only its own dependencies"
    notebooks = sorted((ROOT / "notebooks" / "src").glob("*.py")) + [ROOT / "notebooks" / "build.py"]
    assert not _undeclared(_imports(package + notebooks), core | {_name(r) for r in EXTRAS["notebooks"]})
    assert not _undeclared(_imports(sorted((ROOT / "tests").glob("*.py"))), everything)


def test_the_library_works_without_the_notebook_stack():
    """`pip install nbkernels` without extras: every module imports and a kernel, a training run and a figure
    work with JupyterLab, IPython, ipywidgets, papermill, nbconvert, jupytext, nbval and pytest unimportable."""
    blocked = ("IPython", "ipywidgets", "ipykernel", "jupyterlab", "papermill", "nbconvert", "nbformat", "jupytext",
               "nbval", "pytest", "playwright")
    code = textwrap.dedent(f"""
        import importlib.abc, sys
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {blocked!r}:
                    raise ImportError(f"{{name}} is not installed (blocked by the test)")
        sys.meta_path.insert(0, Block())
        import pkgutil, importlib, numpy as np
        import nbkernels as nbk
        for m in pkgutil.iter_modules(nbk.__path__):
            importlib.import_module("nbkernels." + m.name)
        from nbkernels import train, plots, data
        x = np.random.default_rng(0).normal(size=(12, 8, 8, 3)).astype("float32")
        y = data.one_hot(np.arange(12) % 10)
        k = nbk.cnn(1, 4).kernel(x, progress=False)
        r = train.train(nbk.cnn(1, 4), x, y, x, y, steps=3, lr=0.05, cache=False, progress=False)
        import matplotlib; matplotlib.use("Agg")
        fig, ax = plots.plt.subplots(); plots.label(ax, "a", "b")
        print("ok", k.nngp.shape, len(r.history["step"]))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                         env={**__import__("os").environ, "NBKERNELS_CACHE": "off"})
    assert out.returncode == 0 and out.stdout.startswith("ok (12, 12)"), out.stderr[-3000:]
