"""The package layout's rules (docs/architecture.md), checked on the import graph of the source tree:
no import circles (lazy imports inside functions count: they are still a dependency), ``detectors/``
imports nothing of the runtime, and only the CLI (the place that wires everything) reaches from
``stream/`` into ``review/``."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("stream", "detectors", "review")


def _modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for f in (ROOT / package).rglob("*.py"):
            rel = f.relative_to(ROOT)
            if "migrations" in rel.parts:
                continue
            name = ".".join(rel.with_suffix("").parts)
            out[name.removesuffix(".__init__")] = f
    return out


MODULES = _modules()


def _targets(module: str, path: Path, node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        if node.level:
            package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
            base = package[: len(package) - (node.level - 1)]
            target = ".".join(base + ([node.module] if node.module else []))
        else:
            target = node.module or ""
        names = [f"{target}.{a.name}" if f"{target}.{a.name}" in MODULES else target for a in node.names]
    out = []
    for name in names:
        while name and name not in MODULES:
            name = name.rpartition(".")[0]
        if name and name != module:
            out.append(name)
    return out


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import | ast.ImportFrom):
                graph[module].update(_targets(module, path, node))
    return graph


GRAPH = _graph()


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            v, children = work[-1]
            for w in children:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    component = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        component.append(w)
                        if w == v:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_the_graph_sees_relative_and_lazy_imports():
    assert "stream.cli.main" in GRAPH["stream.cli"]  # from stream.cli.main import main
    assert "review.actions" in GRAPH["review.app"]  # from .actions import ...
    assert "stream.offline.replay" in GRAPH["stream.cli.files"]  # imported inside the command


def test_no_import_circles():
    assert _cycles(GRAPH) == []


def test_detectors_import_nothing_of_the_runtime():
    bad = sorted((m, t) for m, ts in GRAPH.items() if m.startswith("detectors") for t in ts
                 if t.split(".")[0] in ("stream", "review"))
    assert bad == []


def test_only_the_cli_reaches_from_stream_into_review():
    bad = sorted((m, t) for m, ts in GRAPH.items() if m.startswith("stream") and not m.startswith("stream.cli")
                 for t in ts if t.startswith("review"))
    assert bad == []


def test_stream_packages_are_named_for_their_role():
    top = {p.name for p in (ROOT / "stream").iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert top == {"cli", "contract", "detection", "offline", "privacy", "sources", "store", "synth", "telemetry",
                   "worker"}
    loose = sorted(p.name for p in (ROOT / "stream").glob("*.py") if p.name != "__init__.py")
    assert loose == []
