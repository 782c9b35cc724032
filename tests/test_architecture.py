"""The package's shape, read from its source (docs/design.md, "Layers"): arrows point one way.

* No import circle among ``mtlbench/`` modules. Every import counts, lazy ones inside
  functions too (they are arrows all the same); only imports under ``if TYPE_CHECKING:``
  are left out, since they never run.
* The contract (``mtlbench.protocol``) is the only thing the env shares with the
  policies: ``env``, ``evaluation`` and ``data`` never import ``mtlbench.policies``.
* Modules stay small enough to read: none over :data:`MAX_LINES` lines, except those in
  :data:`LONG_MODULES`, each with its reason.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mtlbench"
MAX_LINES = 400
#: modules allowed over MAX_LINES, with the reason (docs/design.md points here)
LONG_MODULES: dict[str, str] = {
    "mtlbench.cli": "argparse declarations: help text on every option and an examples section per "
    "command (issue 11); the command functions themselves are short",
    "mtlbench.env": "MTLEnv keeps the episode's state machine: reset, forward pass and Jacobian, "
    "observations, step, evaluation, checkpoint/restore, each reading and writing the episode's state; "
    "the action application (mtlbench.actions), data order (mtlbench.data_order), spaces "
    "(mtlbench.env_spaces, mtlbench.spaces), optimisers (mtlbench.optim) and selection score "
    "(mtlbench.selection) are out",
    "mtlbench.registration": "BenchmarkSpec and its parts, the registry and the Gymnasium EnvSpec: the "
    "spec dataclasses are declarations",
    "mtlbench.data.mtan_layout": "the MTAN .npy layout NYUv2 and CityScapes share: lazy loading, "
    "augmentation, header and value checks, prepare",
    "mtlbench.data.qm9": "one module per dataset: qm9pack's CSV parsing, units, split, cache, verify",
    "mtlbench.data.xtreme": "one module per dataset: PAWS-X and UD-POS readers, tokenisation, prepare",
    "mtlbench.data.office": "one module per dataset: Office-31 and Office-Home layouts and split lists",
    "mtlbench.harness.isolation": "the parent side of the policy-process protocol: buffers, replies, limits",
    "mtlbench.harness.submission": "the submission.yaml schema, one validator per field with its message",
    "mtlbench.leaderboard.build": "grouping, delta_p, litmus verdicts, ranks and the IQM of the board",
    "mtlbench.leaderboard.plots": "four plots sharing one style table",
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _resolve(name: str) -> str | None:
    """The mtlbench module an imported dotted name lives in (longest known prefix)."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in MODULES:
            return candidate
        parts.pop()
    return None


def imports_of(module: str) -> set[str]:
    """mtlbench modules that ``module`` imports at run time (not under TYPE_CHECKING)."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _resolve(alias.name)
                if target:
                    found.add(target)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                origin = ".".join([*base, node.module] if node.module else base)
            else:
                origin = node.module or ""
            for alias in node.names:
                target = _resolve(f"{origin}.{alias.name}") or _resolve(origin)
                if target:
                    found.add(target)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    found.discard(module)
    return found


GRAPH = {m: imports_of(m) for m in MODULES}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def strongconnect(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            strongconnect(v)
    return out


def test_the_reader_finds_a_planted_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_the_reader_sees_lazy_imports_and_skips_type_checking() -> None:
    source = (
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from mtlbench.env import MTLEnv\n"
        "def f():\n    from mtlbench import policies\n"
    )
    tree = compile(source, "<test>", "exec", ast.PyCF_ONLY_AST)
    assert isinstance(tree, ast.Module)  # the source parses; imports_of reads real files
    assert (
        "mtlbench.policies" in GRAPH["mtlbench.harness.train"]
        or "mtlbench.policies.base" in (GRAPH["mtlbench.harness.train"])
    )


def test_no_import_cycles() -> None:
    cycles = find_cycles(GRAPH)
    assert not cycles, "import cycles (break them; see docs/design.md): " + "; ".join(
        " <-> ".join(c) for c in cycles
    )


@pytest.mark.parametrize(
    "prefix",
    [
        "mtlbench.env",
        "mtlbench.actions",
        "mtlbench.data_order",
        "mtlbench.env_spaces",
        "mtlbench.optim",
        "mtlbench.selection",
        "mtlbench.spaces",
        "mtlbench.evaluation",
        "mtlbench.data",
    ],
)
def test_the_env_side_never_imports_policies(prefix: str) -> None:
    offenders = {
        m: sorted(t for t in targets if t == "mtlbench.policies" or t.startswith("mtlbench.policies."))
        for m, targets in GRAPH.items()
        if m == prefix or m.startswith(prefix + ".")
    }
    assert not {m: t for m, t in offenders.items() if t}


def test_modules_stay_readable() -> None:
    long = {
        m: len(p.read_text().splitlines())
        for m, p in MODULES.items()
        if len(p.read_text().splitlines()) > MAX_LINES
    }
    unexplained = {m: n for m, n in long.items() if m not in LONG_MODULES}
    assert not unexplained, f"modules over {MAX_LINES} lines (split them or list the reason): {unexplained}"
    stale = set(LONG_MODULES) - set(long)
    assert not stale, f"LONG_MODULES lists modules that are short now: {sorted(stale)}"


#: docstring fields of other styles (Google's ``Args:``, Sphinx's ``:param x:``); the package
#: uses numpy-style ``Parameters`` sections (docs/design.md, "Names and conventions")
FOREIGN_DOCSTRING_FIELDS = re.compile(
    r"^\s*(Args|Arguments|Keyword Args|Kwargs):\s*$|:param \w+:|:returns?:|:rtype:", re.M
)


def _docstrings(tree: ast.Module) -> list[tuple[str, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            doc = ast.get_docstring(node, clean=False)
            if doc:
                found.append((getattr(node, "name", "<module>"), doc))
    return found


def test_the_reader_flags_foreign_docstring_fields() -> None:
    google = ast.parse('def f(x):\n    """Do.\n\n    Args:\n        x: a thing\n    """\n')
    sphinx = ast.parse('def f(x):\n    """Do.\n\n    :param x: a thing\n    """\n')
    numpy = ast.parse(
        'def f(x):\n    """Do.\n\n    Parameters\n    ----------\n    x\n        A thing.\n    """\n'
    )
    assert [
        FOREIGN_DOCSTRING_FIELDS.search(d) is not None
        for t in (google, sphinx, numpy)
        for _, d in _docstrings(t)
    ] == [
        True,
        True,
        False,
    ]


def test_one_docstring_style_and_every_module_says_what_it_is_for() -> None:
    undocumented, foreign = [], []
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        if not ast.get_docstring(tree):
            undocumented.append(module)
        foreign += [
            f"{module}.{name}" for name, doc in _docstrings(tree) if FOREIGN_DOCSTRING_FIELDS.search(doc)
        ]
    assert not undocumented, f"modules without a docstring saying what they are for: {undocumented}"
    assert not foreign, (
        f"docstrings with Google/Sphinx fields (use a numpy-style Parameters section): {foreign}"
    )
