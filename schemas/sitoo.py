"""Pydantic models of the Sitoo REST v2 payloads and Events SPI pushes that tillsync reads.

Field names are Sitoo's own (``decimaltotal``, ``moneytotal_gross_all``, ...), so a model
validates a response body as it arrives. Models are permissive (unknown fields are kept, most
fields optional) because Sitoo answers with only the fields asked for (``fields=``) and adds
fields over time; the fields tillsync acts on are typed. Money and quantities arrive as strings
("123.50", "5.000") and become ``Decimal`` through tillsync.schemas.money, never floats.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from tillsync.schemas.money import money, parse_decimal

Money = Annotated[Decimal, BeforeValidator(money)]
Quantity = Annotated[Decimal, BeforeValidator(parse_decimal)]


class _Sitoo(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


# -- transaction types and states (sitoo-api.md §2) -------------------------------------------

# 10/20/50 come from Sitoo's example descriptions; 30 (Sales) and 40 (Refund) are inferred from
# examples carrying an orderdeliveryid. Sales, Refund and Stocktaking are read-only in the API.
TRANSACTION_MOVE_IN = 10
TRANSACTION_MOVE_OUT = 20
TRANSACTION_SALES = 30
TRANSACTION_REFUND = 40
TRANSACTION_STOCKTAKING = 50
READ_ONLY_TRANSACTION_TYPES = frozenset(
    {TRANSACTION_SALES, TRANSACTION_REFUND, TRANSACTION_STOCKTAKING}
)

WAREHOUSE_FIFO = 10  # inferred
WAREHOUSE_VIRTUAL = 20  # confirmed: transactions cannot be posted to it

ORDER_OPEN = 0
ORDER_CLOSED = 10
ORDER_CANCELLED = 20
ORDER_ABANDONED = -1

PAYMENT_NONE = 0
PAYMENT_PENDING = 10
PAYMENT_RESERVED = 15
PAYMENT_SUCCESSFUL = 20
PAYMENT_CANCELLED = 30
PAYMENT_FAILED = 40

ORDERTYPE_ORDER = 10
ORDERTYPE_BOOKING = 100
ORDERTYPE_POSPARKED = 110

ORDERITEM_PRODUCT = 10  # from the examples

ORDERLOG_READY_FOR_PICKUP = 900
ORDERLOG_PICKUP_REJECTED = 910
POSTABLE_ORDERLOG_TYPES = frozenset({ORDERLOG_READY_FOR_PICKUP, ORDERLOG_PICKUP_REJECTED})


# -- envelopes ---------------------------------------------------------------------------------


class BatchResult(_Sitoo):
    """One entry of a batch envelope: ``return`` is the new id, ``true``, or absent on error."""

    statuscode: int
    return_: Any = Field(None, alias="return")
    errortext: str | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.statuscode < 300


class SitooErrorBody(_Sitoo):
    statuscode: int
    errortext: str = ""


# -- sites, stores, warehouses -----------------------------------------------------------------


class Site(_Sitoo):
    eshopid: int
    siteid: str | None = None
    siteurl: str | None = None


class Store(_Sitoo):
    storeid: int
    name: str = ""
    storetype: int | None = None
    eshopid: int | None = None
    externalid: str | None = None
    externalgroupid: str | None = None
    city: str | None = None
    countryid: str | None = None


class Warehouse(_Sitoo):
    warehouseid: int
    name: str = ""
    warehousetype: int | None = None
    usetype: int | None = None
    storeid: int | None = None
    sellable: bool | None = None
    currencycode: str | None = None
    externalid: str | None = None


class WarehouseItem(_Sitoo):
    sku: str
    warehouseitemid: int | None = None
    warehouseid: int | None = None
    decimaltotal: Quantity = Decimal(0)
    decimalreserved: Quantity = Decimal(0)
    decimalavailable: Quantity = Decimal(0)
    moneytotal: Money | None = None
    datelastmodified: int | None = None
    datelaststocktaking: int | None = None


class WarehouseItemLog(_Sitoo):
    sku: str
    decimalquantity: Quantity
    decimaltotal: Quantity | None = None
    moneypricein: Money | None = None
    moneytotal: Money | None = None
    moneyvalue: Money | None = None


class WarehouseTransaction(_Sitoo):
    warehousetransactionid: int
    warehouseid: int
    transactiontype: int
    datecreated: int | None = None
    description: str | None = None
    orderdeliveryid: int | None = None
    shipmentid: int | None = None
    externalid: str | None = None
    reasoncode: str | None = None
    items: list[WarehouseItemLog] = Field(default_factory=list)


class WarehouseTransactionItemIn(BaseModel):
    """An item of a warehouse transaction we write (Move In / Move Out)."""

    sku: str
    decimalquantity: str
    moneypricein: str | None = None


class WarehouseTransactionIn(BaseModel):
    """A warehouse transaction we POST; ``externalid`` makes a retried batch recognisable."""

    warehouseid: int
    transactiontype: int
    items: list[WarehouseTransactionItemIn]
    description: str | None = None
    externalid: str | None = None
    reasoncode: str | None = None


# -- products ----------------------------------------------------------------------------------


class Product(_Sitoo):
    sku: str
    productid: int | None = None
    title: str | None = None
    moneyprice: Money | None = None
    moneypriceorg: Money | None = None
    moneypricein: Money | None = None
    vatid: int | None = None
    vatvalue: Decimal | None = None
    barcode: str | None = None
    barcodealiases: list[str] = Field(default_factory=list)
    active: bool | None = None
    activepos: bool | None = None
    variantparentid: int | None = None
    datecreated: int | None = None
    datemodified: int | None = None


class ProductVariantGroup(_Sitoo):
    name: str
    options: list[str] = Field(default_factory=list)


class ProductVariant(_Sitoo):
    productid: int
    sku: str
    title: str = ""
    activepos: bool = True
    moneyprice: Money | None = None
    barcode: str | None = None
    attributes: list[str] = Field(default_factory=list)


class ProductVariants(_Sitoo):
    groups: list[ProductVariantGroup] = Field(default_factory=list)
    variants: list[ProductVariant] = Field(default_factory=list)


# -- orders ------------------------------------------------------------------------------------


class OrderItem(_Sitoo):
    productname: str = ""
    quantity: int
    orderitemid: int | None = None
    orderitemtype: int | None = None
    productid: int | None = None
    sku: str | None = None
    decimalquantitytotal: Quantity | None = None
    moneynetpriceperunit: Money | None = None
    moneyitemtotal_net: Money | None = None
    moneyitemtotal_vat: Money | None = None
    moneyoriginalprice: Money | None = None
    moneydiscount: Money | None = None
    vatvalue: Decimal | None = None
    additionaldata: dict[str, Any] = Field(default_factory=dict)


class OrderPayment(_Sitoo):
    name: str
    moneyamount: Money
    externalid: str | None = None
    reftype: str | None = None
    refid: str | None = None
    additionaldata: dict[str, Any] = Field(default_factory=dict)

    @property
    def virtual(self) -> bool:
        """Not money but value moved between two orders: an exchange (``virtual-payment``)."""
        return str(self.additionaldata.get("virtual-payment", "")).lower() == "true"


class OrderLogItem(_Sitoo):
    orderlogtypeid: int
    datelog: int | None = None
    orderid: int | None = None
    strvalue: str | None = None
    fvalue: float | None = None


class Order(_Sitoo):
    orderid: int
    ordertypeid: int = ORDERTYPE_ORDER
    eshopid: int | None = None
    externalid: str | None = None
    creditorderid: int | None = None
    email: str | None = None
    namefirst: str | None = None
    namelast: str | None = None
    orderdate: int | None = None
    orderstateid: int = ORDER_OPEN
    paymentstateid: int | None = None
    registerid: str | None = None
    warehouseid: int | None = None
    datereserved: int | None = None
    currencycode: str | None = None
    moneyfinal_net: Money | None = None
    moneyfinal_vat: Money | None = None
    moneytotal_gross_all: Money | None = None
    additionaldata: dict[str, Any] = Field(default_factory=dict)
    orderitems: list[OrderItem] = Field(default_factory=list)
    payments: list[OrderPayment] = Field(default_factory=list)
    orderlogitems: list[OrderLogItem] = Field(default_factory=list)

    @property
    def is_return(self) -> bool:
        return self.creditorderid is not None


class OrderItemIn(BaseModel):
    """An order row we POST: ``moneyrowprice`` is the gross row total, VAT included."""

    model_config = ConfigDict(extra="allow")

    productname: str
    quantity: int
    sku: str | None = None
    moneyrowprice: str | None = None
    moneyrowdiscount: str | None = None
    vatvalue: float | None = None
    orderitemtype: int | None = None
    additionaldata: dict[str, str] | None = None


class OrderIn(BaseModel):
    """An order we POST at a store's warehouse: click & collect has no delivery address,
    ship-from-store has one (which is how Sitoo tells them apart, flows.md A)."""

    model_config = ConfigDict(extra="allow")

    ordertypeid: int = ORDERTYPE_ORDER
    externalid: str | None = None
    email: str | None = None
    namefirst: str | None = None
    namelast: str | None = None
    phone: str | None = None
    orderstateid: int | None = None
    paymentstateid: int | None = None
    warehouseid: int | None = None
    currencycode: str | None = None
    creditorderid: int | None = None
    customerref: str | None = None
    delivery_address: str | None = None
    delivery_address2: str | None = None
    delivery_zip: str | None = None
    delivery_city: str | None = None
    delivery_state: str | None = None
    delivery_countryid: str | None = None
    additionaldata: dict[str, str] | None = None
    orderitems: list[OrderItemIn] = Field(default_factory=list)
    payments: list[dict[str, Any]] | None = None


class OrderDeliveryItem(_Sitoo):
    orderitemid: int
    quantity: int
    orderdeliveryitemid: int | None = None
    orderdeliveryid: int | None = None


class OrderDelivery(_Sitoo):
    warehouseid: int
    orderdeliveryid: int | None = None
    orderid: int | None = None
    orderdeliveryref: str | None = None
    pluginname: str | None = None  # what handles the delivery: the carrier, for a parcel [?]
    datedelivery: int | None = None
    datecancelled: int | None = None
    orderdeliveryitems: list[OrderDeliveryItem] = Field(default_factory=list)


# -- users (customers) -------------------------------------------------------------------------


class User(_Sitoo):
    email: str
    userid: str | None = None
    namefirst: str | None = None
    namelast: str | None = None
    externalid: str | None = None
    customernumber: str | None = None
    mobile: str | None = None
    phone: str | None = None
    datecreated: int | None = None
    datemodified: int | None = None


class UserIn(BaseModel):
    model_config = ConfigDict(extra="allow")

    email: str
    namefirst: str | None = None
    namelast: str | None = None
    externalid: str | None = None
    mobile: str | None = None
    customernumber: str | None = None


# -- Z-reports ---------------------------------------------------------------------------------


class CashRegister(_Sitoo):
    registerid: str
    registerkey: str | None = None
    warehouseid: int | None = None


class ZReport(_Sitoo):
    zreportid: int
    registerid: str | None = None
    eshopid: int | None = None
    store_id: str | None = None
    store_name: str | None = None
    currencycode: str | None = None
    datecreated: int | None = None
    dateopened: int | None = None
    dateadded: int | None = None
    moneysalestotal: Money | None = None
    moneysalestotalnet: Money | None = None
    numsales: int | None = None
    moneyrefundtotal: Money | None = None
    moneyrefundtotalnet: Money | None = None
    numrefund: int | None = None
    moneydiscount: Money | None = None
    moneygrandtotalsales: Money | None = None
    moneygrandtotalrefund: Money | None = None


# -- Events SPI (sitoo-api.md §3) --------------------------------------------------------------

EventType = Literal[
    "order",
    "order-delivery",
    "booking",
    "shipment",
    "shipment-v3",
    "warehouse-transaction",
    "z-report",
    "store-z-report",
]
OrderEventType = Literal["add", "update", "ready-for-pickup", "pickup-rejected", "email-receipt"]
OrderStateChanged = Literal["open", "closed", "cancelled"]


class SitooEvent(_Sitoo):
    """One event of an Events SPI push. Events carry ids only: GET the resource afterwards.

    ``data`` is kept as a dict because its fields depend on ``event_type``; the typed helpers
    below read the documented order fields and the (undocumented, assumed) id fields of the
    other types.
    """

    event_id: str
    event_type: str
    event_date: int
    account_id: int
    data: dict[str, Any] = Field(default_factory=dict)

    @property
    def order_id(self) -> int | None:
        v = self.data.get("order_id")
        return int(v) if v is not None else None

    @property
    def warehouse_id(self) -> int | None:
        v = self.data.get("warehouse_id")
        return int(v) if v is not None else None

    @property
    def order_event_type(self) -> str | None:
        return self.data.get("order_event_type")

    @property
    def order_state_changed(self) -> str | None:
        return self.data.get("order_state_changed")

    @property
    def warehouse_transaction_id(self) -> int | None:
        v = self.data.get("warehouse_transaction_id")
        return int(v) if v is not None else None


class SitooEventBatch(BaseModel):
    """The body of one push: a JSON array of up to 10 events in chronological order."""

    events: list[SitooEvent] = Field(max_length=10)

    @classmethod
    def parse_body(cls, body: Any) -> SitooEventBatch:
        return cls.model_validate({"events": body})
