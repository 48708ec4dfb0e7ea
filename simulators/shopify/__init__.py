"""A Shopify Admin API simulator: GraphQL over HTTP, cost bucket, signed webhooks, faults.

In process (tests, scenario drivers)::

    sim = ShopifySimulator(settings, webhook_url="http://127.0.0.1:6066/webhooks/shopify")
    ids = sim.seed({"locations": [{"name": "Store 1"}],
                    "products": [{"title": "Shirt", "variants": [
                        {"sku": "S-1", "price": "199.00", "inventory": {"Store 1": 5}}]}]})
    base_url = await sim.start("127.0.0.1", 0)
    sim.state.place_order([("S-1", 1)], location_id=..., delivery="PICK_UP")
    sim.set_faults(latency_ms=20, error_rate=0.01)
    await sim.stop()

As a process: ``tillsync sim shopify --port 8701 --webhook-url URL --seed shop.json``.

HTTP surface:

* ``POST /admin/api/{version}/graphql.json`` (``X-Shopify-Access-Token``)
* ``GET  /_sim/bulk/{id}.jsonl`` (bulk operation results)
* control API, JSON in and out: ``POST /_sim/seed``, ``POST /_sim/orders`` (a SHIPPING order
  takes ``shipping_address`` or gets a made-up one),
  ``GET /_sim/orders/{id}``, ``POST /_sim/orders/{id}/cancel|refund|fulfil`` (cancel takes
  ``reason``, ``restock``, ``refund``, ``staff_note``, ``notify_customer``),
  ``POST /_sim/fulfillment_orders/{id}/prepared_for_pickup``, ``POST /_sim/inventory/edit``,
  ``POST /_sim/customers``, ``GET|POST|DELETE /_sim/faults``, ``POST /_sim/webhooks/subscribe``,
  ``GET /_sim/webhooks/deliveries``, ``GET /_sim/state/inventory|ids|bucket``,
  ``POST /_sim/bucket/drain``, ``GET /_sim/health``
"""

from tillsync_sim.shopify.app import Seed, ShopifySimulator
from tillsync_sim.shopify.clock import Clock, ManualClock, SystemClock
from tillsync_sim.shopify.faults import Faults

__all__ = ["Clock", "Faults", "ManualClock", "Seed", "ShopifySimulator", "SystemClock"]
