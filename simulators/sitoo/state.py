"""The simulated Sitoo account: stores, stock ledger, orders, users, Z-reports.

Synchronous and free of HTTP so that the REST handlers, the control API and tests share one
set of rules. Every stock change goes through ``_transact``, which writes a warehouse
transaction with the next ``warehousetransactionid``. Reservations (open orders holding units
at their warehouse) change ``decimalreserved``/``decimalavailable`` without a transaction, as
in Sitoo, where a warehouse item's ``datelastmodified`` is "the last date it was part of a
transaction"; consumers learn of them from order events.
"""

from __future__ import annotations

import random
import re
import time
import uuid
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

from tillsync.schemas.money import format_money, format_quantity, money, parse_decimal
from tillsync.schemas.sitoo import (
    ORDER_CANCELLED,
    ORDER_CLOSED,
    ORDER_OPEN,
    ORDERITEM_PRODUCT,
    ORDERLOG_PICKUP_REJECTED,
    ORDERLOG_READY_FOR_PICKUP,
    ORDERTYPE_ORDER,
    PAYMENT_SUCCESSFUL,
    POSTABLE_ORDERLOG_TYPES,
    READ_ONLY_TRANSACTION_TYPES,
    TRANSACTION_MOVE_IN,
    TRANSACTION_MOVE_OUT,
    TRANSACTION_REFUND,
    TRANSACTION_SALES,
    TRANSACTION_STOCKTAKING,
    WAREHOUSE_VIRTUAL,
)

from .records import (
    ZERO,
    DeliveryRec,
    ItemLogRec,
    OrderRec,
    ProductRec,
    SimError,
    StockItem,
    StoreRec,
    TransactionRec,
    UserRec,
    WarehouseRec,
    ZReportRec,
)

Emit = Callable[[str, dict[str, Any]], None]

MAX_TRANSACTION_BATCH = 1000  # [SPEC] batchAddWarehouseTransactions
SKU_RE = re.compile(r"^[A-Za-z0-9_+\-/]+$")
EXTERNALID_RE = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
ORDER_STATE_NAMES = {ORDER_OPEN: "open", ORDER_CLOSED: "closed", ORDER_CANCELLED: "cancelled"}
# sitoo-api.md lists the order-delivery states but not the field's name: assumed.
DELIVERY_STATE_FIELD = "order_delivery_state_changed"
ZREPORT_EVENT_TYPE = "z-report"


