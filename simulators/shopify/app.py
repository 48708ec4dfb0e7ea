"""The simulator's HTTP face: the Admin GraphQL endpoint and the ``/_sim`` control API."""

from __future__ import annotations

import asyncio
import json
import math
import random
import re
from collections import Counter
from typing import Any

from aiohttp import web
from graphql import OperationType
from pydantic import BaseModel, ConfigDict, Field

from tillsync.schemas.settings import Settings
from tillsync_sim.shopify import control, executor
from tillsync_sim.shopify.clock import Clock, SystemClock
from tillsync_sim.shopify.cost import MAX_QUERY_COST, LeakyBucket, operation_cost
from tillsync_sim.shopify.faults import Faults, FaultState
from tillsync_sim.shopify.graphql_schema import admin_schema, operation_of, prepare_document
from tillsync_sim.shopify.model import Location, parse_gid
from tillsync_sim.shopify.resolvers import RequestContext, Resolvers
from tillsync_sim.shopify.state import ShopState, SimError
from tillsync_sim.shopify.webhooks import ALL_TOPICS, WebhookDispatcher

INVALID_TOKEN = "[API] Invalid API key or access token (unrecognized login or wrong password)"
RATE_LIMIT_DOCS = "https://shopify.dev/api/usage/rate-limits"
_API_VERSION = re.compile(r"^\d{4}-(01|04|07|10)$")


class SeedLocation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    address1: str = ""
    city: str = ""
    zip: str = ""
    country_code: str = "SE"


