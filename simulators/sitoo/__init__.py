"""A simulator of Sitoo's REST API v2 and Events SPI (see openapi-description/).

In-process::

    sim = SitooSimulator(settings, events_url="http://127.0.0.1:6066/sitoo/events", rate=20)
    base_url = await sim.start("127.0.0.1", 0)
    sim.state.till_sale(storeid, [{"sku": "SKU-0001", "quantity": 2}])
    sim.set_faults(error_rate=0.1, throttle_for_s=5)
    await sim.stop()

As a process: ``tillsync sim sitoo --port 8702 --events-url URL`` (see ``--help``).

REST v2 under ``/v2/accounts/{accountid}/`` (Basic auth with the settings' API id/password):
sites, stores, warehouses, warehouse items, warehouse transactions, products and variants,
orders (account-wide list; site-scoped get/post/put), order deliveries, order log items,
users, cash registers and their Z-reports, and ``/pos-z-reports``.

Control API (``/_sim/``, JSON, no auth, no faults):

- POST /_sim/stores/{storeid}/sale ``{"lines": [{"sku", "quantity", "price"?}], "email"?}``:
  a closed, paid till sale delivered from the store's warehouse (Sales transaction)
- POST /_sim/stores/{storeid}/return ``{"orderid", "lines"?: [{"sku" | "orderitemid",
  "quantity"}], "reasoncode"?, "comment"?, "payment"?, "exchange"?: [{"sku", "quantity"}]}``:
  a credit order (negative rows, ``creditorderid``) whose units return to this store's
  warehouse (Refund transaction); with ``exchange``, the goods taken instead on the same
  receipt, or (``"payment": "virtual"``) in a new sale paid by a virtual payment
- POST /_sim/stores/{storeid}/blind-return ``{"lines": [{"sku", "quantity", "price"?}],
  "email"?, "reasoncode"?, "comment"?, "payment"?}``: a return with no receipt, a credit
  order linked to no original (``creditorderid`` null), the goods back in the store
- POST /_sim/stores/{storeid}/z-report: close the register's day
- POST /_sim/stores ``{"name", "externalid"?, "city"?}``; POST /_sim/products (a product body)
- POST /_sim/warehouses/{id}/delivery ``{"lines": [{"sku", "quantity", "moneypricein"?}]}``
  (Move In); POST /_sim/warehouses/{id}/stocktaking ``{"counts": {"SKU": counted}}``;
  POST /_sim/warehouses/{id}/move ``{"sku", "quantity"}`` (positive in, negative out)
- POST /_sim/orders/{id}/ready-for-pickup | collect | cancel;
  POST /_sim/orders/{id}/reject-pickup ``{"reason"?, "cancel"?}``; collect takes
  ``{"take_payment": true}`` for an order paid in store: staff take a Card payment of its
  total at the till (``paymentstateid`` 20); refused on an order already paid
- POST /_sim/orders/{id}/ship ``{"tracking", "carrier"?, "lines"?: {"orderitemid": qty}}``:
  staff ship an order with a delivery address: a delivery whose ``orderdeliveryref`` is the
  tracking number (Sales transaction); the order closes once all is delivered. Answers
  ``{"orderdeliveryid"}``
- GET | POST | DELETE /_sim/faults (keys in faults.SPEC_KEYS)
- GET /_sim/state/stock[?warehouseid=]; GET /_sim/events[?limit=]; GET /_sim/health;
  POST /_sim/seed ``{"stores", "skus", "min_stock", "max_stock"}``
"""

from .faults import Faults
from .records import SimError
from .seed import SeedSpec
from .server import SitooSimulator
from .state import SitooState

__all__ = ["Faults", "SeedSpec", "SimError", "SitooSimulator", "SitooState"]
