"""Shopify's calculated query cost and the leaky bucket it is charged against.

Rules (shopify-api.md §2): scalars and enums cost 0, objects 1, a connection 2 plus ``first``
(or ``last``) times the cost of one node, every mutation field a flat 10. Interfaces and unions
would take the max over possible types; this sums inline fragments instead, which can only
over-charge. The actual cost re-walks the same selection over the returned data, so a page that
came back short is refunded as on Shopify.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    is_leaf_type,
    value_from_ast_untyped,
)

from tillsync_sim.shopify.clock import Clock

MUTATION_COST = 10
CONNECTION_BASE = 2
MAX_QUERY_COST = 1000

# Plan -> (bucket size, restore rate per second). Standard is observed; the others are the
# documented restore rates with the 20 s bucket pattern, which is an unverified inference.
PLANS: dict[str, tuple[float, float]] = {
    "standard": (2000.0, 100.0),
    "advanced": (4000.0, 200.0),
    "plus": (20000.0, 1000.0),
    "enterprise": (40000.0, 2000.0),
    # not a Shopify plan: lets benchmarks measure the simulator rather than the bucket
    "unlimited": (1e12, 1e12),
}

_UNKNOWN = object()


@dataclass
class _Walk:
    schema: GraphQLSchema
    fragments: dict[str, FragmentDefinitionNode]
    variables: dict[str, Any]


def operation_cost(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    fragments: dict[str, FragmentDefinitionNode],
    variables: dict[str, Any],
    data: Any = _UNKNOWN,
) -> int:
    """Requested cost (``data`` omitted) or actual cost (``data`` = the response data)."""
    if operation.operation is OperationType.MUTATION:
        fields = sum(1 for s in operation.selection_set.selections if isinstance(s, FieldNode))
        return MUTATION_COST * max(fields, 1)
    root = schema.query_type
    assert root is not None
    walk = _Walk(schema, fragments, variables)
    return _selection_cost(walk, root, operation.selection_set, data)


def _fields(walk: _Walk, selection_set: SelectionSetNode) -> list[FieldNode]:
    out: list[FieldNode] = []
    for sel in selection_set.selections:
        if isinstance(sel, FieldNode):
            out.append(sel)
        elif isinstance(sel, InlineFragmentNode):
            out.extend(_fields(walk, sel.selection_set))
        elif isinstance(sel, FragmentSpreadNode):
            frag = walk.fragments.get(sel.name.value)
            if frag is not None:
                out.extend(_fields(walk, frag.selection_set))
    return out


def _arg(walk: _Walk, node: FieldNode, name: str) -> Any:
    for arg in node.arguments or ():
        if arg.name.value == name:
            if isinstance(arg.value, VariableNode):
                return walk.variables.get(arg.value.name.value)
            return value_from_ast_untyped(arg.value, walk.variables)
    return None


def _field_def(parent: Any, name: str) -> GraphQLField | None:
    if isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
        return parent.fields.get(name)
    return None


def _selection_cost(walk: _Walk, parent: Any, selection_set: SelectionSetNode, data: Any) -> int:
    total = 0
    for node in _fields(walk, selection_set):
        name = node.name.value
        if name.startswith("__") or node.selection_set is None:
            continue
        field = _field_def(parent, name)
        if field is None:
            continue
        named = get_named_type(field.type)
        if is_leaf_type(named):
            continue
        key = node.alias.value if node.alias else name
        value = (
            data.get(key) if isinstance(data, dict) else (_UNKNOWN if data is _UNKNOWN else None)
        )
        if value is None:
            continue
        if named.name.endswith("Connection"):
            total += _connection_cost(walk, node, named, value)
        elif isinstance(value, list):
            total += sum(1 + _selection_cost(walk, named, node.selection_set, v) for v in value)
        else:
            total += 1 + _selection_cost(walk, named, node.selection_set, value)
    return total


def _connection_cost(walk: _Walk, node: FieldNode, conn_type: Any, value: Any) -> int:
    assert node.selection_set is not None
    per_node = 0
    node_type: Any = None
    edges = _field_def(conn_type, "nodes")
    if edges is not None:
        node_type = get_named_type(edges.type)
    if value is _UNKNOWN:
        count = _arg(walk, node, "first") or _arg(walk, node, "last") or 1
        per_node = 1 + _node_selection_cost(walk, node_type, node.selection_set, _UNKNOWN)
        return CONNECTION_BASE + int(count) * per_node
    nodes = _returned_nodes(walk, node.selection_set, value)
    return CONNECTION_BASE + sum(
        1 + _node_selection_cost(walk, node_type, node.selection_set, n) for n in nodes
    )


def _node_selection_cost(
    walk: _Walk, node_type: Any, conn_sel: SelectionSetNode, node_value: Any
) -> int:
    """Cost of one node's selection, found under ``nodes`` or ``edges { node }``."""
    total = 0
    for f in _fields(walk, conn_sel):
        if f.selection_set is None:
            continue
        if f.name.value == "nodes":
            total += _selection_cost(walk, node_type, f.selection_set, node_value)
        elif f.name.value == "edges":
            for inner in _fields(walk, f.selection_set):
                if inner.name.value == "node" and inner.selection_set is not None:
                    total += _selection_cost(walk, node_type, inner.selection_set, node_value)
    return total


def _returned_nodes(walk: _Walk, conn_sel: SelectionSetNode, value: Any) -> list[Any]:
    if not isinstance(value, dict):
        return []
    for f in _fields(walk, conn_sel):
        key = f.alias.value if f.alias else f.name.value
        if f.name.value == "nodes" and isinstance(value.get(key), list):
            return list(value[key])
        if f.name.value == "edges" and isinstance(value.get(key), list):
            out = []
            for edge in value[key]:
                if isinstance(edge, dict):
                    inner = next((v for v in edge.values() if isinstance(v, dict)), None)
                    out.append(inner)
            return out
    return []


class LeakyBucket:
    """Shopify's per-app cost bucket: refills continuously at ``restore_rate`` points/s."""

    def __init__(self, maximum: float, restore_rate: float, clock: Clock) -> None:
        self.maximum = maximum
        self.restore_rate = restore_rate
        self._clock = clock
        self._available = maximum
        self._at = clock.monotonic()

    @classmethod
    def for_plan(cls, plan: str, clock: Clock) -> LeakyBucket:
        try:
            maximum, rate = PLANS[plan.lower()]
        except KeyError:
            raise ValueError(f"unknown plan {plan!r}; one of {', '.join(PLANS)}") from None
        return cls(maximum, rate, clock)

    def _refill(self) -> None:
        now = self._clock.monotonic()
        if now > self._at:
            self._available = min(
                self.maximum, self._available + (now - self._at) * self.restore_rate
            )
        self._at = now

    @property
    def available(self) -> float:
        self._refill()
        return self._available

    def try_take(self, cost: float) -> bool:
        self._refill()
        if cost > self._available + 1e-6:  # float slack: 0.1 s x 100/s is 10 points
            return False
        self._available = max(0.0, self._available - cost)
        return True

    def refund(self, points: float) -> None:
        self._refill()
        self._available = min(self.maximum, self._available + max(points, 0.0))

    def drain(self) -> None:
        self._refill()
        self._available = 0.0

    def status(self) -> dict[str, float]:
        self._refill()
        return {
            "maximumAvailable": self.maximum,
            # floor, with a hair of slack so 0.05 s x 100/s reads as the 5 points it is
            "currentlyAvailable": int(self._available + 1e-6),
            "restoreRate": self.restore_rate,
        }
