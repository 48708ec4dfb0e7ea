"""``tillsync returns link CREDIT ORDER``: staff name the online order a blind return returns;
``tillsync returns dismiss CREDIT``: staff settled it outside tillsync, and it leaves the queue.

Checked against both platforms before anything is sent: the credit order must be a blind
return, and the Shopify order must have the returned units fulfilled and not returned yet.
Then the link goes to the returns flow as a record on ``sitoo.returns`` (keyed by the credit
order, as the blind return's own record is), and the worker makes the return: one writer
makes every return, so a link told twice, or racing the flow, is still one return.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer

from tillsync.connectors.shopify.client import ShopifyClient, ShopifyConfig
from tillsync.connectors.shopify.returns import OrderReturns
from tillsync.connectors.sitoo.client import SitooClient, SitooConfig
from tillsync.schemas.events import StoreReturn
from tillsync.schemas.settings import Settings
from tillsync.schemas.sitoo import Order
from tillsync.streams import topics
from tillsync.streams.returns.blind import fits
from tillsync.streams.returns.plan import (
    CreditRow,
    credit_money,
    credit_rows,
    marker,
    plan_return,
)

Echo = Callable[[str], None]


class LinkRefused(Exception):
    """The link cannot be made; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class LinkChecked:
    credit: Order
    order: OrderReturns
    warnings: tuple[str, ...]  # the link is sent all the same


def blind_rows(credit: Order) -> list[CreditRow]:
    """The goods a blind return took back; refused for any other Sitoo order."""
    cid = credit.orderid
    if credit.creditorderid is not None:
        raise LinkRefused(
            f"Sitoo order {cid} returns Sitoo order {credit.creditorderid}: it is linked "
            "already, and the returns flow follows that link"
        )
    rows = credit_rows(credit, {})
    if not rows:
        raise LinkRefused(f"Sitoo order {cid} takes no goods back: it is no blind return")
    return rows


def check(credit: Order, order: OrderReturns | None, order_id: int) -> LinkChecked:
    """Refuse a link the returns flow could never carry out; warn of one it may hold."""
    cid = credit.orderid
    rows = blind_rows(credit)
    if order is None:
        raise LinkRefused(f"Shopify has no order {order_id} (give Shopify's numeric order id)")
    if order.marked(marker(cid)):
        raise LinkRefused(f"Shopify order {order.name} has the return of {cid} already")
    short = plan_return(rows, order, None, "").short
    if order.cancelled or short:
        left = "it is cancelled" if order.cancelled else f"these units are not: {short}"
        raise LinkRefused(
            f"Shopify order {order.name} cannot take the return of {cid} back: every "
            f"returned unit must be fulfilled and not returned yet, and {left}"
        )
    warnings: list[str] = []
    if not fits(rows, credit_money(credit).value, order):
        warnings.append(
            f"the return is worth {credit_money(credit).value}, more than order {order.name} "
            f"has left to refund ({order.received - order.refunded}): its money will be held "
            "for finance"
        )
    return LinkChecked(credit, order, tuple(warnings))


async def link(settings: Settings, credit_order_id: int, order_id: int, echo: Echo) -> LinkChecked:
    async with (
        SitooClient(SitooConfig.from_settings(settings)) as sitoo,
        ShopifyClient(ShopifyConfig.from_settings(settings)) as shopify,
    ):
        echo(f"reading Sitoo order {credit_order_id} and Shopify order {order_id}...")
        credit = await sitoo.get_order(credit_order_id)
        checked = check(credit, await shopify.order_returns(order_id), order_id)
    await send(settings, StoreReturn(credit_order_id=credit_order_id, shopify_order_id=order_id))
    return checked


async def dismiss(settings: Settings, credit_order_id: int, echo: Echo) -> Order:
    """Take a blind return out of the queue: staff refunded or returned it by hand."""
    async with SitooClient(SitooConfig.from_settings(settings)) as sitoo:
        echo(f"reading Sitoo order {credit_order_id}...")
        credit = await sitoo.get_order(credit_order_id)
    blind_rows(credit)
    await send(settings, StoreReturn(credit_order_id=credit_order_id, settled_by_hand=True))
    return credit


async def send(settings: Settings, record: StoreReturn) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(
            topics.SITOO_RETURNS.name(settings.app_id),
            key=str(record.credit_order_id).encode(),
            value=record.model_dump_json().encode(),
        )
    finally:
        await producer.stop()
