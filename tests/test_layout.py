"""The package's layout, measured from its imports: no cycle, a shallow graph, small modules.

Every module under src/bearerguard is parsed with `ast` (nothing is imported); relative imports
are resolved against the module's package, and imports inside functions are read too. Which
imports count for what:

- **Cycles: every import.** Module-level ones; those under `if TYPE_CHECKING:` (a type-only
  import is still a dependency of the module's text: a cycle through one is the same tangle of
  layers, which mypy and every reader follow, only hidden from the interpreter); and those inside
  functions (they run when the function is first called, so they cannot break start-up, but an
  import moved into a function to dodge a cycle hides the cycle rather than removing it).
- **Levels: the imports that run when a module is imported** (module level, outside
  `if TYPE_CHECKING:`). The level is how deep the import-time stack is, what loading a module
  loads; a type-only import loads nothing, and a function-level one loads its module later
  (`__main__` imports a command only when it runs, the demo its web server only when asked).
  `python tests/test_layout.py` prints the figure for the other two readings as well.
- **The tools' isolation: every import**, functions included: a request-path module must not
  reach into the CLI or the test kit, at import or later.
- Never the implicit import of a module's parent packages (`bearerguard/__init__.py` re-exports
  the facade, so counting it would put every module in one cycle with the facade).
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

PACKAGE = "bearerguard"
SOURCE = Path(__file__).resolve().parents[1] / "src" / PACKAGE

MAX_LEVELS = 12
MAX_LINES = 300

# Modules allowed over MAX_LINES: none. Split a module rather than list it here.
OVER_MAX_LINES: frozenset[str] = frozenset()

# The tools: nothing outside them imports them (the request path never pulls in the CLI or the
# test kit). The demo serves its API with `testing.LocalIssuer`, and the pytest plugin is the
# test kit's entry point.
TOOLS = {
    f"{PACKAGE}.cli": {f"{PACKAGE}.__main__"},
    f"{PACKAGE}.testing": {f"{PACKAGE}.cli", f"{PACKAGE}.pytest_plugin"},
}


def module_files(root: Path = SOURCE) -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name)."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.Module) -> Iterator[tuple[ast.Import | ast.ImportFrom, str]]:
    """Every import statement with when it runs: "runtime" (at module level), "typing" (under
    `if TYPE_CHECKING:`, never at run time) or "function" (when a function is called)."""

    def visit(node: ast.AST, when: str) -> Iterator[tuple[ast.Import | ast.ImportFrom, str]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import | ast.ImportFrom):
                yield child, when
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                yield from visit(child, "function")
            elif isinstance(child, ast.If) and _is_type_checking(child.test) and when != "function":
                for inner in child.body:
                    yield from visit(ast.Module(body=[inner], type_ignores=[]), "typing")
                for inner in child.orelse:
                    yield from visit(ast.Module(body=[inner], type_ignores=[]), when)
            else:
                yield from visit(child, when)

    yield from visit(tree, "runtime")


def imports(name: str, path: Path, known: Mapping[str, Path]) -> Iterator[tuple[str, str]]:
    """The package's modules that `name` imports, each with when the import runs (see above)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node, when in _import_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            # `from pkg import sub` imports the submodule; `from pkg import name` the package.
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                for alias in node.names
            ]
        for target in targets:
            module = target
            while module and module not in known:  # `import bearerguard.x.y` of a name
                module = module.rpartition(".")[0]
            if module and module != name:
                yield module, when


def import_graph(*whens: str) -> dict[str, set[str]]:
    """Module -> the modules it imports, counting the imports that run at `whens` (all of them
    by default: "runtime", "typing" and "function")."""
    counted = set(whens or ("runtime", "typing", "function"))
    known = module_files()
    return {
        name: {target for target, when in imports(name, path, known) if when in counted}
        for name, path in known.items()
    }


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return sorted(found)


def longest_chain(graph: Mapping[str, set[str]]) -> list[str]:
    """The longest import chain, a module importing the next; a cycle counts as one module."""
    component_of = {node: node for node in graph}
    for component in cycles(graph):
        for member in component:
            component_of[member] = component[0]
    condensed: dict[str, set[str]] = {}
    for node, targets in graph.items():
        condensed.setdefault(component_of[node], set()).update(
            component_of[t] for t in targets if component_of[t] != component_of[node]
        )
    chains: dict[str, list[str]] = {}

    def chain(node: str) -> list[str]:
        if node not in chains:
            below = [chain(target) for target in sorted(condensed.get(node, ()))]
            chains[node] = [node, *max(below, key=len, default=[])]
        return chains[node]

    return max((chain(node) for node in sorted(condensed)), key=len)