def _int(value: Any, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise SimError(400, f"{name} must be an integer") from None


# how a till return settles the money (see SitooState.till_return)
TILL_RETURN_PAYMENTS = ("card", "cash", "none")
EXCHANGE_PAYMENTS = (*TILL_RETURN_PAYMENTS, "virtual")


class SitooState:
    def __init__(
        self,
        *,
        account_id: int,
        eshop_id: int = 1,
        seed: int | None = None,
        clock: Callable[[], float] = time.time,
        currency: str = "SEK",
    ) -> None:
        self.account_id = account_id
        self.eshop_id = eshop_id
        self.currency = currency
        self.rng = random.Random(seed)
        self.clock = clock
        self._emit: Emit | None = None
        self.emitting = True

        self.stores: dict[int, StoreRec] = {}
        self.warehouses: dict[int, WarehouseRec] = {}
        self.stock: dict[int, dict[str, StockItem]] = {}
        self.stock_list: dict[int, list[StockItem]] = {}
        self.transactions: list[TransactionRec] = []
        self.transactions_by_id: dict[int, TransactionRec] = {}
        self.products: dict[int, ProductRec] = {}
        self.products_by_sku: dict[str, ProductRec] = {}
        self.orders: dict[int, OrderRec] = {}
        self.orders_by_externalid: dict[str, int] = {}
        self.returns_of: dict[int, list[int]] = {}
        self.users: dict[str, UserRec] = {}
        self.users_by_email: dict[str, str] = {}
        self.zreports: list[ZReportRec] = []
        self._zreport_last_orderid: dict[int, int] = {}
        self._next: dict[str, int] = {
            "store": 1,
            "warehouse": 1,
            "warehouseitem": 1,
            "transaction": 1,
            "product": 1,
            "order": 10001,
            "delivery": 1,
            "deliveryitem": 1,
            "zreport": 1,
            "receipt": 1,
        }

    # -- plumbing ---------------------------------------------------------------------------

    def set_emitter(self, emit: Emit | None) -> None:
        self._emit = emit

    def emit(self, event_type: str, data: dict[str, Any]) -> None:
        if self._emit is not None and self.emitting:
            self._emit(event_type, {"eshop_id": self.eshop_id, **data})

    def now(self) -> int:
        return int(self.clock())

    def _id(self, kind: str) -> int:
        value = self._next[kind]
        self._next[kind] = value + 1
        return value

    def _guid(self) -> str:
        return "{" + str(uuid.UUID(int=self.rng.getrandbits(128), version=4)).upper() + "}"

    # -- stores, warehouses, products -------------------------------------------------------

    def add_store(
        self, name: str, externalid: str | None = None, *, city: str = "", currency: str = ""
    ) -> StoreRec:
        storeid = self._id("store")
        store = StoreRec(
            storeid=storeid,
            name=name,
            externalid=externalid or f"STORE-{storeid}",
            eshopid=self.eshop_id,
            registerid=self._guid(),
            registerkey=f"SII{self.account_id:010d}{storeid:05d}",
            city=city,
        )
        self.stores[storeid] = store
        wh = self.add_warehouse(f"{name} stock", storeid=storeid, currency=currency)
        store.warehouseid = wh.warehouseid
        return store

    def add_warehouse(
        self,
        name: str,
        *,
        storeid: int | None = None,
        warehousetype: int | None = None,
        currency: str = "",
        externalid: str | None = None,
    ) -> WarehouseRec:
        wid = self._id("warehouse")
        wh = WarehouseRec(
            warehouseid=wid,
            name=name,
            storeid=storeid,
            currencycode=currency or self.currency,
            externalid=externalid,
        )
        if warehousetype is not None:
            wh.warehousetype = warehousetype
        self.warehouses[wid] = wh
        self.stock[wid] = {}
        self.stock_list[wid] = []
        return wh

    def warehouse(self, wid: int) -> WarehouseRec:
        wh = self.warehouses.get(wid)
        if wh is None:
            raise SimError(404, f"warehouse {wid} not found")
        return wh

    def store(self, storeid: int) -> StoreRec:
        store = self.stores.get(storeid)
        if store is None:
            raise SimError(404, f"store {storeid} not found")
        return store

    def store_warehouse(self, storeid: int) -> int:
        wid = self.store(storeid).warehouseid
        assert wid is not None
        return wid

    def add_product(self, body: dict[str, Any]) -> ProductRec:
        sku = body.get("sku")
        if not isinstance(sku, str) or not SKU_RE.match(sku):
            raise SimError(400, "sku is required and may only contain A-Z a-z 0-9 _ + - /")
        if sku in self.products_by_sku:
            raise SimError(400, f"sku {sku} already exists")
        now = self.now()
        pid = self._id("product")
        product = ProductRec(
            productid=pid,
            sku=sku,
            title=str(body.get("title") or sku),
            moneyprice=money(body.get("moneyprice")),
            datecreated=now,
            datemodified=now,
        )
        self._apply_product_fields(product, body)
        self.products[pid] = product
        self.products_by_sku[sku] = product
        return product

    def _apply_product_fields(self, product: ProductRec, body: dict[str, Any]) -> None:
        for name in ("moneyprice", "moneypriceorg", "moneypricein"):
            if name in body:
                setattr(product, name, money(body[name]))
        if "vatvalue" in body:
            product.vatvalue = parse_decimal(body["vatvalue"])
        for name in ("title", "barcode"):
            if name in body:
                setattr(product, name, body[name])
        for name in ("active", "activepos"):
            if name in body:
                setattr(product, name, bool(body[name]))
        if "vatid" in body:
            product.vatid = _int(body["vatid"], "vatid")
        known = {
            "sku",
            "productid",
            "moneyprice",
            "moneypriceorg",
            "moneypricein",
            "vatvalue",
            "title",
            "barcode",
            "active",
            "activepos",
            "vatid",
        }
        product.extra.update({k: v for k, v in body.items() if k not in known})

    def product(self, pid: int) -> ProductRec:
        product = self.products.get(pid)
        if product is None:
            raise SimError(404, f"product {pid} not found")
        return product

    def update_product(self, pid: int, body: dict[str, Any]) -> None:
        product = self.product(pid)
        if "sku" in body and body["sku"] != product.sku:
            sku = body["sku"]
            if not isinstance(sku, str) or not SKU_RE.match(sku):
                raise SimError(400, "invalid sku")
            if sku in self.products_by_sku:
                raise SimError(400, f"sku {sku} already exists")
            del self.products_by_sku[product.sku]
            product.sku = sku
            self.products_by_sku[sku] = product
        self._apply_product_fields(product, body)
        product.datemodified = self.now()

    def variants(self, pid: int) -> dict[str, Any]:
        main = self.product(pid)
        parent = main.variantparentid or main.productid
        members = [p for p in self.products.values() if (p.variantparentid or 0) == parent]
        if not members:
            members = [main]
        groups = main.extra.get("_variantgroups", [])
        return {"groups": groups, "variants": [p.variant_wire() for p in members]}

    def set_variants(self, pid: int, body: dict[str, Any]) -> None:
        main = self.product(pid)
        groups = body.get("groups") or []
        variants = body.get("variants")
        if not isinstance(variants, list):
            raise SimError(400, "variants is required")
        keep: set[int] = set()
        for v in variants:
            vid = int(v.get("productid") or 0)
            fields = {k: v[k] for k in v if k not in {"productid", "attributes"}}
            if vid:
                self.update_product(vid, fields)
                product = self.product(vid)
            else:
                product = self.add_product(fields)
            product.attributes = [str(a) for a in v.get("attributes") or []]
            product.variantparentid = main.productid
            keep.add(product.productid)
        for p in self.products.values():
            if p.variantparentid == main.productid and p.productid not in keep:
                p.variantparentid = None
        main.variantparentid = main.productid
        main.extra["_variantgroups"] = groups

    # -- stock ------------------------------------------------------------------------------

    def item(self, wid: int, sku: str) -> StockItem:
        items = self.stock[wid]
        found = items.get(sku)
        if found is None:
            found = StockItem(self._id("warehouseitem"), wid, sku, self.now())
            product = self.products_by_sku.get(sku)
            if product is not None:
                found.pricein = product.moneypricein
                found.refresh()
            items[sku] = found
            self.stock_list[wid].append(found)
        return found

    def _transact(
        self,
        wid: int,
        ttype: int,
        lines: Iterable[tuple[str, Decimal, Decimal | None]],
        *,
        description: str = "",
        orderdeliveryid: int | None = None,
        externalid: str | None = None,
        reasoncode: str | None = None,
    ) -> TransactionRec:
        now = self.now()
        logs: list[ItemLogRec] = []
        for sku, qty, pricein in lines:
            item = self.item(wid, sku)
            if pricein is not None and qty > 0:
                item.pricein = pricein
            if ttype == TRANSACTION_STOCKTAKING:
                item.datelaststocktaking = now
            item.total += qty
            item.datelastmodified = now
            item.refresh()
            logs.append(ItemLogRec(sku, qty, item.total, item.pricein))
        tx = TransactionRec(
            warehousetransactionid=self._id("transaction"),
            warehouseid=wid,
            transactiontype=ttype,
            datecreated=now,
            items=logs,
            description=description,
            orderdeliveryid=orderdeliveryid,
            externalid=externalid,
            reasoncode=reasoncode,
        )
        self.transactions.append(tx)
        self.transactions_by_id[tx.warehousetransactionid] = tx
        self.emit(
            "warehouse-transaction",
            {
                "warehouse_id": wid,
                "warehouse_transaction_id": tx.warehousetransactionid,
                "transaction_type": ttype,
            },
        )
        return tx

    def add_transaction(self, body: Any) -> int:
        """An API write (batchAddWarehouseTransactions item): Move In/Out and custom types."""
        if not isinstance(body, dict):
            raise SimError(400, "each transaction must be an object")
        for name in ("warehouseid", "transactiontype", "items"):
            if name not in body:
                raise SimError(400, f"{name} is required")
        wid = _int(body["warehouseid"], "warehouseid")
        wh = self.warehouse(wid)
        if wh.warehousetype == WAREHOUSE_VIRTUAL:
            raise SimError(400, "transactions cannot be added to Virtual warehouses")
        ttype = _int(body["transactiontype"], "transactiontype")
        if ttype in READ_ONLY_TRANSACTION_TYPES:
            raise SimError(400, f"transactiontype {ttype} is read only")
        items = body["items"]
        if not isinstance(items, list) or not items:
            raise SimError(400, "items must be a non-empty array")
        lines: list[tuple[str, Decimal, Decimal | None]] = []
        for it in items:
            if not isinstance(it, dict) or "sku" not in it or "decimalquantity" not in it:
                raise SimError(400, "items need sku and decimalquantity")
            try:
                qty = parse_decimal(it["decimalquantity"])
                pricein = money(it["moneypricein"]) if it.get("moneypricein") else None
            except ValueError as exc:
                raise SimError(400, str(exc)) from None
            lines.append((str(it["sku"]), qty, pricein))
        tx = self._transact(
            wid,
            ttype,
            lines,
            description=str(body.get("description") or ""),
            externalid=body.get("externalid"),
            reasoncode=body.get("reasoncode"),
        )
        return tx.warehousetransactionid

    def set_warehouse_item(self, wid: int, body: Any) -> int:
        """batchSetWarehouseItems: bin location and threshold; totals only on Virtual."""
        if not isinstance(body, dict) or not isinstance(body.get("sku"), str):
            raise SimError(400, "sku is required")
        wh = self.warehouse(wid)
        item = self.item(wid, body["sku"])
        if "binlocation" in body:
            item.binlocation = str(body["binlocation"])
        if "decimalthreshold" in body:
            item.threshold = parse_decimal(body["decimalthreshold"])
        if "decimaltotal" in body or "moneytotal" in body:
            if wh.warehousetype != WAREHOUSE_VIRTUAL:
                raise SimError(400, "decimaltotal is read only unless the warehouse is Virtual")
            if "decimaltotal" in body:
                item.total = parse_decimal(body["decimaltotal"])
                item.datelastmodified = self.now()
        item.refresh()
        return item.warehouseitemid

    def receive_delivery(
        self,
        wid: int,
        lines: list[dict[str, Any]],
        *,
        externalid: str | None = None,
        description: str = "Delivery",
    ) -> TransactionRec:
        """Goods arriving at a store (a Move In)."""
        self.warehouse(wid)
        parsed = [
            (
                str(li["sku"]),
                parse_decimal(li["quantity"]),
                money(li["moneypricein"]) if li.get("moneypricein") else None,
            )
            for li in lines
        ]
        if any(q <= 0 for _, q, _ in parsed):
            raise SimError(400, "delivered quantities must be positive")
        return self._transact(
            wid, TRANSACTION_MOVE_IN, parsed, description=description, externalid=externalid
        )

    def stocktaking(self, wid: int, counts: dict[str, Any]) -> TransactionRec | None:
        """A count: the transaction carries the difference between counted and on hand."""
        self.warehouse(wid)
        lines: list[tuple[str, Decimal, Decimal | None]] = []
        now = self.now()
        for sku, counted in counts.items():
            item = self.item(wid, sku)
            diff = parse_decimal(counted) - item.total
            if diff:
                lines.append((sku, diff, None))
            else:
                item.datelaststocktaking = now
                item.refresh()
        if not lines:
            return None
        return self._transact(
            wid, TRANSACTION_STOCKTAKING, lines, description="Stocktaking has been completed!"
        )

    # -- reservations -----------------------------------------------------------------------

    def _sync_reservation(self, order: OrderRec) -> None:
        """Make the units held by ``order`` match what it still needs at its warehouse."""
        wid = order.data.get("warehouseid")
        want: dict[str, Decimal] = {}
        if (
            order.state == ORDER_OPEN
            and order.data.get("ordertypeid") == ORDERTYPE_ORDER
            and isinstance(wid, int)
            and wid in self.warehouses
        ):
            by_id = {int(i["orderitemid"]): i for i in order.product_items()}
            for oid, rest in order.undelivered().items():
                if rest > 0:
                    sku = by_id[oid]["sku"]
                    want[sku] = want.get(sku, ZERO) + rest
        if order.reserved_at is not None and order.reserved_at != wid:
            # the order moved to another warehouse: release where it was held
            self._shift_reserved(order.reserved_at, order.reserved, {})
            order.reserved, order.reserved_at = {}, None
        if want:
            assert isinstance(wid, int)
            self._shift_reserved(wid, order.reserved, want)
            order.reserved, order.reserved_at = want, wid
        else:
            if order.reserved_at is not None:
                self._shift_reserved(order.reserved_at, order.reserved, {})
            order.reserved, order.reserved_at = {}, None

    def _shift_reserved(self, wid: int, old: dict[str, Decimal], new: dict[str, Decimal]) -> None:
        for sku in set(old) | set(new):
            delta = new.get(sku, ZERO) - old.get(sku, ZERO)
            if delta:
                item = self.item(wid, sku)
                item.reserved += delta
                item.refresh()

    # -- orders -----------------------------------------------------------------------------

    def order(self, orderid: int) -> OrderRec:
        order = self.orders.get(orderid)
        if order is None:
            raise SimError(404, f"order {orderid} not found")
        return order

    def _build_items(self, items: Any) -> list[dict[str, Any]]:
        if items is None:
            return []
        if not isinstance(items, list):
            raise SimError(400, "orderitems must be an array")
        out = []
        for idx, it in enumerate(items):
            if not isinstance(it, dict) or "productname" not in it or "quantity" not in it:
                raise SimError(400, "orderitems need productname and quantity")
            out.append(self._order_item(idx, it))
        return out

    def _order_item(self, idx: int, it: dict[str, Any]) -> dict[str, Any]:
        qty = _int(it["quantity"], "quantity")
        sku = it.get("sku")
        product = self.products_by_sku.get(sku) if isinstance(sku, str) else None
        vat = parse_decimal(it.get("vatvalue", product.vatvalue if product else 25))
        if it.get("moneyrowprice") is not None:
            row = money(it["moneyrowprice"])
        else:
            row = (product.moneyprice if product else ZERO) * qty
        discount = money(it.get("moneyrowdiscount"))
        # moneyrowprice is the gross row total, VAT included (see Sitoo's addOrder example)
        gross = row - discount
        factor = 1 + vat / 100
        net = money(gross / factor)
        units = abs(qty) or 1
        original_net = money(abs(row) / factor / units)
        discounted = money(abs(gross) / factor / units)
        return {
            "orderitemid": idx,
            "orderitemtype": int(it.get("orderitemtype", ORDERITEM_PRODUCT)),
            "productid": product.productid if product else None,
            "productname": str(it["productname"]),
            "sku": sku,
            "productattributes": "",
            "externalinput": "",
            "externalinputtitle": "",
            "unitlabel": "",
            "quantity": qty,
            "decimalunitquantity": None,
            "moneynetpriceperunit": format_money(discounted),
            "moneypriceorg": format_money(it.get("moneypriceorg") or 0),
            "vatvalue": float(vat),
            "deliveryinfo": "",
            "moneyitemtotal_net": format_money(net),
            "moneyitemtotal_vat": format_money(gross - net),
            "vouchercode": "",
            "vouchername": "",
            "moneyoriginalprice": format_money(original_net),
            "moneydiscountedprice": format_money(discounted if discount else 0),
            "moneydiscount": format_money(original_net - discounted if discount else 0),
            "salestaxes": [],
            "additionaldata": dict(it.get("additionaldata") or {}),
            "decimalquantitytotal": format_quantity(qty),
            "moneynetpriceperquantity": format_money(discounted),
        }

    def _totals(self, data: dict[str, Any]) -> None:
        net = sum((money(i["moneyitemtotal_net"]) for i in data["orderitems"]), ZERO)
        vat = sum((money(i["moneyitemtotal_vat"]) for i in data["orderitems"]), ZERO)
        for name, value in (
            ("moneytotal_net", net),
            ("moneytotal_vat", vat),
            ("moneyfinal_net", net),
            ("moneyfinal_vat", vat),
            ("moneytotal_gross_all", net + vat),
        ):
            data[name] = format_money(value)

    def add_order(self, body: Any, *, event: bool = True) -> OrderRec:
        if not isinstance(body, dict):
            raise SimError(400, "body must be an order object")
        if "ordertypeid" not in body:
            raise SimError(400, "ordertypeid is required")
        externalid = body.get("externalid")
        if externalid is not None:
            if not isinstance(externalid, str) or not EXTERNALID_RE.match(externalid):
                raise SimError(400, "externalid must be 1-40 characters of A-Z a-z 0-9 _ -")
            if externalid in self.orders_by_externalid:
                raise SimError(400, f"externalid {externalid} already exists")
        wid = body.get("warehouseid")
        if wid is not None:
            wid = _int(wid, "warehouseid")
            self.warehouse(wid)
        credit = body.get("creditorderid")
        if credit is not None:
            credit = _int(credit, "creditorderid")
            self.order(credit)
        state = _int(body.get("orderstateid", ORDER_OPEN), "orderstateid")
        orderid = self._id("order")
        now = self.now()
        data: dict[str, Any] = {
            "orderid": orderid,
            "eshopid": self.eshop_id,
            "externalid": externalid,
            "creditorderid": credit,
            "checkouttypeid": 0,
            "deliverytypeid": 0,
            "email": "",
            "namefirst": "",
            "namelast": "",
            "personalid": "",
            "company": "",
            "phone": "",
            "invoice_address": "",
            "invoice_address2": "",
            "invoice_zip": "",
            "invoice_city": "",
            "invoice_state": "",
            "invoice_countryid": "",
            "delivery_address": "",
            "delivery_address2": "",
            "delivery_zip": "",
            "delivery_city": "",
            "delivery_state": "",
            "delivery_countryid": "",
            "comment": "",
            "commentinternal": "",
            "customerref": "",
            "checkoutref": "",
            "moneycheckout_net": "0.00",
            "moneycheckout_vat": "0.00",
            "moneytotal_gross_checkout": "0.00",
            "moneydelivery_net": "0.00",
            "moneydelivery_vat": "0.00",
            "moneytotal_gross_delivery": "0.00",
            "moneyfinal_salestax": "0.00",
            "moneytotal_gross_roundoff": "0.00",
            "checkouttypename": "",
            "deliverytypename": "",
            "orderdate": _int(body.get("orderdate", now), "orderdate"),
            "orderstateid": state,
            "paymentstateid": _int(body.get("paymentstateid", 0), "paymentstateid"),
            "ordertypeid": _int(body["ordertypeid"], "ordertypeid"),
            "userid_staff": None,
            "registerid": body.get("registerid"),
            "warehouseid": wid,
            "datereserved": None,
            "currencycode": body.get("currencycode") or self.currency,
            "additionaldata": dict(body.get("additionaldata") or {}),
            "orderitems": self._build_items(body.get("orderitems")),
            "payments": [self._payment(p) for p in body.get("payments") or []],
        }
        for name in (
            "email",
            "namefirst",
            "namelast",
            "personalid",
            "company",
            "phone",
            "invoice_address",
            "invoice_address2",
            "invoice_zip",
            "invoice_city",
            "invoice_state",
            "invoice_countryid",
            "delivery_address",
            "delivery_address2",
            "delivery_zip",
            "delivery_city",
            "delivery_state",
            "delivery_countryid",
            "comment",
            "commentinternal",
            "customerref",
            "checkoutref",
        ):
            if body.get(name) is not None:
                data[name] = str(body[name])
        self._totals(data)
        order = OrderRec(orderid=orderid, data=data)
        order.log.append(
            {
                "datelog": now,
                "orderid": orderid,
                "orderlogtypeid": 0,
                "strvalue": None,
                "fvalue": None,
            }
        )
        self.orders[orderid] = order
        if externalid is not None:
            self.orders_by_externalid[externalid] = orderid
        if credit is not None:
            self.returns_of.setdefault(int(credit), []).append(orderid)
        self._sync_reservation(order)
        if order.reserved:
            data["datereserved"] = now + 7 * 86400
        if event:
            self._order_event(order, "add", ORDER_STATE_NAMES.get(state))
        return order

    @staticmethod
    def _payment(p: Any) -> dict[str, Any]:
        if not isinstance(p, dict) or "name" not in p or "moneyamount" not in p:
            raise SimError(400, "payments need name and moneyamount")
        return {
            "name": str(p["name"]),
            "moneyamount": format_money(p["moneyamount"]),
            "externalid": p.get("externalid"),
            "reftype": p.get("reftype", ""),
            "refid": p.get("refid", ""),
            "cardissuer": p.get("cardissuer", ""),
            "additionaldata": dict(p.get("additionaldata") or {}),
        }

    def _order_event(self, order: OrderRec, kind: str, state_changed: str | None) -> None:
        data: dict[str, Any] = {
            "order_id": order.orderid,
            "warehouse_id": order.data.get("warehouseid"),
            "order_event_type": kind,
        }
        if state_changed is not None:
            data["order_state_changed"] = state_changed
        self.emit("order", data)

    def update_order(self, orderid: int, body: Any, *, deliver_rest: bool = True) -> None:
        """``deliver_rest=False``: a close that leaves the undelivered units where they are
        (a partial pickup); the API's close always delivers them."""
        order = self.order(orderid)
        if not isinstance(body, dict):
            raise SimError(400, "body must be an order object")
        old_state = order.state
        new_state = _int(body.get("orderstateid", old_state), "orderstateid")
        if old_state != ORDER_OPEN and new_state != old_state:
            raise SimError(400, f"order {orderid} is not open; its state cannot change")
        if "externalid" in body and body["externalid"] != order.data.get("externalid"):
            ext = body["externalid"]
            if ext is not None and ext in self.orders_by_externalid:
                raise SimError(400, f"externalid {ext} already exists")
            self.orders_by_externalid.pop(order.data.get("externalid") or "", None)
            if ext is not None:
                self.orders_by_externalid[ext] = orderid
            order.data["externalid"] = ext
        if "orderitems" in body:
            if old_state != ORDER_OPEN or order.delivered:
                raise SimError(400, "orderitems can only change on an open, undelivered order")
            order.data["orderitems"] = self._build_items(body["orderitems"])
            self._totals(order.data)
        if body.get("warehouseid") is not None:
            body = {**body, "warehouseid": _int(body["warehouseid"], "warehouseid")}
            self.warehouse(body["warehouseid"])
        skip = {"orderid", "orderitems", "orderstateid", "externalid", "orderlogitems"}
        for name, value in body.items():
            if name not in skip:
                order.data[name] = value
        if new_state == ORDER_CLOSED and old_state == ORDER_OPEN and deliver_rest:
            self._deliver_rest(order)
        order.data["orderstateid"] = new_state
        self._sync_reservation(order)
        changed = ORDER_STATE_NAMES.get(new_state) if new_state != old_state else None
        self._order_event(order, "update", changed)

    def _deliver_rest(self, order: OrderRec) -> None:
        wid = order.data.get("warehouseid")
        rest = order.undelivered()
        if wid is not None and rest:
            self.add_delivery(
                order.orderid,
                {
                    "warehouseid": wid,
                    "orderdeliveryitems": [
                        {"orderitemid": oid, "quantity": q} for oid, q in rest.items()
                    ],
                },
            )

    def add_delivery(self, orderid: int, body: Any) -> int:
        order = self.order(orderid)
        if not isinstance(body, dict) or "warehouseid" not in body:
            raise SimError(400, "warehouseid is required")
        items = body.get("orderdeliveryitems")
        if not isinstance(items, list) or not items:
            raise SimError(400, "orderdeliveryitems is required")
        wid = _int(body["warehouseid"], "warehouseid")
        self.warehouse(wid)
        if order.state == ORDER_CANCELLED:
            raise SimError(400, f"order {orderid} is cancelled")
        by_id = {int(i["orderitemid"]): i for i in order.product_items()}
        rest = order.undelivered()
        parsed: list[tuple[int, int]] = []
        for it in items:
            oid = _int(it.get("orderitemid"), "orderitemid")
            qty = _int(it.get("quantity"), "quantity")
            if oid not in by_id:
                raise SimError(400, f"orderitemid {oid} is not a product row of order {orderid}")
            left = rest.get(oid, 0)
            if qty == 0 or abs(qty) > abs(left) or (qty > 0) != (left > 0):
                raise SimError(400, f"orderitemid {oid}: {left} left to deliver, not {qty}")
            parsed.append((oid, qty))
        delivery = DeliveryRec(
            orderdeliveryid=self._id("delivery"),
            orderid=orderid,
            warehouseid=wid,
            datedelivery=self.now(),
            items=[(self._id("deliveryitem"), oid, q) for oid, q in parsed],
            orderdeliveryref=str(body.get("orderdeliveryref") or ""),
            # not in orderdelivery-write, but the read shows it; a client that names its
            # plugin (carrier) gets it back
            pluginname=str(body.get("pluginname") or ""),
        )
        for oid, q in parsed:
            order.delivered[oid] = order.delivered.get(oid, 0) + q
        order.deliveries.append(delivery)
        self._sync_reservation(order)
        self.emit(
            "order-delivery",
            {
                "order_id": orderid,
                "order_delivery_id": delivery.orderdeliveryid,
                "warehouse_id": wid,
                DELIVERY_STATE_FIELD: "delivered",
            },
        )
        sales = [(by_id[oid]["sku"], Decimal(-q), None) for oid, q in parsed if q > 0]
        refunds = [(by_id[oid]["sku"], Decimal(-q), None) for oid, q in parsed if q < 0]
        for ttype, lines in ((TRANSACTION_SALES, sales), (TRANSACTION_REFUND, refunds)):
            if lines:
                self._transact(wid, ttype, lines, orderdeliveryid=delivery.orderdeliveryid)
        return delivery.orderdeliveryid

    def add_log_item(self, orderid: int, body: Any) -> None:
        order = self.order(orderid)
        if not isinstance(body, dict) or "orderlogtypeid" not in body:
            raise SimError(400, "orderlogtypeid is required")
        kind = _int(body["orderlogtypeid"], "orderlogtypeid")
        if kind not in POSTABLE_ORDERLOG_TYPES:
            raise SimError(
                400,
                "only orderlogtypeid 900 (ReadyForPickup) and 910 (PickupRejected) can be added",
            )
        if order.state != ORDER_OPEN:
            raise SimError(400, f"order {orderid} is not open")
        order.log.append(
            {
                "datelog": self.now(),
                "orderid": orderid,
                "orderlogtypeid": kind,
                "strvalue": body.get("strvalue"),
                "fvalue": body.get("fvalue"),
            }
        )
        kind_name = "ready-for-pickup" if kind == ORDERLOG_READY_FOR_PICKUP else "pickup-rejected"
        self._order_event(order, kind_name, None)

    # -- store actions ----------------------------------------------------------------------

    def _store_additionaldata(self, store: StoreRec, receipt: int) -> dict[str, str]:
        return {
            "store-externalid": store.externalid,
            "store-name": store.name,
            "pos-receiptid": str(receipt),
            "pos-timezone": "Europe/Stockholm",
        }

    def till_sale(
        self,
        storeid: int,
        lines: list[dict[str, Any]],
        *,
        email: str = "",
        payment: str = "Card",
    ) -> OrderRec:
        """A customer buys at the till: a closed, paid order delivered from the store."""
        store = self.store(storeid)
        wid = self.store_warehouse(storeid)
        if not lines:
            raise SimError(400, "a sale needs lines")
        items = self._sale_items(lines)
        gross = sum((money(i["moneyrowprice"]) for i in items), ZERO)
        order = self._closed_sale(
            store, wid, items, [{"name": payment, "moneyamount": str(gross)}], email=email
        )
        order.data["checkouttypename"] = f"Sitoo POS - {payment}"
        return order

    def _sale_items(self, lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Order rows of goods sold at the till (``price`` per unit, or the product's)."""
        items: list[dict[str, Any]] = []
        for li in lines:
            sku = str(li.get("sku") or "")
            product = self.products_by_sku.get(sku)
            if product is None:
                raise SimError(400, f"unknown sku {sku}")
            qty = _int(li.get("quantity", 1), "quantity")
            if qty <= 0:
                raise SimError(400, "sale quantities must be positive")
            price = money(li["price"]) if li.get("price") is not None else product.moneyprice
            items.append(
                {
                    "productname": product.title,
                    "sku": sku,
                    "quantity": qty,
                    "moneyrowprice": str(price * qty),
                    "vatvalue": str(product.vatvalue),
                }
            )
        return items

    def _closed_sale(
        self,
        store: StoreRec,
        wid: int,
        items: list[dict[str, Any]],
        payments: list[dict[str, Any]],
        *,
        email: str,
    ) -> OrderRec:
        order = self.add_order(
            {
                "ordertypeid": ORDERTYPE_ORDER,
                "orderstateid": ORDER_CLOSED,
                "paymentstateid": PAYMENT_SUCCESSFUL,
                "warehouseid": wid,
                "registerid": store.registerid,
                "email": email,
                "additionaldata": self._store_additionaldata(store, self._id("receipt")),
                "orderitems": items,
                "payments": payments,
            }
        )
        self._deliver_all(order, wid)
        return order

    def _deliver_all(self, order: OrderRec, wid: int) -> None:
        rest = order.undelivered()
        if rest:
            self.add_delivery(
                order.orderid,
                {
                    "warehouseid": wid,
                    "orderdeliveryitems": [
                        {"orderitemid": oid, "quantity": q} for oid, q in rest.items()
                    ],
                },
            )

    def returned_quantities(self, orderid: int) -> dict[int, int]:
        """Original orderitemid -> units already returned through credit orders."""
        out: dict[int, int] = {}
        for rid in self.returns_of.get(orderid, []):
            for item in self.orders[rid].product_items():
                src = item["additionaldata"].get("pos-originalsales-orderitemid")
                if src is not None:
                    out[int(src)] = out.get(int(src), 0) - int(item["quantity"])
        return out

    def till_return(
        self,
        storeid: int,
        orderid: int,
        lines: list[dict[str, Any]] | None = None,
        *,
        reasoncode: str = "",
        comment: str = "",
        payment: str = "card",
        exchange: list[dict[str, Any]] | None = None,
    ) -> OrderRec:
        """A return at the till: a closed credit order with negative rows; stock comes back.

        ``payment`` says how the till settled the money: ``card`` or ``cash`` paid the customer
        back (a negative payment row), ``none`` paid nothing (the customer is to be refunded
        where they paid, online), the case where Shopify must refund.

        ``exchange`` (``[{"sku", "quantity"}]``, at the products' prices): the customer takes
        other goods for the returned ones. On the same receipt by default: the credit order
        has those as positive rows too, and ``payment`` settles the difference (a Card payment
        when the customer pays in). With ``payment`` ``virtual``, as Sitoo's exchange between
        two orders: the credit order is paid back by a virtual payment (``virtual-payment``
        "true") into a new sale of the goods taken, which a Card payment completes when they
        cost more (and pays the customer the rest back when they cost less)."""
        if payment not in EXCHANGE_PAYMENTS or (payment == "virtual" and not exchange):
            raise SimError(
                400,
                f"payment {payment!r}: one of {', '.join(TILL_RETURN_PAYMENTS)}, or virtual "
                "with exchange lines",
            )
        store = self.store(storeid)
        wid = self.store_warehouse(storeid)
        original = self.order(orderid)
        if original.state != ORDER_CLOSED:
            raise SimError(400, f"order {orderid} is not closed; only delivered goods return")
        returned = self.returned_quantities(orderid)
        rows = {
            int(i["orderitemid"]): i for i in original.product_items() if int(i["quantity"]) > 0
        }
        wanted: list[tuple[int, int]] = []
        if lines is None:
            wanted = [(oid, int(i["quantity"]) - returned.get(oid, 0)) for oid, i in rows.items()]
            wanted = [(oid, q) for oid, q in wanted if q > 0]
        else:
            for li in lines:
                qty = _int(li.get("quantity", 1), "quantity")
                if "orderitemid" in li:
                    oid = _int(li["orderitemid"], "orderitemid")
                else:
                    matches = [o for o, i in rows.items() if i["sku"] == li.get("sku")]
                    if not matches:
                        raise SimError(400, f"sku {li.get('sku')} is not on order {orderid}")
                    oid = matches[0]
                wanted.append((oid, qty))
        if not wanted:
            raise SimError(400, f"nothing left to return on order {orderid}")
        items: list[dict[str, Any]] = []
        for oid, qty in wanted:
            row = rows.get(oid)
            if row is None:
                raise SimError(400, f"orderitemid {oid} is not on order {orderid}")
            left = int(row["quantity"]) - returned.get(oid, 0)
            if qty <= 0 or qty > left:
                raise SimError(400, f"orderitemid {oid}: {left} returnable, not {qty}")
            unit_gross = (
                money(row["moneyitemtotal_net"]) + money(row["moneyitemtotal_vat"])
            ) / int(row["quantity"])
            items.append(
                {
                    "productname": row["productname"],
                    "sku": row["sku"],
                    "quantity": -qty,
                    "moneyrowprice": str(money(-unit_gross * qty)),
                    "vatvalue": row["vatvalue"],
                    "additionaldata": {
                        "pos-originalsales-orderitemid": str(oid),
                        "return-warehouseid": str(wid),
                        **({"reasoncode-return": reasoncode} if reasoncode else {}),
                    },
                }
            )
        taken = self._sale_items(exchange or [])
        value = -sum((money(i["moneyrowprice"]) for i in items), ZERO)
        worth = sum((money(i["moneyrowprice"]) for i in taken), ZERO)
        payments: list[dict[str, Any]] = []
        moved = min(value, worth)  # the value a virtual payment moves into the new sale
        if payment == "virtual":
            payments.append(_virtual(-moved))
            if value > worth:
                payments.append({"name": "Card", "moneyamount": str(worth - value)})
        else:
            items += taken  # the same receipt
            net = worth - value
            if net > 0:
                payments.append({"name": "Card", "moneyamount": str(net)})
            elif net < 0 and payment != "none":
                payments.append({"name": payment.capitalize(), "moneyamount": str(net)})
        credit = self._credit_order(
            store, wid, items, payments, reasoncode=reasoncode, comment=comment, original=original
        )
        if payment == "virtual":
            sale = [_virtual(moved)]
            if worth > value:
                sale.append({"name": "Card", "moneyamount": str(worth - value)})
            self._closed_sale(store, wid, taken, sale, email=str(original.data.get("email") or ""))
        return credit

    def blind_return(
        self,
        storeid: int,
        lines: list[dict[str, Any]],
        *,
        email: str = "",
        reasoncode: str = "",
        comment: str = "",
        payment: str = "card",
    ) -> OrderRec:
        """A return at the till with no receipt: a closed credit order linked to no original
        (``creditorderid`` null, flows.md C), its rows priced as staff key them (``price`` per
        unit, VAT included; the product's price by default), the goods back in the store.
        ``payment`` as for ``till_return``."""
        if payment not in TILL_RETURN_PAYMENTS:
            raise SimError(400, f"payment {payment!r}: one of {', '.join(TILL_RETURN_PAYMENTS)}")
        store = self.store(storeid)
        wid = self.store_warehouse(storeid)
        if not lines:
            raise SimError(400, "a return needs lines")
        back = {"return-warehouseid": str(wid)}
        if reasoncode:
            back["reasoncode-return"] = reasoncode
        items = [
            {
                **row,
                "quantity": -row["quantity"],
                "moneyrowprice": str(-money(row["moneyrowprice"])),
                "additionaldata": dict(back),
            }
            for row in self._sale_items(lines)
        ]
        gross = sum((money(i["moneyrowprice"]) for i in items), ZERO)
        payments = (
            [] if payment == "none" else [{"name": payment.capitalize(), "moneyamount": str(gross)}]
        )
        return self._credit_order(
            store, wid, items, payments, reasoncode=reasoncode, comment=comment, email=email
        )

    def _credit_order(
        self,
        store: StoreRec,
        wid: int,
        items: list[dict[str, Any]],
        payments: list[dict[str, Any]],
        *,
        reasoncode: str,
        comment: str,
        original: OrderRec | None = None,
        email: str = "",
    ) -> OrderRec:
        """A closed credit order at the store's till, its goods delivered back there; linked
        to ``original`` (its email and currency), or to nothing (a blind return)."""
        extra = self._store_additionaldata(store, self._id("receipt"))
        if original is not None:
            extra["pos-originalsales-orderid"] = str(original.orderid)
        if reasoncode:
            extra["refundreasoncode-reasoncode"] = reasoncode
        if comment:
            extra["refundreasoncode-comment"] = comment
        body: dict[str, Any] = {
            "ordertypeid": ORDERTYPE_ORDER,
            "orderstateid": ORDER_CLOSED,
            "paymentstateid": PAYMENT_SUCCESSFUL,
            "warehouseid": wid,
            "registerid": store.registerid,
            "email": email,
            "additionaldata": extra,
            "orderitems": items,
            "payments": payments,
        }
        if original is not None:
            body["creditorderid"] = original.orderid
            body["email"] = original.data.get("email") or ""
            body["currencycode"] = original.data.get("currencycode")
        credit = self.add_order(body)
        self._deliver_all(credit, wid)
        return credit

    def ready_for_pickup(self, orderid: int) -> None:
        self.add_log_item(orderid, {"orderlogtypeid": ORDERLOG_READY_FOR_PICKUP})

    def collect(
        self, orderid: int, *, take_payment: bool = False, lines: dict[int, int] | None = None
    ) -> None:
        """The customer picks the order up: delivered from its warehouse and closed.

        ``take_payment``: the order was to be paid in store, and staff take the payment at
        the till as it is collected: a Card payment of the order's total and the payment
        state paid, in the same change that closes it. Refused on an order already paid.

        ``lines`` (orderitemid -> units): a partial pickup. Only those units are handed over,
        as one delivery, and the order closes with the rest never delivered: that stock stays
        on hand and its reservation goes with the close."""
        order = self.order(orderid)
        if order.state != ORDER_OPEN:
            raise SimError(400, f"order {orderid} is not open")
        wid = order.data.get("warehouseid")
        if wid is None:
            raise SimError(400, f"order {orderid} has no warehouse to collect from")
        if lines is not None:
            self._check_collect_lines(order, lines)
        change: dict[str, Any] = {"orderstateid": ORDER_CLOSED}
        if take_payment:
            if _int(order.data.get("paymentstateid") or 0, "paymentstateid") == PAYMENT_SUCCESSFUL:
                raise SimError(400, f"order {orderid} is already paid")
            paid = self._payment(
                {"name": "Card", "moneyamount": order.data["moneytotal_gross_all"]}
            )
            change["payments"] = [*order.data["payments"], paid]
            change["paymentstateid"] = PAYMENT_SUCCESSFUL
        if lines is None:
            self.update_order(orderid, change)
            return
        # everything is checked above, so a refused collect leaves the order as it was
        self.add_delivery(
            orderid,
            {
                "warehouseid": wid,
                "orderdeliveryitems": [
                    {"orderitemid": oid, "quantity": q} for oid, q in lines.items()
                ],
            },
        )
        self.update_order(orderid, change, deliver_rest=False)

    @staticmethod
    def _check_collect_lines(order: OrderRec, lines: dict[int, int]) -> None:
        if not lines:
            raise SimError(400, "lines must name at least one orderitemid")
        rows = {int(i["orderitemid"]) for i in order.product_items()}
        rest = order.undelivered()
        for oid, units in lines.items():
            if oid not in rows:
                raise SimError(
                    400, f"orderitemid {oid} is not a product row of order {order.orderid}"
                )
            left = max(rest.get(oid, 0), 0)  # a return row (negative) is never collected
            if isinstance(units, bool) or not isinstance(units, int) or not 1 <= units <= left:
                raise SimError(400, f"orderitemid {oid}: {left} left to collect, not {units}")

    def ship(
        self, orderid: int, tracking: str, carrier: str = "", lines: dict[int, int] | None = None
    ) -> int:
        """Store staff ship an order to its delivery address (ship-from-store): one delivery
        from the order's warehouse of ``lines`` (orderitemid -> units; by default all still
        undelivered), carrying the tracking number as its ``orderdeliveryref`` and the carrier
        as its ``pluginname``; the order closes once nothing is left to deliver. Returns the
        orderdeliveryid. An order without a delivery address is a pickup: it is collected,
        not shipped."""
        order = self.order(orderid)
        if order.state != ORDER_OPEN:
            raise SimError(400, f"order {orderid} is not open")
        wid = order.data.get("warehouseid")
        if wid is None:
            raise SimError(400, f"order {orderid} has no warehouse to ship from")
        if not order.data.get("delivery_address"):
            raise SimError(400, f"order {orderid} has no delivery address to ship to")
        if lines is None:
            lines = {oid: q for oid, q in order.undelivered().items() if q > 0}
            if not lines:
                raise SimError(400, f"order {orderid} has nothing left to ship")
        deliveryid = self.add_delivery(
            orderid,
            {
                "warehouseid": wid,
                "orderdeliveryref": tracking,
                "pluginname": carrier,
                "orderdeliveryitems": [
                    {"orderitemid": oid, "quantity": q} for oid, q in lines.items()
                ],
            },
        )
        if not order.undelivered():
            # closing delivers nothing more: the order event tells of the state change
            self.update_order(orderid, {"orderstateid": ORDER_CLOSED})
        return deliveryid

    def reject_pickup(self, orderid: int, reason: str = "", *, cancel: bool = False) -> None:
        self.add_log_item(
            orderid, {"orderlogtypeid": ORDERLOG_PICKUP_REJECTED, "strvalue": reason or None}
        )
        if cancel:
            self.update_order(orderid, {"orderstateid": ORDER_CANCELLED})

    # -- users ------------------------------------------------------------------------------

    def add_user(self, body: Any) -> str:
        if not isinstance(body, dict) or not isinstance(body.get("email"), str):
            raise SimError(400, "email is required")
        email = body["email"].strip()
        key = email.lower()
        # assumed: the native register keeps one user per email (not stated by the sources)
        if key in self.users_by_email:
            raise SimError(400, f"a user with email {email} already exists")
        now = self.now()
        userid = self._guid()
        data: dict[str, Any] = {
            "userid": userid,
            "email": email,
            "namefirst": "",
            "namelast": "",
            "personalid": "",
            "externalid": None,
            "company": "",
            "phone": "",
            "mobile": "",
            "customernumber": "",
            "datecreated": now,
            "datemodified": now,
            "role": None,
            "warehouses": [],
        }
        for name, value in body.items():
            if name not in {"userid", "datecreated", "datemodified"}:
                data[name] = value
        data["email"] = email
        self.users[userid] = UserRec(userid, data)
        self.users_by_email[key] = userid
        return userid

    def user(self, userid: str) -> UserRec:
        user = self.users.get(userid)
        if user is None:
            raise SimError(404, f"user {userid} not found")
        return user

    def update_user(self, userid: str, body: Any) -> None:
        user = self.user(userid)
        if not isinstance(body, dict):
            raise SimError(400, "body must be a user object")
        if "email" in body:
            key = str(body["email"]).strip().lower()
            owner = self.users_by_email.get(key)
            if owner not in (None, userid):
                raise SimError(400, f"a user with email {body['email']} already exists")
            self.users_by_email.pop(str(user.data["email"]).lower(), None)
            self.users_by_email[key] = userid
        for name, value in body.items():
            if name not in {"userid", "datecreated"}:
                user.data[name] = value
        user.data["datemodified"] = self.now()

    # -- Z-reports --------------------------------------------------------------------------

    def close_day(self, storeid: int) -> ZReportRec:
        """The store closes its register: a Z-report over POS orders since the last one."""
        store = self.store(storeid)
        since = self._zreport_last_orderid.get(storeid, 0)
        orders = [
            o
            for o in self.orders.values()
            if o.orderid > since
            and o.data.get("registerid") == store.registerid
            and o.state == ORDER_CLOSED
        ]
        sales = [o for o in orders if o.data.get("creditorderid") is None]
        refunds = [o for o in orders if o.data.get("creditorderid") is not None]

        def total(os: list[OrderRec], field: str) -> Decimal:
            return sum((money(o.data[field]) for o in os), ZERO)

        def items(os: list[OrderRec]) -> int:
            return sum(abs(int(i["quantity"])) for o in os for i in o.product_items())

        now = self.now()
        zid = self._id("zreport")
        sales_gross = total(sales, "moneytotal_gross_all")
        refund_gross = total(refunds, "moneytotal_gross_all")
        data: dict[str, Any] = {
            "zreportid": zid,
            "registerid": store.registerid,
            "registerkey": store.registerkey,
            "registernumber": 1,
            "datecreated": now,
            "dateopened": now,
            "dateadded": now,
            "eshopid": self.eshop_id,
            "store_id": store.externalid,
            "store_name": store.name,
            "currencycode": self.currency,
            "moneysalestotal": format_money(sales_gross),
            "moneysalestotalnet": format_money(total(sales, "moneyfinal_net")),
            "numsales": len(sales),
            "numsalesitems": items(sales),
            "moneyrefundtotal": format_money(refund_gross),
            "moneyrefundtotalnet": format_money(total(refunds, "moneyfinal_net")),
            "numrefund": len(refunds),
            "numrefunditems": items(refunds),
            "vatgroupssales": [],
            "vatgroupsrefund": [],
            "productgroupssales": [],
            "productgroupsrefund": [],
            "paymentssales": [],
            "paymentsrefund": [],
            "discountssales": [],
            "discountsrefund": [],
            "salestaxessales": [],
            "salestaxesrefund": [],
            "moneyroundoff": "0.00",
            "moneydiscount": "0.00",
            "moneysummarytotal": format_money(sales_gross + refund_gross),
            "moneygrandtotalsales": format_money(sales_gross),
            "moneygrandtotalrefund": format_money(refund_gross),
            "moneygrandtotalnet": format_money(sales_gross + refund_gross),
            "numreceipts": len(orders),
        }
        rec = ZReportRec(zid, data)
        self.zreports.append(rec)
        if orders:
            self._zreport_last_orderid[storeid] = max(o.orderid for o in orders)
        self.emit(
            ZREPORT_EVENT_TYPE,
            {"zreport_id": zid, "register_id": store.registerid, "store_id": store.externalid},
        )
        return rec

    # -- read helpers -----------------------------------------------------------------------

    def transactions_from(self, first_id: int) -> list[TransactionRec]:
        # ids start at 1, are never reused and are appended in order: the id is the index
        return self.transactions[max(first_id - 1, 0) :]

    def stock_snapshot(self, wid: int | None = None) -> dict[str, dict[str, dict[str, str]]]:
        out: dict[str, dict[str, dict[str, str]]] = {}
        for w, items in self.stock.items():
            if wid is not None and w != wid:
                continue
            out[str(w)] = {
                sku: {
                    "total": format_quantity(i.total),
                    "reserved": format_quantity(i.reserved),
                    "available": format_quantity(i.available),
                }
                for sku, i in items.items()
            }
        return out

    def move_out(self, wid: int, sku: str, quantity: int, description: str = "Move Out") -> int:
        return self.add_transaction(
            {
                "warehouseid": wid,
                "transactiontype": TRANSACTION_MOVE_OUT,
                "description": description,
                "items": [{"sku": sku, "decimalquantity": str(-abs(quantity))}],
            }
        )

    def move_in(self, wid: int, sku: str, quantity: int, description: str = "Move In") -> int:
        return self.add_transaction(
            {
                "warehouseid": wid,
                "transactiontype": TRANSACTION_MOVE_IN,
                "description": description,
                "items": [{"sku": sku, "decimalquantity": str(abs(quantity))}],
            }
        )


def _virtual(amount: Decimal) -> dict[str, Any]:
    """A payment that moves value between two orders of an exchange: no money changes hands."""
    return {
        "name": "Exchange",
        "moneyamount": str(amount),
        "additionaldata": {"virtual-payment": "true"},
    }
