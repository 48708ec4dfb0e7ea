"""The simulator's records and their Sitoo wire shapes.

Quantities and money live as ``Decimal`` and are formatted on the way out (money with 2
decimals, quantities with 3, dates as Unix seconds). Warehouse items keep their wire dict
cached because paged stock reads are the hot path; it is rebuilt only when the item changes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from tillsync.schemas.money import format_money, format_quantity
from tillsync.schemas.sitoo import ORDERITEM_PRODUCT, WAREHOUSE_FIFO

ZERO = Decimal(0)
_dumps = json.JSONEncoder(separators=(",", ":")).encode


class SimError(Exception):
    """An API answer other than 2xx, in Sitoo's shape ``{statuscode, errortext}``."""

    def __init__(self, statuscode: int, errortext: str) -> None:
        super().__init__(f"{statuscode} {errortext}")
        self.statuscode = statuscode
        self.errortext = errortext

    def body(self) -> dict[str, Any]:
        return {"statuscode": self.statuscode, "errortext": self.errortext}


@dataclass
class StoreRec:
    storeid: int
    name: str
    externalid: str
    eshopid: int
    registerid: str
    registerkey: str
    storetype: int = 10
    city: str = ""
    countryid: str = "se"
    warehouseid: int | None = None

    def wire(self) -> dict[str, Any]:
        return {
            "storeid": self.storeid,
            "eshopid": self.eshopid,
            "storetype": self.storetype,
            "name": self.name,
            "externalid": self.externalid,
            "externalgroupid": None,
            "phone": None,
            "email": None,
            "address": "",
            "address2": "",
            "zip": "",
            "city": self.city,
            "state": "",
            "countryid": self.countryid,
            "latitude": None,
            "longitude": None,
            "nearby_stores": [],
            "usetype_movein": 10,
            "usetype_moveout": 20,
            "usetype_manualin": None,
            "usetype_manualout": None,
            "usetype_shipmentin": None,
            "usetype_shipmentout": None,
            "tags": [],
        }

    def register_wire(self) -> dict[str, Any]:
        return {
            "registerid": self.registerid,
            "manufacturerid": "SITOO" + self.registerid.strip("{}").replace("-", ""),
            "registerkey": self.registerkey,
            "company": self.name,
            "currencycode": "SEK",
            "warehouseid": self.warehouseid,
        }


@dataclass
class WarehouseRec:
    warehouseid: int
    name: str
    storeid: int | None
    currencycode: str = "SEK"
    warehousetype: int = WAREHOUSE_FIFO
    usetype: int = 10
    sellable: bool = True
    externalid: str | None = None

    def wire(self) -> dict[str, Any]:
        return {
            "warehouseid": self.warehouseid,
            "warehousetype": self.warehousetype,
            "usetype": self.usetype,
            "storeid": self.storeid,
            "sellable": self.sellable,
            "currencycode": self.currencycode,
            "name": self.name,
            "address": "",
            "address2": "",
            "zip": "",
            "city": "",
            "state": "",
            "countryid": None,
            "externalid": self.externalid,
        }


class StockItem:
    """A warehouse item: stock on hand, reserved by open orders, and its cached wire dict."""

    __slots__ = (
        "binlocation",
        "datelastmodified",
        "datelaststocktaking",
        "pricein",
        "reserved",
        "sku",
        "threshold",
        "total",
        "warehouseid",
        "warehouseitemid",
        "wire",
        "wire_json",
    )

    def __init__(self, warehouseitemid: int, warehouseid: int, sku: str, now: int) -> None:
        self.warehouseitemid = warehouseitemid
        self.warehouseid = warehouseid
        self.sku = sku
        self.total = ZERO
        self.reserved = ZERO
        self.pricein = ZERO
        self.threshold = ZERO
        self.binlocation = ""
        self.datelastmodified = now
        self.datelaststocktaking: int | None = None
        self.wire: dict[str, Any] = {}
        self.refresh()

    @property
    def available(self) -> Decimal:
        return self.total - self.reserved

    def refresh(self) -> None:
        self.wire = {
            "warehouseitemid": self.warehouseitemid,
            "warehouseid": self.warehouseid,
            "sku": self.sku,
            "binlocation": self.binlocation,
            "decimalthreshold": format_quantity(self.threshold),
            "decimaltotal": format_quantity(self.total),
            "moneytotal": format_money(self.total * self.pricein),
            "datelastmodified": self.datelastmodified,
            "datelaststocktaking": self.datelaststocktaking,
            "decimalreserved": format_quantity(self.reserved),
            "decimalavailable": format_quantity(self.available),
        }
        # paged stock reads are the hot path: pages are joined from these pre-encoded rows
        self.wire_json = _dumps(self.wire)


@dataclass
class ItemLogRec:
    sku: str
    quantity: Decimal
    total_after: Decimal
    pricein: Decimal

    def wire(self) -> dict[str, Any]:
        return {
            "decimalquantity": format_quantity(self.quantity),
            "decimaltotal": format_quantity(self.total_after),
            "moneypricein": format_money(self.pricein),
            "moneytotal": format_money(self.total_after * self.pricein),
            "moneyvalue": format_money(self.quantity * self.pricein),
            "sku": self.sku,
        }


