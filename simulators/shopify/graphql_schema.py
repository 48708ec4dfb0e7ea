"""The Shopify Admin GraphQL schema tillsync validates against, and cached document checks.

The schema is Shopify's own 2025-01 introspection result plus ``schema/overlay.graphql`` (the
fields and directive that 2026-01/2026-04 add). Building it takes about half a second, so it is
built once per process; parsing and validating a document is cached by its text, because
tillsync and the simulator send the same few documents over and over.
"""

from __future__ import annotations

import gc
import gzip
import json
import re
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from typing import Any

import graphql
from graphql import (
    DocumentNode,
    FragmentDefinitionNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
)

SCHEMA_PACKAGE = "tillsync_sim.shopify.schema"
SCHEMA_FILE = "admin_schema_2025-01.json.gz"
OVERLAY_FILE = "overlay.graphql"

ShopifyError = dict[str, Any]


@cache
def admin_schema() -> GraphQLSchema:
    """The 2025-01 Admin schema with the overlay applied (built once per process)."""
    files = resources.files(SCHEMA_PACKAGE)
    raw = json.loads(gzip.decompress(files.joinpath(SCHEMA_FILE).read_bytes()))
    base = graphql.build_client_schema(raw["data"])
    # graphql-core 3.3 rejects some deprecation markings in Shopify's introspection; the
    # schema itself is what Shopify serves, so skip the self-check.
    base._validation_errors = []
    overlay = graphql.parse(files.joinpath(OVERLAY_FILE).read_text(encoding="utf-8"))
    schema = graphql.extend_schema(base, overlay)
    schema._validation_errors = []
    # The schema is a few hundred thousand objects that live as long as the process. Left in
    # the collector's generations, every full collection walks all of them, which more than
    # doubled the simulator's cost per request; frozen, the collector skips them.
    gc.collect()
    gc.freeze()
    return schema


@dataclass(frozen=True, slots=True)
class PreparedDocument:
    """A parsed document and its validation errors (empty when valid)."""

    source: str
    document: DocumentNode | None
    errors: tuple[ShopifyError, ...]

    @property
    def ok(self) -> bool:
        return self.document is not None and not self.errors


@lru_cache(maxsize=1024)
def prepare_document(source: str) -> PreparedDocument:
    """Parse and validate once per distinct document text."""
    try:
        document = graphql.parse(source)
    except GraphQLError as exc:
        return PreparedDocument(source, None, (_shopify_error(exc, parse=True),))
    errors = graphql.validate(admin_schema(), document)
    if errors:
        return PreparedDocument(source, None, tuple(_shopify_error(e) for e in errors))
    return PreparedDocument(source, document, ())


@lru_cache(maxsize=1024)
def operation_of(
    source: str, name: str | None = None
) -> tuple[OperationDefinitionNode | None, dict[str, FragmentDefinitionNode]]:
    """The operation to run (by name when several) and the fragments, of a valid document."""
    doc = prepare_document(source).document
    if doc is None:
        return None, {}
    op = graphql.get_operation_ast(doc, name)
    frags = {d.name.value: d for d in doc.definitions if isinstance(d, FragmentDefinitionNode)}
    return op, frags


def validate_document(source: str) -> list[ShopifyError]:
    """Shopify-shaped validation errors for a document; an empty list means it is valid."""
    return list(prepare_document(source).errors)


# graphql-ruby (what Shopify runs) names its validation failures with these codes; graphql-core
# words the messages differently, so the code is matched from the message.
_CODES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^Cannot query field"), "undefinedField"),
    (re.compile(r"^Unknown argument"), "argumentNotAccepted"),
    (re.compile(r"^Unknown directive"), "undefinedDirective"),
    (re.compile(r"^Unknown type"), "undefinedType"),
    (re.compile(r"^Field .* argument .* is required"), "missingRequiredArguments"),
    (re.compile(r"^Variable .* is never used"), "variableNotUsed"),
    (re.compile(r"^Variable .* is not defined"), "undefinedVariable"),
    (re.compile(r"must have a selection of subfields"), "selectionMismatch"),
    (re.compile(r"must not have a selection"), "selectionMismatch"),
)


def _shopify_error(error: GraphQLError, *, parse: bool = False) -> ShopifyError:
    code = "parseError" if parse else "GRAPHQL_VALIDATION_FAILED"
    if not parse:
        for pattern, name in _CODES:
            if pattern.search(error.message):
                code = name
                break
    out: ShopifyError = {"message": error.message}
    if error.locations:
        out["locations"] = [{"line": loc.line, "column": loc.column} for loc in error.locations]
    out["extensions"] = {"code": code}
    return out
