"""A small GraphQL executor for documents that already passed validation.

graphql-core 3.3's executor spends ~400 µs on a one-entry inventorySetQuantities because it
supports streaming, deferral and awaitables at every step; the simulator needs none of that.
This walks the validated AST over the resolver dicts directly: variables are coerced against
their declared types (errors shaped like Shopify's INVALID_VARIABLE), arguments are coerced
from literals or variables, ``@skip``/``@include`` are honoured, abstract types resolve from
``__typename``, and a null in a non-null position propagates to the nearest nullable field,
as the spec requires. Resolvers get an ``Info`` with the attributes graphql-core's would have
that the simulator reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    BooleanValueNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLEnumType,
    GraphQLError,
    GraphQLInputObjectType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    Undefined,
    VariableNode,
    type_from_ast,
    value_from_ast,
)

_MAX_INT = 2**31 - 1


class _NullInNonNull(Exception):
    """A non-null field resolved to null; unwinds to the nearest nullable field."""


@dataclass(slots=True)
class Info:
    field_name: str
    field_nodes: list[FieldNode]
    return_type: Any
    parent_type: GraphQLObjectType
    path: list[str | int]
    schema: GraphQLSchema
    variable_values: dict[str, Any]
    context: Any
    operation: OperationDefinitionNode


@dataclass
class Result:
    data: dict[str, Any] | None
    errors: list[dict[str, Any]] = field(default_factory=list)


class VariableError(Exception):
    pass


# -- variables --------------------------------------------------------------------------------


def _coerce(value: Any, type_: Any, where: str) -> Any:
    kind = type(type_)  # exact-type checks: isinstance on graphql-core's generics is slow
    if kind is GraphQLNonNull:
        if value is None:
            raise VariableError(f"{where}: expected a value of type {type_}, found null")
        return _coerce(value, type_.of_type, where)
    if value is None:
        return None
    if kind is GraphQLList:
        items = value if type(value) is list else [value]
        return [_coerce(v, type_.of_type, f"{where}[{i}]") for i, v in enumerate(items)]
    if kind is GraphQLInputObjectType:
        if type(value) is not dict:
            raise VariableError(f"{where}: expected an object for {type_.name}")
        fields = type_.fields
        for k in value:
            if k not in fields:
                raise VariableError(f"{where}: field '{k}' is not defined by {type_.name}")
        out: dict[str, Any] = {}
        for name, f in fields.items():
            if name in value:
                out[name] = _coerce(value[name], f.type, where)
            elif f.default_value is not Undefined:
                out[name] = f.default_value
            elif type(f.type) is GraphQLNonNull:
                raise VariableError(f"{where}: missing required field '{name}' ({f.type})")
        return out
    if kind is GraphQLEnumType:
        if not isinstance(value, str) or value not in type_.values:
            raise VariableError(f"{where}: {value!r} is not a valid {type_.name}")
        return type_.values[value].value
    name = type_.name
    vt = type(value)
    if name == "Int":
        if vt is not int or abs(value) > _MAX_INT:
            raise VariableError(f"{where}: {value!r} is not a valid Int")
        return value
    if name == "String":
        if vt is not str:
            raise VariableError(f"{where}: {value!r} is not a valid String")
        return value
    if name == "ID":
        if vt is not str and vt is not int:
            raise VariableError(f"{where}: {value!r} is not a valid ID")
        return str(value)
    if name == "Boolean":
        if vt is not bool:
            raise VariableError(f"{where}: {value!r} is not a valid Boolean")
        return value
    if name == "Float":
        if vt is not int and vt is not float:
            raise VariableError(f"{where}: {value!r} is not a valid Float")
        return float(value)
    return value  # Shopify's custom scalars (URL, DateTime, Money...) travel as JSON


# Keyed by node identity: graphql-core hashes AST nodes by walking the whole subtree, which
# cost more than the execution itself. Documents are cached, so nodes live as long as this.
_VARIABLE_TYPES: dict[int, tuple[OperationDefinitionNode, tuple[tuple[str, Any, Any], ...]]] = {}


def _variable_types(
    schema: GraphQLSchema, operation: OperationDefinitionNode
) -> tuple[tuple[str, Any, Any], ...]:
    cached = _VARIABLE_TYPES.get(id(operation))
    if cached is not None and cached[0] is operation:
        return cached[1]
    out = []
    for d in operation.variable_definitions or ():
        type_: Any = type_from_ast(schema, d.type)
        default = value_from_ast(d.default_value, type_) if d.default_value else Undefined
        out.append((d.variable.name.value, type_, default))
    if len(_VARIABLE_TYPES) > 4096:
        _VARIABLE_TYPES.clear()
    _VARIABLE_TYPES[id(operation)] = (operation, tuple(out))
    return tuple(out)


def coerce_variables(
    schema: GraphQLSchema, operation: OperationDefinitionNode, raw: Mapping[str, Any]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, type_, default in _variable_types(schema, operation):
        if name in raw:
            out[name] = _coerce(raw[name], type_, f"Variable ${name}")
        elif default is not Undefined:
            out[name] = default
        elif isinstance(type_, GraphQLNonNull):
            raise VariableError(f"Variable ${name} of type {type_} was provided invalid value")
    return out


# -- execution --------------------------------------------------------------------------------


@dataclass(slots=True)
class _FieldPlan:
    key: str
    name: str
    nodes: list[FieldNode]
    fdef: Any  # GraphQLField, None for __typename
    sub: list[SelectionSetNode]


# Collected fields per (runtime type, selection sets), by identity; see _VARIABLE_TYPES.
_PLANS: dict[tuple[int, tuple[int, ...]], tuple[Any, list[_FieldPlan]]] = {}

Path = tuple[Any, str | int] | None


def _path_list(path: Path) -> list[str | int]:
    out: list[str | int] = []
    while path is not None:
        path, key = path
        out.append(key)
    out.reverse()
    return out


class _Executor:
    def __init__(
        self,
        schema: GraphQLSchema,
        operation: OperationDefinitionNode,
        fragments: dict[str, FragmentDefinitionNode],
        variables: dict[str, Any],
        context: Any,
    ) -> None:
        self.schema = schema
        self.operation = operation
        self.fragments = fragments
        self.variables = variables
        self.context = context
        self.errors: list[dict[str, Any]] = []

    def _included(self, node: Any) -> bool | None:
        """True/False for @skip/@include, None when the node has neither (cacheable)."""
        verdict: bool | None = None
        for d in node.directives or ():
            name = d.name.value
            if name not in ("skip", "include"):
                continue
            arg = d.arguments[0].value if d.arguments else None
            if isinstance(arg, VariableNode):
                flag = bool(self.variables.get(arg.name.value))
            else:
                flag = isinstance(arg, BooleanValueNode) and arg.value
            if (name == "skip") == flag:
                return False
            verdict = True
        return verdict

    def _applies(self, type_condition: Any, runtime: GraphQLObjectType) -> bool:
        if type_condition is None:
            return True
        cond = self.schema.get_type(type_condition.name.value)
        if cond is runtime:
            return True
        return cond is not None and self.schema.is_sub_type(cond, runtime)  # type: ignore[arg-type]

    def plan(
        self, runtime: GraphQLObjectType, selection_sets: list[SelectionSetNode]
    ) -> list[_FieldPlan]:
        cache_key = (id(runtime), tuple(id(s) for s in selection_sets))
        hit = _PLANS.get(cache_key)
        if hit is not None and hit[0][0] is runtime and hit[0][1] == selection_sets:
            return hit[1]
        fields: dict[str, list[FieldNode]] = {}
        visited: set[str] = set()
        cacheable = True

        def walk(sel_set: SelectionSetNode) -> None:
            nonlocal cacheable
            for sel in sel_set.selections:
                included = self._included(sel)
                if included is not None:
                    cacheable = False
                    if not included:
                        continue
                if isinstance(sel, FieldNode):
                    key = sel.alias.value if sel.alias else sel.name.value
                    fields.setdefault(key, []).append(sel)
                elif isinstance(sel, InlineFragmentNode):
                    if self._applies(sel.type_condition, runtime):
                        walk(sel.selection_set)
                elif isinstance(sel, FragmentSpreadNode):
                    name = sel.name.value
                    frag = self.fragments.get(name)
                    if name in visited or frag is None:
                        continue
                    visited.add(name)
                    if self._applies(frag.type_condition, runtime):
                        walk(frag.selection_set)

        for s in selection_sets:
            walk(s)
        plans = []
        for key, nodes in fields.items():
            name = nodes[0].name.value
            fdef = None if name == "__typename" else runtime.fields[name]
            sub = [n.selection_set for n in nodes if n.selection_set is not None]
            plans.append(_FieldPlan(key, name, nodes, fdef, sub))
        if cacheable:
            if len(_PLANS) > 16384:
                _PLANS.clear()
            _PLANS[cache_key] = ((runtime, list(selection_sets)), plans)
        return plans

    def object(
        self,
        runtime: GraphQLObjectType,
        nodes: list[SelectionSetNode],
        source: Any,
        path: Path,
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        is_map = isinstance(source, Mapping)
        for fp in self.plan(runtime, nodes):
            if fp.fdef is None:
                out[fp.key] = runtime.name
                continue
            value = source.get(fp.name) if is_map else getattr(source, fp.name, None)
            if value is not None and not callable(value) and type(value) in _PLAIN:
                # fast path: a stored scalar needs no completion beyond a null check
                out[fp.key] = value
                continue
            out[fp.key] = self.field(runtime, fp, value, (path, fp.key))
        return out

    def field(self, parent: GraphQLObjectType, fp: _FieldPlan, value: Any, path: Path) -> Any:
        fdef = fp.fdef
        try:
            if callable(value):
                info = Info(
                    fp.name,
                    fp.nodes,
                    fdef.type,
                    parent,
                    _path_list(path),
                    self.schema,
                    self.variables,
                    self.context,
                    self.operation,
                )
                value = value(info, **self._arguments(fdef, fp.nodes[0]))
            return self.complete(fdef.type, fp, value, path)
        except _NullInNonNull:
            if type(fdef.type) is GraphQLNonNull:
                raise
            return None
        except GraphQLError as exc:
            self._error(exc.message, fp.nodes, path, exc.extensions or {})
        except Exception as exc:  # a resolver bug must not take the server down
            self._error(f"Internal error: {exc}", fp.nodes, path, {"code": "INTERNAL_SERVER_ERROR"})
        if type(fdef.type) is GraphQLNonNull:
            raise _NullInNonNull()
        return None

    def _error(self, message: str, nodes: list[FieldNode], path: Path, ext: dict[str, Any]) -> None:
        err: dict[str, Any] = {"message": message}
        loc = nodes[0].loc
        if loc is not None:
            line, col = _line_col(loc.source.body, loc.start)
            err["locations"] = [{"line": line, "column": col}]
        err["path"] = _path_list(path)
        err["extensions"] = ext if ext.get("code") else {"code": "INTERNAL_SERVER_ERROR", **ext}
        self.errors.append(err)

    def _arguments(self, fdef: Any, node: FieldNode) -> dict[str, Any]:
        if not fdef.args:
            return {}
        given = {a.name.value: a.value for a in node.arguments or ()}
        out: dict[str, Any] = {}
        for name, arg in fdef.args.items():
            if name in given:
                v = given[name]
                if isinstance(v, VariableNode):
                    if v.name.value in self.variables:
                        out[name] = self.variables[v.name.value]
                    elif arg.default_value is not Undefined:
                        out[name] = arg.default_value
                    continue
                coerced = value_from_ast(v, arg.type, self.variables)
                if coerced is Undefined:
                    raise GraphQLError(
                        f"Argument '{name}' has an invalid value",
                        extensions={"code": "argumentLiteralsIncompatible"},
                    )
                out[name] = coerced
            elif arg.default_value is not Undefined:
                out[name] = arg.default_value
        return out

    def complete(self, type_: Any, fp: _FieldPlan, value: Any, path: Path) -> Any:
        kind = type(type_)
        if kind is GraphQLNonNull:
            result = self.complete(type_.of_type, fp, value, path)
            if result is None:
                self._error(
                    f"Cannot return null for non-nullable field {fp.name}",
                    fp.nodes,
                    path,
                    {"code": "INTERNAL_SERVER_ERROR"},
                )
                raise _NullInNonNull()
            return result
        if value is None:
            return None
        if kind is GraphQLList:
            item_type = type_.of_type
            item_nonnull = type(item_type) is GraphQLNonNull
            out = []
            for i, item in enumerate(value):
                try:
                    out.append(self.complete(item_type, fp, item, (path, i)))
                except _NullInNonNull:
                    if item_nonnull:
                        raise
                    out.append(None)
            return out
        if kind is GraphQLScalarType or kind is GraphQLEnumType:
            return value
        runtime = type_
        if kind is not GraphQLObjectType:
            typename = value.get("__typename") if isinstance(value, Mapping) else None
            runtime = self.schema.get_type(typename) if typename else None
            if not isinstance(runtime, GraphQLObjectType):
                raise GraphQLError(f"Cannot resolve the runtime type of {type_}")
        return self.object(runtime, fp.sub, value, path)


_PLAIN = frozenset({str, int, float, bool})


def _line_col(body: str, offset: int) -> tuple[int, int]:
    line = body.count("\n", 0, offset) + 1
    return line, offset - (body.rfind("\n", 0, offset) + 1) + 1


def variable_error(exc: VariableError) -> dict[str, Any]:
    return {"message": str(exc), "extensions": {"code": "INVALID_VARIABLE"}}


def execute(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    fragments: dict[str, FragmentDefinitionNode],
    root: Mapping[str, Any],
    raw_variables: Mapping[str, Any],
    context: Any,
    *,
    coerced: bool = False,
) -> Result:
    """Run ``operation``; ``coerced`` says the variables already went through
    ``coerce_variables``."""
    if coerced:
        variables = dict(raw_variables)
    else:
        try:
            variables = coerce_variables(schema, operation, raw_variables)
        except VariableError as exc:
            return Result(None, [variable_error(exc)])
    root_type: GraphQLNamedType | None = (
        schema.mutation_type if operation.operation.value == "mutation" else schema.query_type
    )
    assert isinstance(root_type, GraphQLObjectType)
    ex = _Executor(schema, operation, fragments, variables, context)
    try:
        data = ex.object(root_type, [operation.selection_set], root, None)
    except _NullInNonNull:
        return Result(None, ex.errors)
    return Result(data, ex.errors)
