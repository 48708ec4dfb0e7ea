"""The Sitoo REST v2 contract: response bodies checked against the OpenAPI description.

`openapi-description/` (a name no import can take, so setuptools ships it as data) is the
hand-written description from spysystem/sitoo-client (see its SOURCE.md). Its
files reference each other with relative `$ref`s, so they are loaded through a `referencing`
registry keyed by file URI instead of being bundled by hand.

One overlay is applied in memory (the files stay as published): the description never says
`nullable`, yet Sitoo's own examples in it send `null` for optional fields (`externalid`,
`orderdeliveryid`, `datereserved`, ...). Optional properties therefore accept `null`;
required ones do not. The rule is the constant `OPTIONAL_PROPERTIES_NULLABLE`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema.exceptions import ValidationError
from openapi_schema_validator import OAS30Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

OPENAPI_DIR = Path(__file__).parent / "openapi-description"
ENTRY = OPENAPI_DIR / "openapi.yaml"
ERROR_SCHEMA = OPENAPI_DIR / "schemas" / "Error-read.yaml"
OPTIONAL_PROPERTIES_NULLABLE = True


class ContractError(AssertionError):
    """A response does not match the OpenAPI description; the message says where and why."""


@dataclass(frozen=True)
class Operation:
    method: str
    path_template: str
    spec: dict[str, Any]
    base_uri: str


def _nullable_overlay(node: Any) -> Any:
    if isinstance(node, dict):
        props = node.get("properties")
        if isinstance(props, dict):
            required = set(node.get("required") or ())
            for name, prop in props.items():
                if isinstance(prop, dict) and "type" in prop and name not in required:
                    prop["nullable"] = True
        for value in node.values():
            _nullable_overlay(value)
    elif isinstance(node, list):
        for value in node:
            _nullable_overlay(value)
    return node


@cache
def _load(uri: str) -> Any:
    path = Path(uri.removeprefix("file://"))
    with path.open(encoding="utf-8") as fh:
        doc = yaml.safe_load(fh)
    if OPTIONAL_PROPERTIES_NULLABLE:
        _nullable_overlay(doc)
    return doc


def _retrieve(uri: str) -> Resource[Any]:
    return Resource.from_contents(_load(uri), default_specification=DRAFT4)


_REGISTRY: Registry[Any] = Registry(retrieve=_retrieve)  # type: ignore[call-arg]


def _resolve_file_ref(base: Path, ref: str) -> Path:
    return (base.parent / ref).resolve()


@cache
def operations() -> dict[tuple[str, str], Operation]:
    """Every (METHOD, path template) the description defines."""
    root = _load(ENTRY.resolve().as_uri())
    out: dict[tuple[str, str], Operation] = {}
    for template, item in root["paths"].items():
        base = ENTRY.resolve()
        if "$ref" in item:
            base = _resolve_file_ref(ENTRY.resolve(), item["$ref"])
            item = _load(base.as_uri())
        for method, spec in item.items():
            if method in {"get", "put", "post", "delete", "patch"}:
                out[(method.upper(), template)] = Operation(
                    method.upper(), template, spec, base.as_uri()
                )
    return out


def path_templates() -> list[str]:
    return sorted({t for _, t in operations()})


@cache
def _template_regexes() -> list[tuple[re.Pattern[str], str]]:
    out = []
    for template in path_templates():
        pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
        out.append((re.compile(f"^{pattern}$"), template))
    # literal segments first so /sites.json never matches a {param} sibling
    out.sort(key=lambda pt: pt[1].count("{"))
    return out


def match_template(path: str) -> str | None:
    """Map a concrete path relative to the account (``/sites/1/stores.json``) to its template."""
    for regex, template in _template_regexes():
        if regex.match(path):
            return template
    return None


def _response_spec(op: Operation, status: int) -> dict[str, Any] | None:
    responses = op.spec.get("responses", {})
    for key in (status, str(status)):
        if key in responses:
            spec = responses[key]
            return spec if isinstance(spec, dict) else {}
    return None


def _ref_uri(base_uri: str, ref: str) -> str:
    base = Path(base_uri.removeprefix("file://"))
    path, _, fragment = ref.partition("#")
    target = _resolve_file_ref(base, path).as_uri() if path else base_uri
    return f"{target}#{fragment}" if fragment else target


def _absolutise(schema: Any, base_uri: str) -> Any:
    """Inline response schemas carry refs relative to their path file; make them absolute."""
    if isinstance(schema, dict):
        return {
            k: (
                _ref_uri(base_uri, v)
                if k == "$ref" and isinstance(v, str)
                else _absolutise(v, base_uri)
            )
            for k, v in schema.items()
        }
    if isinstance(schema, list):
        return [_absolutise(v, base_uri) for v in schema]
    return schema


@cache
def _validator(method: str, path_template: str, status: int) -> OAS30Validator | None:
    op = operations().get((method.upper(), path_template))
    if op is None:
        raise ContractError(f"{method.upper()} {path_template}: not in the OpenAPI description")
    spec = _response_spec(op, status)
    if spec is None:
        raise ContractError(
            f"{method.upper()} {path_template}: status {status} is not a documented response"
        )
    schema = spec.get("content", {}).get("application/json", {}).get("schema")
    if schema is None:
        if status >= 400:
            schema = {"$ref": ERROR_SCHEMA.resolve().as_uri()}
        else:
            return None
    else:
        schema = _absolutise(_nullable_overlay(dict(schema)), op.base_uri)
    return OAS30Validator(schema, registry=_REGISTRY)


def _describe(err: ValidationError) -> str:
    where = "".join(f"[{p!r}]" for p in err.absolute_path) or "(body)"
    schema_at = "/".join(str(p) for p in err.absolute_schema_path)
    return f"at {where}: {err.message} (schema path {schema_at})"


def iter_errors(method: str, path_template: str, status: int, body: Any) -> Iterator[str]:
    validator = _validator(method.upper(), path_template, status)
    if validator is None:
        return
    for err in sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path)):
        yield _describe(err)


def validate_response(method: str, path_template: str, status: int, body: Any) -> bool:
    """Raise ContractError unless ``body`` matches the documented response.

    Returns True when a schema was checked, False when the description documents the status
    with no body schema (many writes: "Returns orderid").
    """
    validator = _validator(method.upper(), path_template, status)
    if validator is None:
        return False
    errors = list(iter_errors(method, path_template, status, body))
    if errors:
        shown = "\n  ".join(errors[:10])
        more = f"\n  ... and {len(errors) - 10} more" if len(errors) > 10 else ""
        raise ContractError(
            f"{method.upper()} {path_template} -> {status}: response does not match the "
            f"OpenAPI description:\n  {shown}{more}"
        )
    return True