def line_counts() -> dict[str, int]:
    return {
        name: len(path.read_text(encoding="utf-8").splitlines())
        for name, path in module_files().items()
    }


def test_the_resolver_reads_relative_absolute_typing_and_function_level_imports() -> None:
    runtime, typing, function = (import_graph(when) for when in ("runtime", "typing", "function"))
    assert f"{PACKAGE}._errors" in runtime[f"{PACKAGE}._challenge"]  # from ._errors import (...)
    assert f"{PACKAGE}.asgi" in runtime[f"{PACKAGE}.integrations.django"]  # from .. import asgi
    assert f"{PACKAGE}.testing" in runtime[f"{PACKAGE}.pytest_plugin"]  # absolute
    assert f"{PACKAGE}._keys" in typing[f"{PACKAGE}._cache"]  # under `if TYPE_CHECKING:`
    assert f"{PACKAGE}._keys" not in runtime[f"{PACKAGE}._cache"]
    assert f"{PACKAGE}.cli._check" in function[f"{PACKAGE}.__main__"]  # only inside main()
    assert not any(t.startswith(f"{PACKAGE}.cli") for t in runtime[f"{PACKAGE}.__main__"])


def test_no_import_cycle() -> None:
    assert cycles(import_graph()) == []


def test_the_import_graph_is_at_most_twelve_levels_deep() -> None:
    chain = longest_chain(import_graph("runtime"))
    assert len(chain) <= MAX_LEVELS, " -> ".join(chain)


def test_the_configuration_loads_nothing_of_the_request_path() -> None:
    # Configuration types sit at the bottom: building an Issuer or an Introspection imports the
    # value checks, the URL rules and the errors, never the machinery that uses them.
    graph = import_graph("runtime")
    machinery = {
        f"{PACKAGE}.{name}"
        for name in ("_server", "_jwks", "_keys", "_roles", "_introspection", "_trusted", "_fetch")
    }
    for config in (f"{PACKAGE}._config", f"{PACKAGE}._config_introspection"):
        loaded: set[str] = set()
        todo = [config]
        while todo:
            for target in graph[todo.pop()] - loaded:
                loaded.add(target)
                todo.append(target)
        assert not loaded & machinery, f"{config} loads {sorted(loaded & machinery)}"


def test_no_module_is_over_three_hundred_lines() -> None:
    counts = line_counts()
    assert {name for name, n in counts.items() if n > MAX_LINES} <= OVER_MAX_LINES
    stale = {name for name in OVER_MAX_LINES if counts.get(name, 0) <= MAX_LINES}
    assert not stale, f"{sorted(stale)} are no longer over {MAX_LINES} lines: drop them"


def test_only_their_callers_import_the_tools() -> None:
    graph = import_graph()
    for tool, callers in TOOLS.items():
        for name, targets in graph.items():
            inside = name == tool or name.startswith(f"{tool}.")
            allowed = any(name == c or name.startswith(f"{c}.") for c in callers)
            if inside or allowed:
                continue
            used = {t for t in targets if t == tool or t.startswith(f"{tool}.")}
            assert not used, f"{name} imports {sorted(used)}"


def report() -> str:
    graph = import_graph()
    counts = line_counts()
    lines = [f"modules: {len(graph)}", f"cycles (every import): {cycles(graph)}"]
    for label, whens in (
        ("every import", ()),
        ("module level (TYPE_CHECKING included)", ("runtime", "typing")),
        ("run at import (no TYPE_CHECKING, no function-level)", ("runtime",)),
    ):
        chain = longest_chain(import_graph(*whens))
        lines.append(f"levels, {label}: {len(chain)}: {' -> '.join(chain)}")
    largest = sorted(counts.items(), key=lambda item: -item[1])[:10]
    lines.append("largest: " + ", ".join(f"{name} {n}" for name, n in largest))
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(report() + "\n")


def test_the_cli_reads_no_private_member_of_the_server() -> None:
    # `bearerguard check` runs the server's own steps through its public surface (`verifier`,
    # `key_source`): a private member read there would let the two drift apart unseen.
    for path in sorted((SOURCE / "cli").glob("*.py")):
        found = re.findall(r"\bserver\._[A-Za-z]\w*", path.read_text())
        assert not found, f"{path.name} reads {found}"