class SeedVariant(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sku: str
    price: str = "0.00"
    barcode: str | None = None
    title: str | None = None
    inventory: dict[str, int] = Field(
        default_factory=dict, description="location name or id -> available"
    )


class SeedProduct(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str
    vendor: str = "tillsync"
    product_type: str = ""
    tags: list[str] = Field(default_factory=list)
    variants: list[SeedVariant]


class Seed(BaseModel):
    """Shop contents for ``seed()``, ``POST /_sim/seed`` and ``--seed FILE``."""

    model_config = ConfigDict(extra="forbid")
    locations: list[SeedLocation] = Field(default_factory=list)
    products: list[SeedProduct] = Field(default_factory=list)
    notify: bool = False


class ShopifySimulator:
    """An in-process Shopify Admin API: ``base_url = await sim.start()``, then ``await sim.stop()``.

    ``settings`` supplies the shop domain, API version, access token, app secret (webhook
    HMAC) and plan. ``clock`` drives the cost bucket and fault windows; ``webhook_url``
    subscribes every topic in ``ALL_TOPICS`` to one receiver; ``webhook_retry_base_seconds``
    scales the retry backoff (Shopify's is hours; tests use milliseconds).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        plan: str | None = None,
        webhook_url: str | None = None,
        webhook_retry_base_seconds: float = 1.0,
        bulk_delay_seconds: float = 0.0,
        rng_seed: int | None = None,
    ) -> None:
        settings.require("shopify_access_token", "shopify_app_secret")
        assert settings.shopify_access_token and settings.shopify_app_secret
        self.settings = settings
        self._token = settings.shopify_access_token.get_secret_value()
        self.clock: Clock = clock or SystemClock()
        self.rng = random.Random(rng_seed)
        self.faults = FaultState(self.clock, self.rng)
        self.bucket = LeakyBucket.for_plan(plan or settings.shopify_plan, self.clock)
        self.state = ShopState(settings.shopify_shop)
        self.resolvers = Resolvers(self.state, self.clock)
        self.resolvers.bulk_delay_seconds = bulk_delay_seconds
        self.webhooks = WebhookDispatcher(
            shop_domain=settings.shopify_shop,
            api_version=settings.shopify_api_version,
            secret=settings.shopify_app_secret.get_secret_value(),
            faults=self.faults,
            subscriptions=self.state.subscriptions,
            retry_base_seconds=webhook_retry_base_seconds,
        )
        self.state.publish = self.webhooks.publish
        self.stats: Counter[str] = Counter()
        self.base_url: str | None = None
        self._runner: web.AppRunner | None = None
        if webhook_url:
            self.subscribe_all(webhook_url)
        self.app = self._build_app()

    # -- Python API -------------------------------------------------------------------------

    def subscribe_all(self, url: str, topics: tuple[str, ...] = ALL_TOPICS) -> None:
        for topic in topics:
            self.resolvers.subscribe(topic, url)

    def set_faults(self, faults: Faults | None = None, **changes: Any) -> Faults:
        """Replace the faults (``faults``) or change some of them (keyword arguments)."""
        if faults is not None:
            self.faults.set(faults)
            return faults
        return self.faults.update(**changes)

    def seed(self, seed: Seed | dict[str, Any]) -> dict[str, Any]:
        """Add locations and products; returns their ids (GIDs) by name and SKU."""
        data = seed if isinstance(seed, Seed) else Seed.model_validate(seed)
        by_name: dict[str, Location] = {loc.name: loc for loc in self.state.locations.values()}
        for spec in data.locations:
            if spec.name not in by_name:
                by_name[spec.name] = self.state.add_location(**spec.model_dump())
        for p in data.products:
            variants = []
            for v in p.variants:
                inv = {self._location_ref(k, by_name): q for k, q in v.inventory.items()}
                variants.append({**v.model_dump(exclude={"inventory"}), "inventory": inv})
            self.state.add_product(
                p.title,
                variants,
                notify=data.notify,
                vendor=p.vendor,
                product_type=p.product_type,
                tags=p.tags,
            )
        return control.state_ids(self.state)

    def _location_ref(self, ref: str, by_name: dict[str, Location]) -> int:
        if ref in by_name:
            return by_name[ref].id
        loc_id = parse_gid(ref, "Location") or (int(ref) if ref.isdigit() else None)
        if loc_id is None or loc_id not in self.state.locations:
            raise SimError(f"unknown location {ref!r}")
        return loc_id

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        admin_schema()  # build the schema before the first request, not during it
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        bound = sockets[0].getsockname()[1] if sockets else port
        self.base_url = f"http://{host}:{bound}"
        self.resolvers.base_url = self.base_url
        await self.webhooks.start()
        return self.base_url

    async def stop(self) -> None:
        await self.webhooks.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def graphql_url(self, version: str | None = None) -> str:
        assert self.base_url, "start() first"
        v = version or self.settings.shopify_api_version
        return f"{self.base_url}/admin/api/{v}/graphql.json"

    # -- HTTP -------------------------------------------------------------------------------

    def _build_app(self) -> web.Application:
        app = web.Application(client_max_size=8 * 1024 * 1024)
        app.router.add_post("/admin/api/{version}/graphql.json", self._graphql)
        app.router.add_get("/_sim/bulk/{op_id}.jsonl", self._bulk_file)
        control.add_routes(app, self)
        return app

    def _cost_extension(self, requested: int | None, actual: int | None) -> dict[str, Any]:
        return {
            "cost": {
                "requestedQueryCost": requested,
                "actualQueryCost": actual,
                "throttleStatus": self.bucket.status(),
            }
        }

    async def _fault_response(self) -> web.Response | None:
        latency = self.faults.latency_seconds()
        if latency:
            await asyncio.sleep(latency)
        if self.faults.unauthorized_remaining():
            # as Shopify answers a token it no longer accepts (revoked, rotated, app
            # uninstalled): the same body as a wrong token
            self.stats["unauthorized_401"] += 1
            return web.json_response({"errors": INVALID_TOKEN}, status=401)
        if self.faults.outage_remaining():
            self.stats["outage_503"] += 1
            return web.json_response({"errors": "Service Unavailable"}, status=503)
        storm = self.faults.storm_remaining()
        if storm:
            self.stats["rate_limited_429"] += 1
            return web.json_response(
                {
                    "errors": "Exceeded 2 calls per second for api client. Reduce request rates "
                    "to resume uninterrupted service."
                },
                status=429,
                headers={"Retry-After": str(max(1, math.ceil(storm)))},
            )
        status = self.faults.random_error()
        if status:
            self.stats["injected_5xx"] += 1
            return web.json_response({"errors": "Internal Server Error"}, status=status)
        return None

    async def _graphql(self, request: web.Request) -> web.Response:
        self.stats["requests"] += 1
        if not _API_VERSION.match(request.match_info["version"]):
            return web.json_response({"errors": "Not Found"}, status=404)
        if request.headers.get("X-Shopify-Access-Token") != self._token:
            self.stats["unauthorized"] += 1
            return web.json_response({"errors": INVALID_TOKEN}, status=401)
        faulted = await self._fault_response()
        if faulted is not None:
            return faulted
        try:
            body = json.loads(await request.read())
            query = body["query"]
            variables = body.get("variables") or {}
            op_name = body.get("operationName")
            if not isinstance(query, str) or not isinstance(variables, dict):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            return web.json_response(
                {"errors": {"query": "Required parameter missing or invalid"}}, status=400
            )
        return web.json_response(
            self.execute(query, variables, op_name, request.match_info["version"])
        )

    def execute(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        operation_name: str | None = None,
        api_version: str | None = None,
    ) -> dict[str, Any]:
        """Run one GraphQL request as the endpoint would (cost, throttle) and return the body."""
        prepared = prepare_document(query)
        if not prepared.ok:
            self.stats["invalid_documents"] += 1
            return {"errors": list(prepared.errors), "extensions": self._cost_extension(0, 0)}
        assert prepared.document is not None
        op, fragments = operation_of(query, operation_name)
        if op is None:
            return {
                "errors": [
                    {
                        "message": "An operation name is required",
                        "extensions": {"code": "OPERATION_NAME_REQUIRED"},
                    }
                ]
            }
        try:
            variables = executor.coerce_variables(admin_schema(), op, variables or {})
        except executor.VariableError as exc:
            return {
                "errors": [executor.variable_error(exc)],
                "extensions": self._cost_extension(0, 0),
            }
        requested = operation_cost(admin_schema(), op, fragments, variables)
        if requested > MAX_QUERY_COST:
            return {
                "errors": [
                    {
                        "message": f"Query cost is {requested}, which exceeds the single query "
                        f"max cost limit ({MAX_QUERY_COST}).",
                        "extensions": {
                            "code": "MAX_COST_EXCEEDED",
                            "cost": requested,
                            "maxCost": MAX_QUERY_COST,
                            "documentation": RATE_LIMIT_DOCS,
                        },
                    }
                ],
                "extensions": self._cost_extension(requested, None),
            }
        if not self.bucket.try_take(requested):
            self.stats["throttled"] += 1
            return {
                "errors": [
                    {
                        "message": "Throttled",
                        "extensions": {"code": "THROTTLED", "documentation": RATE_LIMIT_DOCS},
                    }
                ],
                "extensions": self._cost_extension(requested, None),
            }
        is_mutation = op.operation is OperationType.MUTATION
        result = executor.execute(
            admin_schema(),
            op,
            fragments,
            self.resolvers.mutation_root if is_mutation else self.resolvers.query_root,
            variables,
            RequestContext(api_version or self.settings.shopify_api_version),
            coerced=True,
        )
        if result.data is None:
            actual = 0  # variables did not coerce or the root was nulled: nothing to charge
        elif is_mutation:
            actual = requested
        else:
            actual = operation_cost(admin_schema(), op, fragments, variables, result.data)
        self.bucket.refund(requested - actual)
        out: dict[str, Any] = {}
        if result.errors:
            out["errors"] = result.errors
        if result.data is not None:
            out["data"] = result.data
        out["extensions"] = self._cost_extension(requested, actual)
        return out

    async def _bulk_file(self, request: web.Request) -> web.Response:
        op_id = request.match_info["op_id"]
        op = self.resolvers.bulk_operations.get(int(op_id)) if op_id.isdigit() else None
        if op is None or op.status != "COMPLETED":
            raise web.HTTPNotFound()
        return web.Response(body=op.jsonl, content_type="application/jsonl")


__all__ = ["Seed", "ShopifySimulator"]
