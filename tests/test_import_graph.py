"""No import circles among HC Studio's modules.

A circle (a imports b imports a) makes import order matter and hides which module owns what;
the one there was (`core.spacing` <-> `core.io.dicom`) hid two owners of the DICOM spacing.
grimp (installed with import-linter) reads every import statement, including those inside
functions, so a lazy import does not hide a circle.
"""

from __future__ import annotations

import pytest

grimp = pytest.importorskip("grimp")

PACKAGES = ("hc_studio.core", "hc_studio.app")


def import_circles(graph, modules: set[str]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan, iterative), each sorted."""
    edges = {m: sorted(graph.find_modules_directly_imported_by(m) & modules) for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []
    for start in sorted(modules):
        if start in index:
            continue
        work = [(start, 0)]
        while work:
            node, next_edge = work.pop()
            if next_edge == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            for position in range(next_edge, len(edges[node])):
                target = edges[node][position]
                if target not in index:
                    work.append((node, position + 1))
                    work.append((target, 0))
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            else:
                if low[node] == index[node]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == node:
                            break
                    if len(group) > 1:
                        circles.append(sorted(group))
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
    return circles


def test_the_finder_sees_a_circle() -> None:
    class Graph:
        imports = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}

        def find_modules_directly_imported_by(self, module: str) -> set[str]:
            return self.imports[module]

    assert import_circles(Graph(), {"a", "b", "c", "d"}) == [["a", "b", "c"]]


def test_no_import_circle_in_core_or_app() -> None:
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    modules = {m for m in graph.modules if m.startswith(PACKAGES)}
    assert import_circles(graph, modules) == []
