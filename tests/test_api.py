"""The public API as the ecosystem expects it: every public function annotated, and the functions a user
starts from documented numpy-style (Parameters and Returns sections)."""
import ast
import importlib
import inspect
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "nbkernels"

# What the README and DESIGN tell a user to call.
PUBLIC_API = [
    "nbkernels.architecture.serial", "nbkernels.architecture.fcn", "nbkernels.architecture.cnn",
    "nbkernels.architecture.Architecture.kernel", "nbkernels.architecture.Architecture.network",
    "nbkernels.predict.gradient_descent_mse", "nbkernels.predict.nngp_posterior", "nbkernels.predict.accuracy",
    "nbkernels.predict.correct",
    "nbkernels.train.train",
    "nbkernels.study.kernel_accuracies", "nbkernels.study.kernel_curve", "nbkernels.study.finite_accuracies",
    "nbkernels.stats.paired", "nbkernels.stats.pooled", "nbkernels.stats.all_of", "nbkernels.stats.equivalent",
    "nbkernels.data.load", "nbkernels.data.prepare", "nbkernels.data.prepare_split", "nbkernels.data.one_hot",
    "nbkernels.data.zca", "nbkernels.data.augment",
    "nbkernels.notebook.choose_preset", "nbkernels.notebook.load", "nbkernels.notebook.verdict",
    "nbkernels.plots.publish", "nbkernels.plots.scale",
    "nbkernels.compute.compute_store", "nbkernels.compute.load",
]


def _public_functions():
    for f in sorted(PACKAGE.glob("*.py")):
        tree = ast.parse(f.read_text())

        def visit(body, prefix="", in_class=False):
            for node in body:
                if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                    yield from visit(node.body, prefix + node.name + ".", True)
                elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    if node.name.startswith("_") and node.name not in ("__init__", "__call__"):
                        continue
                    yield f"{f.stem}.{prefix}{node.name}", node, in_class
        yield from visit(tree.body)


FUNCTIONS = list(_public_functions())


def test_every_public_function_is_annotated():
    missing = []
    for name, node, in_class in FUNCTIONS:
        args = node.args.posonlyargs + node.args.args + node.args.kwonlyargs
        if in_class and args and args[0].arg in ("self", "cls"):
            args = args[1:]
        bad = [a.arg for a in args if a.annotation is None]
        bad += [f"*{x.arg}" for x in (node.args.vararg, node.args.kwarg) if x is not None and x.annotation is None]
        if node.returns is None and node.name != "__init__":
            bad.append("return")
        if bad:
            missing.append(f"{name}: {bad}")
    assert len(FUNCTIONS) > 200
    assert not missing, "public functions without annotations:\n" + "\n".join(missing)


def _obj(path):
    module, _, rest = path.partition(".")
    parts = path.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(path)


@pytest.mark.parametrize("path", PUBLIC_API, ids=[p.split(".", 1)[1] for p in PUBLIC_API])
def test_the_public_api_is_documented_numpy_style(path):
    doc = inspect.getdoc(_obj(path)) or ""
    for section in ("Parameters\n----------", "Returns\n-------"):
        if section.startswith("Parameters") and not inspect.signature(_obj(path)).parameters.keys() - {"self"}:
            continue
        assert section in doc, f"{path}'s docstring has no numpy-style {section.splitlines()[0]} section"
    documented = {line.split(" :")[0].strip().lstrip("*") for line in doc.split("Parameters\n----------", 1)[-1]
                  .split("\n\n")[0].splitlines() if " : " in line or line.strip().startswith("*")}
    names = {n for n in inspect.signature(_obj(path)).parameters if n != "self"}
    listed = set()
    for entry in documented:
        listed |= {e.strip() for e in entry.split(",")}
    assert names <= listed, f"{path}: parameters not in its Parameters section: {sorted(names - listed)}"
