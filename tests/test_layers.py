"""The layer contract of edge_agent, checked on the source (ast, no import-linter needed).

Each package may import only those in layers below it; packages that share a layer are
independent of each other. Imports under ``if TYPE_CHECKING:`` are for the type checker
only and do not count; imports deferred into a function do (they still run).

Packages, top to bottom (docs/ARCHITECTURE.md tells what each holds):

    __main__ > cli > demo > agent > mqtt | client | simulator > keystore > state
    > transport | children > dlms

and inside ``dlms`` (the protocol core), likewise top to bottom:

    inspect | redact > push > association > cosem > link | apdu | security > encoding
    > secret | system_title | choice > errors

``cosem`` sits above ``apdu`` and ``security`` because selective access (Blue Book
4.3.6) and the Security setup methods (Blue Book 4.4.7) are built from them. The root
``edge_agent`` (``__version__``) may be imported from anywhere.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "edge_agent"

#: Top to bottom; a tuple is one layer of mutually independent packages.
TOP_LEVEL: Sequence[tuple[str, ...]] = (
    ("edge_agent.__main__",),
    ("edge_agent.cli",),
    ("edge_agent.demo",),
    ("edge_agent.agent",),
    ("edge_agent.mqtt", "edge_agent.client", "edge_agent.simulator"),
    ("edge_agent.keystore",),
    ("edge_agent.state",),
    ("edge_agent.transport", "edge_agent.children"),
    ("edge_agent.dlms",),
)

DLMS: Sequence[tuple[str, ...]] = (
    ("edge_agent.dlms.inspect", "edge_agent.dlms.redact"),
    ("edge_agent.dlms.push",),
    ("edge_agent.dlms.association",),
    ("edge_agent.dlms.cosem",),
    ("edge_agent.dlms.link", "edge_agent.dlms.apdu", "edge_agent.dlms.security"),
    ("edge_agent.dlms.encoding",),
    ("edge_agent.dlms.secret", "edge_agent.dlms.system_title", "edge_agent.dlms.choice"),
    ("edge_agent.dlms.errors",),
)

#: Importable from every layer.
SHARED = frozenset({"edge_agent"})

Graph = Mapping[str, set[tuple[str, int]]]


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> Iterable[ast.Import | ast.ImportFrom]:
    """Every import statement, leaving out the bodies of ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def import_graph(root: Path = PACKAGE) -> dict[str, set[tuple[str, int]]]:
    """module -> {(imported module, line)} for every module under ``root``."""
    modules = {module_name(path, root): path for path in sorted(root.rglob("*.py"))}
    graph: dict[str, set[tuple[str, int]]] = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        targets: set[tuple[str, int]] = set()
        for node in _imports(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets.update((alias.name, node.lineno) for alias in node.names)
                continue
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                # `from edge_agent.dlms import apdu` imports the module edge_agent.dlms.apdu
                targets.add((candidate if candidate in modules else base, node.lineno))
        graph[name] = {(t, line) for t, line in targets if t.split(".")[0] == root.name}
    return graph


def _owner(module: str, layers: Sequence[tuple[str, ...]]) -> tuple[int, str] | None:
    for index, layer in enumerate(layers):
        for package in layer:
            if module == package or module.startswith(package + "."):
                return index, package
    return None


def layer_violations(graph: Graph, layers: Sequence[tuple[str, ...]], scope: str) -> list[str]:
    """Imports inside ``scope`` that break ``layers`` (top to bottom), one line each."""
    problems = []
    for module, targets in sorted(graph.items()):
        if module != scope and not module.startswith(scope + "."):
            continue
        if module == scope:
            continue  # the package's own __init__ re-exports; its members are checked
        source = _owner(module, layers)
        if source is None:
            problems.append(f"{module} is in no layer of the contract: add it where it belongs")
            continue
        for target, line in sorted(targets):
            if target in SHARED or target == scope:
                continue
            if not target.startswith(scope + "."):
                continue  # an import outside this contract's scope: another contract's business
            owner = _owner(target, layers)
            if owner is None:
                problems.append(f"{module}:{line} imports {target}, which is in no layer")
            elif owner[1] == source[1]:
                continue
            elif owner[0] == source[0]:
                problems.append(
                    f"{module}:{line} imports {target}: {source[1]} and {owner[1]} share a "
                    "layer and must stay independent"
                )
            elif owner[0] < source[0]:
                problems.append(
                    f"{module}:{line} imports {target}: {owner[1]} is a layer above {source[1]}"
                )
    return problems


def import_cycles(graph: Graph) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for target, _ in graph.get(node, ()):
            if target not in graph:
                continue
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def _without_package_inits(graph: Graph) -> dict[str, set[tuple[str, int]]]:
    """A package's __init__ re-exporting its members is not a circle between them."""
    packages = {m for m in graph if (PACKAGE.parent / m.replace(".", "/") / "__init__.py").exists()}
    return {
        m: {(t, line) for t, line in targets if t not in packages}
        for m, targets in graph.items()
        if m not in packages
    }


# --- the contract on the real tree ------------------------------------------------------------


@pytest.fixture(scope="module")
def graph() -> dict[str, set[tuple[str, int]]]:
    return import_graph()


def test_top_level_packages_import_only_layers_below(graph: Graph) -> None:
    assert layer_violations(graph, TOP_LEVEL, "edge_agent") == []


def test_the_protocol_core_keeps_its_internal_order(graph: Graph) -> None:
    assert layer_violations(graph, DLMS, "edge_agent.dlms") == []


def test_the_protocol_core_imports_nothing_above_it(graph: Graph) -> None:
    outside = sorted(
        f"{module}:{line} imports {target}"
        for module, targets in graph.items()
        if module.startswith("edge_agent.dlms")
        for target, line in targets
        if not target.startswith("edge_agent.dlms") and target not in SHARED
    )
    assert outside == []


def test_no_module_imports_itself_through_others(graph: Graph) -> None:
    assert import_cycles(_without_package_inits(graph)) == []


# --- the checker catches what it should -------------------------------------------------------


def _tree(tmp_path: Path, files: Mapping[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return tmp_path / "edge_agent"


def _copy_of_the_real_tree(tmp_path: Path) -> Path:
    files = {
        str(path.relative_to(ROOT)): path.read_text(encoding="utf-8")
        for path in PACKAGE.rglob("*.py")
    }
    return _tree(tmp_path, files)


def test_an_upward_import_in_the_core_fails_the_contract(tmp_path: Path) -> None:
    root = _copy_of_the_real_tree(tmp_path)
    errors = root / "dlms" / "errors.py"
    errors.write_text(
        errors.read_text(encoding="utf-8") + "\nfrom edge_agent.dlms.association import client\n",
        encoding="utf-8",
    )
    problems = layer_violations(import_graph(root), DLMS, "edge_agent.dlms")
    assert len(problems) == 1
    assert problems[0].startswith("edge_agent.dlms.errors:")
    assert "edge_agent.dlms.association is a layer above edge_agent.dlms.errors" in problems[0]


def test_a_deferred_import_of_an_upper_package_fails_too(tmp_path: Path) -> None:
    root = _copy_of_the_real_tree(tmp_path)
    state = root / "state" / "facts.py"
    state.write_text(
        state.read_text(encoding="utf-8")
        + "\n\ndef _late():\n    from edge_agent.client.client import MeterClient\n    return MeterClient\n",
        encoding="utf-8",
    )
    problems = layer_violations(import_graph(root), TOP_LEVEL, "edge_agent")
    line = len(state.read_text().splitlines()) - 1
    assert problems == [
        f"edge_agent.state.facts:{line} imports edge_agent.client.client: "
        + "edge_agent.client is a layer above edge_agent.state"
    ]


def test_siblings_in_one_layer_must_stay_independent(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "edge_agent/__init__.py": "",
            "edge_agent/dlms/__init__.py": "",
            "edge_agent/dlms/apdu/__init__.py": "",
            "edge_agent/dlms/apdu/get.py": "from ..security import ciphering\n",
            "edge_agent/dlms/security/__init__.py": "",
            "edge_agent/dlms/security/ciphering.py": "",
        },
    )
    assert layer_violations(import_graph(root), DLMS, "edge_agent.dlms") == [
        "edge_agent.dlms.apdu.get:1 imports edge_agent.dlms.security.ciphering: "
        + "edge_agent.dlms.apdu and edge_agent.dlms.security share a layer and must stay independent"
    ]


def test_type_checking_imports_do_not_count_but_new_packages_must_be_placed(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "edge_agent/__init__.py": "",
            "edge_agent/dlms/__init__.py": "",
            "edge_agent/dlms/errors.py": (
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n    from edge_agent.dlms.push import decoder\n"
            ),
            "edge_agent/dlms/push/__init__.py": "",
            "edge_agent/dlms/push/decoder.py": "",
            "edge_agent/dlms/novel.py": "",
        },
    )
    assert layer_violations(import_graph(root), DLMS, "edge_agent.dlms") == [
        "edge_agent.dlms.novel is in no layer of the contract: add it where it belongs"
    ]


def test_a_circle_through_a_deferred_import_is_found(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "edge_agent/__init__.py": "",
            "edge_agent/a.py": "import edge_agent.b\n",
            "edge_agent/b.py": "def f():\n    from edge_agent import a\n    return a\n",
            "edge_agent/c.py": "import edge_agent.a\n",
        },
    )
    assert import_cycles(import_graph(root)) == [["edge_agent.a", "edge_agent.b"]]