@dataclass
class TransactionRec:
    warehousetransactionid: int
    warehouseid: int
    transactiontype: int
    datecreated: int
    items: list[ItemLogRec]
    description: str = ""
    orderdeliveryid: int | None = None
    externalid: str | None = None
    reasoncode: str | None = None
    _wire: dict[str, Any] | None = None

    def wire(self) -> dict[str, Any]:
        # transactions are immutable once written, so the dict is built once
        if self._wire is None:
            self._wire = {
                "warehousetransactionid": self.warehousetransactionid,
                "warehouseid": self.warehouseid,
                "datecreated": self.datecreated,
                "transactiontype": self.transactiontype,
                "description": self.description,
                "orderdeliveryid": self.orderdeliveryid,
                "shipmentid": None,
                "externalid": self.externalid,
                "reasoncode": self.reasoncode,
                "items": [i.wire() for i in self.items],
            }
        return self._wire


@dataclass
class ProductRec:
    productid: int
    sku: str
    title: str
    moneyprice: Decimal
    vatvalue: Decimal = Decimal(25)
    vatid: int = 1
    moneypriceorg: Decimal = ZERO
    moneypricein: Decimal = ZERO
    barcode: str | None = None
    active: bool = True
    activepos: bool = True
    variantparentid: int | None = None
    attributes: list[str] = field(default_factory=list)
    datecreated: int = 0
    datemodified: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def wire(self) -> dict[str, Any]:
        return {
            "productid": self.productid,
            "sku": self.sku,
            "title": self.title,
            "descriptionshort": "",
            "description": "",
            "moneyprice": format_money(self.moneyprice),
            "moneypriceorg": format_money(self.moneypriceorg),
            "moneypricein": format_money(self.moneypricein),
            "unitlabel": "",
            "allowdecimals": False,
            "active": self.active,
            "activepos": self.activepos,
            "vatid": self.vatid,
            "vatvalue": float(self.vatvalue),
            "categories": [],
            "manufacturerid": None,
            "stockcountenable": True,
            "variantparentid": self.variantparentid,
            "barcode": self.barcode,
            "barcodealiases": [],
            "datecreated": self.datecreated,
            "datemodified": self.datemodified,
            **self.extra,
        }

    def variant_wire(self) -> dict[str, Any]:
        return {
            "productid": self.productid,
            "active": self.active,
            "activepos": self.activepos,
            "title": self.title,
            "sku": self.sku,
            "moneyprice": format_money(self.moneyprice),
            "moneypriceorg": format_money(self.moneypriceorg),
            "moneypricein": format_money(self.moneypricein),
            # productvariant-read requires barcode as a non-null string
            "barcode": self.barcode or "",
            "barcodealiases": [],
            "attributes": list(self.attributes),
        }


@dataclass
class DeliveryRec:
    orderdeliveryid: int
    orderid: int
    warehouseid: int
    datedelivery: int
    items: list[tuple[int, int, int]]  # (orderdeliveryitemid, orderitemid, quantity)
    orderdeliveryref: str = ""  # "waybill no. or similar tracking number"
    pluginname: str = ""  # the plugin handling the delivery: here the carrier, if any

    def wire(self) -> dict[str, Any]:
        return {
            "orderdeliveryid": self.orderdeliveryid,
            "orderid": self.orderid,
            "warehouseid": self.warehouseid,
            "orderdeliveryref": self.orderdeliveryref,
            "datedelivery": self.datedelivery,
            "datecancelled": None,
            "pluginname": self.pluginname,
            "orderdeliveryitems": [
                {
                    "orderdeliveryitemid": did,
                    "orderdeliveryid": self.orderdeliveryid,
                    "orderitemid": oid,
                    "quantity": q,
                }
                for did, oid, q in self.items
            ],
        }


@dataclass
class OrderRec:
    """An order: ``data`` is its wire dict; the rest is bookkeeping the wire does not show."""

    orderid: int
    data: dict[str, Any]
    reserved: dict[str, Decimal] = field(default_factory=dict)  # sku -> units held
    reserved_at: int | None = None  # warehouse holding ``reserved``
    delivered: dict[int, int] = field(default_factory=dict)  # orderitemid -> units
    deliveries: list[DeliveryRec] = field(default_factory=list)
    log: list[dict[str, Any]] = field(default_factory=list)

    @property
    def state(self) -> int:
        return int(self.data["orderstateid"])

    @property
    def items(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.data["orderitems"]
        return items

    def product_items(self) -> list[dict[str, Any]]:
        return [
            i
            for i in self.items
            if i.get("orderitemtype", ORDERITEM_PRODUCT) == ORDERITEM_PRODUCT and i.get("sku")
        ]

    def undelivered(self) -> dict[int, int]:
        """orderitemid -> units still to deliver (negative for return rows)."""
        out: dict[int, int] = {}
        for item in self.product_items():
            rest = int(item["quantity"]) - self.delivered.get(int(item["orderitemid"]), 0)
            if rest:
                out[int(item["orderitemid"])] = rest
        return out

    def wire(self) -> dict[str, Any]:
        return {**self.data, "orderlogitems": [dict(e) for e in self.log]}


@dataclass
class UserRec:
    userid: str
    data: dict[str, Any]


@dataclass
class ZReportRec:
    zreportid: int
    data: dict[str, Any]
