"""The import graph of app/, read from the source: every import statement counts, at module level or inside
a function, relative ones resolved. A node is a package of app (app.keys, app.gateway, ...) or a top-level
module (app.config, app.rawsql, ...). The graph has no cycle, domains never import the API layer, and
providers know neither Flask nor the gateway and the domains that use them."""
from __future__ import annotations

import ast
from pathlib import Path
from typing import NamedTuple

APP = Path(__file__).resolve().parent.parent / "app"
DOMAINS = ("accounts", "keys", "catalog", "usage", "audit", "settings", "policy")

# app/__init__.py re-exports create_app with a lazy import (so that `import app` stays cheap before gevent
# patches the standard library); the package itself is no layer.
ALLOWED = {("app", "app.factory")}


class Import(NamedTuple):
    module: str  # the importing module, e.g. "app.keys.views"
    line: int
    target: str  # the imported module, e.g. "app.policy.service" or "flask"

    def __str__(self) -> str:
        return f"{self.module} (line {self.line}) imports {self.target}"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(APP.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(APP.rglob("*.py"))}


def imports_of(module: str, source: str, is_package: bool = False) -> list[Import]:
    """Every import in `source`; `from x import y` names x.y when that is a module of app, else x."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [Import(module, node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".") if is_package else module.split(".")[:-1]
                package = package[:len(package) - node.level + 1]
                base = ".".join(package + ([node.module] if node.module else []))
            for alias in node.names:
                target = f"{base}.{alias.name}"
                found.append(Import(module, node.lineno, target if target in MODULES else base))
    return list(dict.fromkeys(found))


def all_imports() -> list[Import]:
    return [found for module, path in MODULES.items()
            for found in imports_of(module, path.read_text(), path.name == "__init__.py")]


def node(module: str) -> str:
    """app.keys.views → app.keys; app.config → app.config; app → app."""
    return ".".join(module.split(".")[:2])


def internal_arrows() -> list[Import]:
    """Imports from one node of app into another."""
    return [found for found in all_imports()
            if found.target.split(".")[0] == "app" and node(found.module) != node(found.target)
            and (node(found.module), node(found.target)) not in ALLOWED]


def components(edges: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[set[str]] = []

    def visit(name: str) -> None:
        index[name] = low[name] = len(index)
        stack.append(name)
        for other in edges.get(name, ()):
            if other not in index:
                visit(other)
                low[name] = min(low[name], low[other])
            elif other in stack:
                low[name] = min(low[name], index[other])
        if low[name] == index[name]:
            component = set()
            while name not in component:
                component.add(stack.pop())
            if len(component) > 1:
                found.append(component)

    for name in sorted(edges):
        if name not in index:
            visit(name)
    return found


def shortest_cycle(edges: dict[str, set[str]], component: set[str]) -> list[str]:
    """A shortest cycle inside the component, as its nodes with the first one repeated at the end."""
    best: list[str] = []
    for start in sorted(component):
        paths = {start: [start]}
        queue = [start]
        while queue:
            name = queue.pop(0)
            for other in sorted(edges.get(name, set()) & component):
                if other == start:
                    if not best or len(paths[name]) + 1 < len(best):
                        best = paths[name] + [start]
                    queue = []
                    break
                if other not in paths:
                    paths[other] = paths[name] + [other]
                    queue.append(other)
    return best


def test_the_walk_finds_function_local_and_relative_imports():
    source = "import flask\nfrom . import service\ndef f():\n    from ..policy import budget\n"
    assert imports_of("app.keys.views", source) == [
        Import("app.keys.views", 1, "flask"),
        Import("app.keys.views", 2, "app.keys.service"),
        Import("app.keys.views", 4, "app.policy.budget"),
    ]
    assert imports_of("app.keys", "from .context import KeyContext\n", is_package=True) == [
        Import("app.keys", 1, "app.keys.context")]


def test_no_cycle_between_the_packages_of_app():
    arrows = internal_arrows()
    edges: dict[str, set[str]] = {}
    for arrow in arrows:
        edges.setdefault(node(arrow.module), set()).add(node(arrow.target))
    problems = []
    for component in components(edges):
        loop = shortest_cycle(edges, component)
        hops = [str(arrow) for source, target in zip(loop, loop[1:]) for arrow in arrows
                if (node(arrow.module), node(arrow.target)) == (source, target)]
        problems.append(f"packages {', '.join(sorted(component))} import each other; one cycle is "
                        f"{' -> '.join(loop)}:\n    " + "\n    ".join(hops))
    assert not problems, "\n".join(problems)


def test_no_cycle_between_the_modules_of_app():
    edges: dict[str, set[str]] = {}
    for found in all_imports():
        if found.target in MODULES and found.target != found.module:
            edges.setdefault(found.module, set()).add(found.target)
    problems = [" -> ".join(shortest_cycle(edges, component)) for component in components(edges)]
    assert not problems, "modules that import each other:\n" + "\n".join(problems)


def test_domains_never_import_the_api_layer():
    wrong = [str(arrow) for arrow in internal_arrows()
             if node(arrow.module) in {f"app.{name}" for name in DOMAINS} and node(arrow.target) == "app.gateway"]
    assert not wrong, "\n".join(wrong)


def test_providers_know_no_flask_no_gateway_and_none_of_their_users():
    banned = ("app.gateway", "app.catalog", "app.keys", "app.usage")
    wrong = [str(found) for found in all_imports() if node(found.module) == "app.providers" and (
        found.target.split(".")[0] == "flask" or found.target.startswith("flask_")
        or node(found.target) in banned)]
    assert not wrong, "\n".join(wrong)
