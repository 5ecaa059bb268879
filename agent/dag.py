"""The lineage DAG of one output: the closed set of nodes a verdict may name."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from itertools import pairwise
from typing import Any

__all__ = ["Lineage"]


@dataclass(frozen=True)
class Lineage:
    """Nodes (component ids) with their kind and run, and parent -> child edges."""

    nodes: dict[str, dict[str, Any]]
    edges: tuple[tuple[str, str], ...]

    @classmethod
    def from_tool_data(cls, data: dict[str, Any]) -> Lineage:
        nodes = {n["node_id"]: n for n in data.get("nodes", [])}
        edges = tuple((p, c) for p, c in data.get("edges", []) if p in nodes and c in nodes)
        return cls(nodes=nodes, edges=edges)

    def kind(self, node: str) -> str:
        return str(self.nodes[node].get("kind", ""))

    @cached_property
    def children(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {n: [] for n in self.nodes}
        for parent, child in self.edges:
            out[parent].append(child)
        return out

    @cached_property
    def order(self) -> list[str]:
        """Topological order, upstream first (ties broken by the store's node order)."""
        indegree = {n: 0 for n in self.nodes}
        for _, child in self.edges:
            indegree[child] += 1
        ready = [n for n in self.nodes if indegree[n] == 0]
        out: list[str] = []
        while ready:
            node = ready.pop(0)
            out.append(node)
            for child in self.children[node]:
                indegree[child] -= 1
                if indegree[child] == 0:
                    ready.append(child)
        # a cycle in bad data: keep the remaining nodes rather than lose them
        return out + [n for n in self.nodes if n not in out]

    def index(self, node: str) -> int:
        return self.order.index(node) if node in self.nodes else len(self.order)

    def descendants(self, node: str) -> set[str]:
        seen: set[str] = set()
        stack = list(self.children.get(node, []))
        while stack:
            current = stack.pop()
            if current not in seen:
                seen.add(current)
                stack.extend(self.children[current])
        return seen

    @cached_property
    def sinks(self) -> list[str]:
        return [n for n in self.order if not self.children[n]]

    def path_to_sink(self, node: str, via: str | None = None) -> list[str]:
        """Shortest edge path from ``node`` (through ``via`` if given) to a sink."""
        if node not in self.nodes:
            return []
        if via is not None and via != node:
            head = self._shortest(node, {via})
            return head[:-1] + self.path_to_sink(via) if head else []
        return self._shortest(node, set(self.sinks)) or [node]

    def _shortest(self, start: str, goals: set[str]) -> list[str]:
        frontier: list[list[str]] = [[start]]
        seen = {start}
        while frontier:
            path = frontier.pop(0)
            if path[-1] in goals:
                return path
            for child in self.children[path[-1]]:
                if child not in seen:
                    seen.add(child)
                    frontier.append([*path, child])
        return []

    def follows_edges(self, path: list[str]) -> bool:
        edge_set = set(self.edges)
        return all(n in self.nodes for n in path) and all(
            (a, b) in edge_set for a, b in pairwise(path)
        )
