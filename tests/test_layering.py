"""The package's layers hold: no module imports from a layer above its own, and no two
modules import each other, directly or around a circle.

From the bottom up (``docs/architecture.rst`` draws them):

0. ``numlstm._utils``, ``numlstm._version`` -- settings, validation, files, memory;
1. ``numlstm.kernels`` -- numba kernels (``kernels.cpu`` and ``kernels.cuda`` never import
   each other; both may use ``kernels.activations`` and ``kernels.common``);
2. ``numlstm.nn`` -- layers, network, the CPU/CUDA dispatch;
3. ``numlstm.training`` -- optimizers, trainers, checkpoints;
4. ``numlstm.estimators`` -- the scikit-learn estimators;
5. ``numlstm.io`` -- model files, PyTorch and ONNX exchange;
6. the faces: ``numlstm`` itself, ``__main__``, ``datasets``, ``plotting``, ``dask``,
   ``sktime``.

Every import counts, including those inside functions (imported lazily), since a lazy
import from above is still a dependency on a higher layer.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "numlstm"

LAYERS = [
    ("numlstm._utils", "numlstm._version"),
    ("numlstm.kernels",),
    ("numlstm.nn",),
    ("numlstm.training",),
    ("numlstm.estimators",),
    ("numlstm.io",),
    ("numlstm",),  # everything else: the package's faces
]

#: Sibling packages of one layer that must not import each other.
SEPARATE = [("numlstm.kernels.cpu", "numlstm.kernels.cuda")]


def _module_name(path):
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(source, name, is_package=False):
    """Absolute names of the numlstm modules (or module attributes) that the source of
    module ``name`` imports."""
    package = name if is_package else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module
            found.add(module)
            # "from . import x" may import the submodule x.
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return {m for m in found if m == "numlstm" or m.startswith("numlstm.")}


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _resolve(name):
    """The module ``name`` refers to (an attribute's module for ``module.attribute``)."""
    while name not in MODULES and "." in name:
        name = name.rpartition(".")[0]
    return name


def _layer(name):
    for rank, prefixes in enumerate(LAYERS):
        if any(name == p or name.startswith(p + ".") for p in prefixes):
            return rank
    raise AssertionError(name)


GRAPH = {name: {_resolve(m) for m in _imports(path.read_text(), name, path.name == "__init__.py")}
         - {name} for name, path in MODULES.items()}


def test_every_module_is_on_a_layer():
    for name in MODULES:
        assert 0 <= _layer(name) < len(LAYERS)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_import_from_a_higher_layer(name):
    # numlstm/__init__ and its faces sit on top; "numlstm" alone is the package itself.
    upward = sorted(m for m in GRAPH[name] if m != "numlstm" and _layer(m) > _layer(name))
    if name != "numlstm":
        upward += sorted(m for m in GRAPH[name] if m == "numlstm")
    assert not upward, f"{name} (layer {_layer(name)}) imports from above: {upward}"


@pytest.mark.parametrize("first, second", SEPARATE)
def test_separate_siblings(first, second):
    for a, b in ((first, second), (second, first)):
        for name in MODULES:
            if name == a or name.startswith(a + "."):
                wrong = [m for m in GRAPH[name] if m == b or m.startswith(b + ".")]
                assert not wrong, f"{name} imports {wrong}"


def test_no_import_circle():
    # Depth-first search for a back edge; report the circle found.
    state, stack = {}, []

    def visit(name):
        state[name] = "open"
        stack.append(name)
        for target in sorted(GRAPH[name]):
            if target == "numlstm" and name != "numlstm":
                continue  # importing the package itself is covered by the layer test
            if state.get(target) == "open":
                circle = stack[stack.index(target):] + [target]
                raise AssertionError("import circle: " + " -> ".join(circle))
            if target in GRAPH and target not in state:
                visit(target)
        stack.pop()
        state[name] = "done"

    for name in sorted(GRAPH):
        if name not in state:
            visit(name)


def test_the_check_sees_a_violation():
    # A kernel importing a layer, relatively or absolutely, inside a function or not.
    source = ("from ...nn import LSTM\nfrom . import blas\n"
              "def f():\n    import numlstm.estimators\n")
    found = {_resolve(m) for m in _imports(source, "numlstm.kernels.cpu.recurrent")}
    assert {"numlstm.nn", "numlstm.kernels.cpu.blas", "numlstm.estimators"} <= found
    assert _layer("numlstm.nn") > _layer("numlstm.kernels.cpu.recurrent")
