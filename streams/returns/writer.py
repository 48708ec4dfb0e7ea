"""Store returns to Shopify: a Sitoo credit order becomes one Shopify return, exactly once.

The ``store-returns`` agent takes ``StoreReturn`` records (``sitoo.returns``, keyed by the
Sitoo order returned, so one order's returns share a partition and take turns) into a backlog; the
writer task (``command_writer.py``) carries each out when Shopify and Sitoo answer. A run reads
both platforms and does what is still owed, so a repeat, a replay or a crash midway finds it:

1. the credit order and its original in Sitoo; only an original tillsync made of a Shopify
   fulfilment order (``fo-…``) is an online order's. A till sale's return is Sitoo's alone
   (its stock flows as any stock change). A credit order linked to nothing is a blind return
   (``blind.py``): linked to the one online order of the customer's email that fits, or to the
   order staff name (``tillsync returns link``); until then it waits in the ``blind-returns``
   queue, an exception for store operations.
2. the order's returns in Shopify. None carries the credit order's marker: when the customer
   asked online for a return of exactly these units (REQUESTED, or OPEN and not tillsync's),
   the goods came to a till instead of the post, and that return is taken (approved if still a
   request; the table names the credit order that took it); else a return of its rows is made
   (``returnCreate``), the marker in each line's note. One does: its units per SKU must be the
   credit order's (compared before any write), else an exception and no write.
3. what is left to dispose: restocked at the store where Sitoo took the goods back when they
   are resellable and the store is mapped, else not restocked. Sitoo's own return transaction
   has the units back in its stock already, and the positions there hold them back from
   Shopify (the ledger names the return's delivery): told per delivery (``ReturnRestock``)
   expected before the dispose, done after it, or released when Shopify will not restock
   them, they are offered once. Shopify's restock adds to what it shows, so no more units are
   restocked at a store than its room there: Sitoo's available less the buffer, less what
   Shopify shows now (read under a lock of the store, so two returns never count the same
   room); the rest of a line is not restocked, and the stock flow offers those from Sitoo.
4. what is left to refund: the lines always (Shopify's books say returned and refunded);
   money only what the till did not pay back, once Shopify's suggested refund agrees with
   Sitoo's value within 0.01, else finance decides (an exception; the return stays open).
5. close the return once nothing is left to dispose or refund.

The ``store-returns`` table keeps per credit order when its return was asked of Shopify (so a
run that lost the answer reads again before it asks again) and that it is done (so a replay
reads nothing, and a blind return linked by hand is never linked again by its email).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping, MutableMapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from tillsync.connectors.shopify.client import UserErrorInfo
from tillsync.connectors.shopify.returns import (
    CustomerOrders,
    DisposalIn,
    OrderReturns,
    ReturnLineIn,
    ShopifyReturn,
    SuggestedRefund,
    SuggestedTransaction,
)
from tillsync.schemas.events import (
    ExceptionRecord,
    RestockState,
    ReturnRestock,
    StoreReturn,
)
from tillsync.schemas.locations import LocationMap
from tillsync.schemas.money import whole_units
from tillsync.schemas.returns import ReasonRule
from tillsync.schemas.sitoo import Order, OrderDelivery, WarehouseItem
from tillsync.streams import metrics
from tillsync.streams.metrics import (
    EXCEPTION_OWNERS,
    BlindLink,
    ExceptionType,
    RefundPath,
    ReturnOutcome,
)
from tillsync.streams.returns import blind
from tillsync.streams.returns.plan import (
    TOLERANCE,
    CreditRow,
    Fate,
    Returned,
    asked_online,
    credit_money,
    credit_rows,
    cut_to,
    disposals,
    fates,
    marker,
    plan_return,
    planned_restocks,
    restocked,
    returned_by_sku,
    returned_units,
    units_by_sku,
    within_room,
)
from tillsync.streams.stock.command_writer import Breakers, CommandWriter
from tillsync.streams.stock.pickup_handover import pickup_ref
from tillsync.streams.stock.refund_restocks import CREDIT_PREFIX

log = logging.getLogger("tillsync.returns")

# a return asked of Shopify with no answer is looked for this long before it is asked again:
# Shopify may show a mutation's result a moment after it answered (or failed to)
RETURN_SETTLE = 20.0
DONE = -1  # the table's value for a credit order finished


class ReturnsSitoo(Protocol):
    async def get_order(self, orderid: int) -> Order: ...

    async def order_deliveries(self, orderid: int) -> list[OrderDelivery]: ...

    async def warehouse_items_by_sku(
        self, warehouse_id: int, skus: Sequence[str]
    ) -> list[WarehouseItem]: ...


class ReturnsShopify(Protocol):
    async def order_returns(self, order_id: int) -> OrderReturns | None: ...

    async def orders_by_email(self, email: str) -> CustomerOrders: ...

    async def available(self, item_id: int, location_id: int) -> int | None: ...

    async def create_return(
        self, order_id: int, lines: Sequence[ReturnLineIn]
    ) -> tuple[ShopifyReturn | None, list[UserErrorInfo]]: ...

    async def dispose(self, disposals: Sequence[DisposalIn]) -> list[UserErrorInfo]: ...

    async def suggested_refund(
        self, return_id: int, lines: Mapping[int, int]
    ) -> SuggestedRefund | None: ...

    async def refund_return(
        self,
        return_id: int,
        lines: Mapping[int, int],
        transactions: Sequence[SuggestedTransaction],
        currency: str,
    ) -> tuple[int | None, list[UserErrorInfo]]: ...

    async def close_return(self, return_id: int) -> list[UserErrorInfo]: ...

    async def approve_return(
        self, return_id: int
    ) -> tuple[ShopifyReturn | None, list[UserErrorInfo]]: ...


class ReturnsOutput(Protocol):
    async def restocks(self, records: Sequence[ReturnRestock]) -> None:
        """Durably to the stock positions, before the next step is taken."""

    async def exception(self, record: ExceptionRecord) -> None: ...

    async def dead_letter(
        self, value: bytes, reason: str, headers: Mapping[str, bytes] | None = None
    ) -> None: ...


class StoreReturns(CommandWriter[StoreReturn]):
    SINK = metrics.Sink.STORE_RETURNS

    def __init__(
        self,
        sitoo: ReturnsSitoo,
        shopify: ReturnsShopify,
        output: ReturnsOutput,
        locations: LocationMap,
        reasons: Mapping[str, ReasonRule],
        table: MutableMapping[str, float],  # "c<credit>" -> when asked, or DONE
        items: Callable[[str], int | None],  # SKU -> Shopify inventory item (the SKU index)
        queue: MutableMapping[str, float],  # "c<credit>" -> since when a blind return waits
        *,
        breakers: Breakers | None = None,
        clock: Callable[[], float] = time.time,
        settle: float = RETURN_SETTLE,
    ) -> None:
        super().__init__(breakers=breakers, dead_letter=output.dead_letter)
        self.sitoo = sitoo
        self.shopify = shopify
        self.output = output
        self.locations = locations
        self.reasons = dict(reasons)
        self.table = table
        self.clock = clock
        self.settle = settle
        self.items = items
        self.queue = queue
        self._turns = Turns()
        self._orders = Turns()  # one Shopify order's returns planned by one run at a time
        self._stores = Turns()  # one store's room is read and restocked by one run at a time

    def decode(self, value: bytes) -> StoreReturn:
        command = StoreReturn.model_validate_json(value)
        if command.credit is not None:
            Order.model_validate(command.credit)  # refused here, dead-lettered at once
        return command

    def key_of(self, command: StoreReturn) -> str:
        # a credit order's repeats supersede one another; two credit orders of one original
        # are two keys (a newer command supersedes an older of its key, which would lose one)
        # and take turns on the original's lock instead
        return _key(command.credit_order_id)

    async def refused(self, command: StoreReturn, reason: str) -> None:
        await self._exception(
            ExceptionType.RETURN_STEP_FAILED,
            command.credit_order_id,
            f"the return of Sitoo credit order {command.credit_order_id} could not be told to "
            f"Shopify: {reason}",
        )
        self.table[_key(command.credit_order_id)] = DONE

    async def carry_out(self, command: StoreReturn) -> None:
        key = _key(command.credit_order_id)
        if self.table.get(key) == DONE:
            if command.shopify_order_id is not None:
                log.warning(
                    "credit order %d is finished: its link to Shopify order %d changes nothing",
                    command.credit_order_id,
                    command.shopify_order_id,
                )
            return
        if command.settled_by_hand:
            # only the blind return's queue entry: a linked return is the flow's to finish,
            # and the CLI refuses those
            log.info("blind return %d settled by hand: out of the queue", command.credit_order_id)
            self.table[key] = DONE
            self.queue.pop(key, None)
            metrics.returns_total.labels(outcome=ReturnOutcome.DISMISSED).inc()
            return
        credit = (
            Order.model_validate(command.credit)
            if command.credit is not None
            else await self.sitoo.get_order(command.credit_order_id)
        )
        # one original's returns one at a time, so that two credit orders of one line never
        # both plan its last returnable unit (they share a partition, so a worker)
        async with self._turns.of(command.original_order_id or -command.credit_order_id):
            outcome = await self._run(command, credit)
        if outcome not in (ReturnOutcome.RETURNED, ReturnOutcome.HELD, ReturnOutcome.FROM_SHOPIFY):
            # Shopify restocks none of it: Sitoo's units go to Shopify through the stock flow
            await self._tell(await self._returned(credit), set(), RestockState.RELEASED)
        if outcome is ReturnOutcome.BLIND:
            self.queue.setdefault(key, self.clock())
        else:
            self.table[key] = DONE
            self.queue.pop(key, None)
        metrics.returns_total.labels(outcome=outcome).inc()

    async def _run(self, command: StoreReturn, credit: Order) -> ReturnOutcome:
        cid = command.credit_order_id
        if (credit.externalid or "").startswith(CREDIT_PREFIX):
            return ReturnOutcome.FROM_SHOPIFY  # our own book of a Shopify refund: no return
        rows = credit_rows(credit, self.reasons)
        if credit.creditorderid is None:
            if not rows:
                return ReturnOutcome.NOT_OURS  # money alone, no goods came back
            link = await self._link(command, credit, rows)
            if isinstance(link, ReturnOutcome):
                return link
            async with self._orders.of(link.order_id):
                # a return refused before anything was written waits for a link again
                outcome = await self._return_on(
                    cid, link.order_id, credit.warehouseid, rows, credit, ReturnOutcome.BLIND
                )
            if link.how is not None and outcome is not ReturnOutcome.BLIND:
                metrics.returns_blind_linked.labels(how=link.how).inc()
            return outcome
        original = await self.sitoo.get_order(credit.creditorderid)
        ref = pickup_ref(original)
        if ref is None or not rows:
            return ReturnOutcome.NOT_OURS  # a till sale's, or nothing but money rows
        async with self._orders.of(ref.order_id):
            return await self._return_on(
                cid, ref.order_id, original.warehouseid, rows, credit, ReturnOutcome.REFUSED
            )

    async def _link(
        self, command: StoreReturn, credit: Order, rows: Sequence[CreditRow]
    ) -> _Link | ReturnOutcome:
        """The Shopify order a blind return returns: named by staff, linked before, or the
        one of the customer's orders that fits; else queued (``ReturnOutcome.BLIND``)."""
        cid = credit.orderid
        if command.shopify_order_id is not None:
            return _Link(command.shopify_order_id, BlindLink.HAND)
        found = await blind.search(self.shopify, credit, rows)
        mark = marker(cid)
        if found.linked is not None:
            how = None if found.linked.marked(mark) else BlindLink.AUTO
            return _Link(found.linked.order_id, how)
        if not (credit.email or "").strip():
            why = "it carries no email to find the customer's online orders by"
        elif not found.fitting:
            why = (
                "none of the online orders placed with its email has the units left to "
                "return and the money left to refund"
            )
        elif found.complete:
            why = f"several online orders placed with its email fit: {found.names}"
        else:
            why = (
                "its email placed more online orders than tillsync reads at once; of those "
                f"read, these fit: {found.names}"
            )
        await self._exception(
            ExceptionType.RETURN_BLIND,
            cid,
            f"Sitoo credit order {cid} takes goods back with no receipt (a blind return) and "
            f"{why}. Link it to its online order: tillsync returns link {cid} ORDER",
        )
        return ReturnOutcome.BLIND

    async def _return_on(
        self,
        cid: int,
        order_id: int,
        store: int | None,
        rows: Sequence[CreditRow],
        credit: Order,
        unwritten: ReturnOutcome,
    ) -> ReturnOutcome:
        """The credit order's return on Shopify order ``order_id`` (``store``: the Sitoo
        warehouse whose fulfilments are returned first). ``unwritten``: the outcome when
        nothing could be written."""
        state = await self._read(order_id)
        if state is None:
            await self._exception(
                ExceptionType.RETURN_REFUSED,
                cid,
                f"Sitoo credit order {cid} returns Shopify order {order_id}, which Shopify "
                "does not have",
            )
            return unwritten
        if state.truncated:
            await self._exception(
                ExceptionType.RETURN_STEP_FAILED,
                cid,
                f"Shopify order {state.name} has more returns, or lines on one, than tillsync "
                f"reads at once: return the goods of Sitoo credit order {cid} by hand",
            )
            return unwritten
        mark = marker(cid)
        ours = state.marked(mark) or [r for r in state.returns if self._taken_by(r.id) == cid]
        if not ours:
            online = asked_online(state, rows, lambda rid: self._taken_by(rid) is not None)
            found = (
                await self._take_online(cid, online, state)
                if online is not None
                else await self._create(cid, order_id, rows, state, store)
            )
            if isinstance(found, ReturnOutcome):
                return unwritten
            ours = [found]
        if returned_by_sku(ours) != units_by_sku(rows):
            await self._exception(
                ExceptionType.RETURN_LINES_MISMATCH,
                cid,
                f"Sitoo credit order {cid} returns {dict(units_by_sku(rows))} of Shopify "
                f"order {state.name}, whose return(s) marked for it hold "
                f"{dict(returned_by_sku(ours))}: nothing more was written",
            )
            return ReturnOutcome.REFUSED
        outcome = ReturnOutcome.RETURNED
        for ret in ours:
            step = await self._finish(cid, ret, rows, state, credit)
            if step is not ReturnOutcome.RETURNED:
                outcome = step
        return outcome

    async def _read(self, order_id: int) -> OrderReturns | None:
        return await self.shopify.order_returns(order_id)

    async def _create(
        self,
        cid: int,
        order_id: int,
        rows: Sequence[CreditRow],
        state: OrderReturns,
        store: int | None,
    ) -> ShopifyReturn | ReturnOutcome:
        key = _key(cid)
        asked = self.table.get(key)
        if asked is not None and asked != DONE:
            # asked before with no answer kept: Shopify may show it a moment late
            wait = asked + self.settle - self.clock()
            if wait > 0:
                await asyncio.sleep(wait)
            again = await self._read(order_id)
            found = again.marked(marker(cid)) if again is not None else []
            if found:
                return found[0]
            state = again if again is not None else state
        at = self.locations.by_warehouse(store or 0)
        plan = plan_return(
            rows, state, at.shopify_location_id if at is not None else None, marker(cid)
        )
        if plan.short or not plan.lines:
            await self._exception(
                ExceptionType.RETURN_NOT_RETURNABLE,
                cid,
                f"Sitoo credit order {cid} returns units Shopify order {state.name} has no "
                f"fulfilled units left to return for: {plan.short or dict(units_by_sku(rows))}",
            )
            return ReturnOutcome.REFUSED
        self.table[key] = self.clock()
        made, errors = await self.shopify.create_return(order_id, plan.lines)
        if errors or made is None:
            await self._exception(
                ExceptionType.RETURN_REFUSED,
                cid,
                f"Shopify refused the return of Sitoo credit order {cid} on order "
                f"{state.name}: {_said(errors)}",
            )
            return ReturnOutcome.REFUSED
        log.info("credit order %d: Shopify return %d on order %s", cid, made.id, state.name)
        return made

    def _taken_by(self, return_id: int) -> int | None:
        """The credit order a return the customer asked for online was taken for."""
        cid = self.table.get(_online_key(return_id))
        return int(cid) if cid is not None else None

    async def _take_online(
        self, cid: int, ret: ShopifyReturn, state: OrderReturns
    ) -> ShopifyReturn | ReturnOutcome:
        """The goods of a return the customer asked for online came to a till: that return
        is this credit order's (claimed in the table first, so a run that dies midway finds it
        again), approved when still a request."""
        self.table[_online_key(ret.id)] = float(cid)
        if ret.status != "REQUESTED":
            return ret
        approved, errors = await self.shopify.approve_return(ret.id)
        if approved is None:
            again = await self._read(state.order_id)
            approved = next(
                (
                    r
                    for r in (again.returns if again else ())
                    if r.id == ret.id and r.status == "OPEN"
                ),
                None,
            )
        if approved is None:
            await self._exception(
                ExceptionType.RETURN_REFUSED,
                cid,
                f"Sitoo credit order {cid} brings back the goods of return {ret.id} the "
                f"customer asked for online on order {state.name}; Shopify refused to approve "
                f"it: {_said(errors)}",
            )
            return ReturnOutcome.REFUSED
        log.info("credit order %d: the online return %d of %s approved", cid, ret.id, state.name)
        return approved

    async def _finish(
        self,
        cid: int,
        ret: ShopifyReturn,
        rows: Sequence[CreditRow],
        state: OrderReturns,
        credit: Order,
    ) -> ReturnOutcome:
        """Dispose, refund and close what the return still owes (``ret`` as read or made)."""
        location_of = {
            loc.sitoo_warehouse_id: loc.shopify_location_id for loc in self.locations.locations
        }
        fate = fates(ret, rows, location_of)
        plan = disposals(ret, fate)
        back = await self._returned(credit)
        done = {(u.sku, u.location_id) for u in restocked(ret)}
        if plan:
            stores = sorted({d.restock_at for d in plan if d.restock_at is not None})
            async with self._stores.all_of(stores):
                plan = within_room(plan, ret, fate, await self._room(plan, ret, fate))
                restocking = {(u.sku, u.location_id) for u in planned_restocks(plan, ret, fate)}
                await self._tell(back, restocking, RestockState.EXPECTED)
                errors = await self.shopify.dispose(plan)
            if errors:
                await self._tell(back, set(), RestockState.RELEASED)
                await self._exception(
                    ExceptionType.RETURN_REFUSED,
                    cid,
                    f"Shopify refused to dispose of the return of Sitoo credit order {cid} on "
                    f"order {state.name}: {_said(errors)}",
                )
                return ReturnOutcome.REFUSED
            done |= restocking
            for row in rows:  # told with the disposal, once
                if not row.reason.resellable and row.warehouse_id in location_of:
                    await self._exception(
                        ExceptionType.RETURN_UNSELLABLE_IN_STOCK,
                        cid,
                        f"Sitoo credit order {cid} took back {row.units} x {row.sku} as "
                        f"'{row.reason.shopify.value}' into the store's sellable stock "
                        f"(warehouse {row.warehouse_id}), so they are on sale online: move "
                        "them out of it",
                    )
        outcome = ReturnOutcome.RETURNED
        to_refund = {line.id: line.refundable for line in ret.lines if line.refundable > 0}
        if to_refund:
            outcome = await self._refund(cid, ret, to_refund, state, credit)
        # Shopify's own restock has the units now (or never will): the positions let go
        await self._tell(back, done, RestockState.DONE)
        if outcome is ReturnOutcome.RETURNED and ret.status == "OPEN":
            # disposed and refunded in full by now, this run's calls or earlier ones
            errors = await self.shopify.close_return(ret.id)
            if errors:
                log.warning("credit order %d: return %d not closed: %s", cid, ret.id, _said(errors))
        return outcome

    async def _refund(
        self,
        cid: int,
        ret: ShopifyReturn,
        lines: Mapping[int, int],
        state: OrderReturns,
        credit: Order,
    ) -> ReturnOutcome:
        money = credit_money(credit)
        owed = money.owed_in_shopify
        transactions: list[SuggestedTransaction] = []
        if owed > TOLERANCE:
            suggested = await self.shopify.suggested_refund(ret.id, lines)
            if (
                suggested is None
                or abs(suggested.amount - money.value) > TOLERANCE
                or owed > suggested.maximum + TOLERANCE
            ):
                shown = "none" if suggested is None else f"{suggested.amount} {suggested.currency}"
                await self._exception(
                    ExceptionType.RETURN_REFUND_MISMATCH,
                    cid,
                    f"Sitoo credit order {cid} values the goods returned on order {state.name} "
                    f"at {money.value}, exchanged {money.settled_by_exchange} for other goods "
                    f"and paid back {money.paid_back_at_till} at the till; Shopify "
                    f"suggests refunding {shown}. Nothing was refunded: refund the customer "
                    f"{owed} in Shopify by hand, or correct Sitoo",
                )
                return ReturnOutcome.HELD
            transactions = cut_to(suggested.transactions, owed)
        made, errors = await self.shopify.refund_return(ret.id, lines, transactions, state.currency)
        if errors or made is None:
            await self._exception(
                ExceptionType.RETURN_REFUND_REFUSED,
                cid,
                f"Shopify refused to refund the return of Sitoo credit order {cid} on order "
                f"{state.name} ({owed} owed in Shopify): {_said(errors)}",
            )
            return ReturnOutcome.HELD
        paid = sum((t.amount for t in transactions), Decimal("0.00"))
        if paid:
            metrics.returns_refunded.labels(path=RefundPath.SHOPIFY).inc(float(paid))
        if money.paid_back_at_till:
            metrics.returns_refunded.labels(path=RefundPath.OUTSIDE_SHOPIFY).inc(
                float(money.paid_back_at_till)
            )
        if money.settled_by_exchange:
            metrics.returns_refunded.labels(path=RefundPath.EXCHANGE).inc(
                float(money.settled_by_exchange)
            )
        return ReturnOutcome.RETURNED

    async def _room(
        self, plan: Sequence[DisposalIn], ret: ShopifyReturn, fate: Mapping[int, Fate]
    ) -> dict[tuple[str, int], int]:
        """Per (SKU, location) the plan restocks at: how many units Shopify may add there and
        show no more than Sitoo's available less the buffer (Sitoo has the returned units
        already). A SKU the index maps to no Shopify item gets no room: the stock flow offers
        its units."""
        room: dict[tuple[str, int], int] = {}
        wanted = planned_restocks(plan, ret, fate)
        for location_id in sorted({u.location_id for u in wanted}):
            loc = self.locations.by_shopify(location_id)
            if loc is None:
                continue
            skus = sorted({u.sku for u in wanted if u.location_id == location_id})
            items = await self.sitoo.warehouse_items_by_sku(loc.sitoo_warehouse_id, skus)
            in_sitoo = {
                i.sku: whole_units(i.decimaltotal) - whole_units(i.decimalreserved) for i in items
            }
            for sku in skus:
                item = self.items(sku)
                if item is None:
                    continue
                shown = await self.shopify.available(item, location_id) or 0
                most = in_sitoo.get(sku, 0) - loc.buffer_for(sku)
                room[(sku, location_id)] = max(0, most - shown)
        return room

    async def _returned(self, credit: Order) -> list[Returned]:
        """What each delivery of the credit order brought back, per SKU, at mapped stores."""
        deliveries = await self.sitoo.order_deliveries(credit.orderid)
        location_of = {
            loc.sitoo_warehouse_id: loc.shopify_location_id for loc in self.locations.locations
        }
        return returned_units(credit, deliveries, location_of)

    async def _tell(
        self, back: Sequence[Returned], restocked_at: set[tuple[str, int]], state: RestockState
    ) -> None:
        """Each return's fate to its positions: ``state`` for the (SKU, location) pairs in
        ``restocked_at`` (Shopify restocks those itself), released for the rest (expected
        says nothing of the rest yet)."""
        at = self.clock()
        records = []
        for r in back:
            mine = (r.sku, r.location_id) in restocked_at
            if state is RestockState.EXPECTED and not mine:
                continue
            records.append(
                ReturnRestock(
                    sku=r.sku,
                    location_id=r.location_id,
                    delivery_id=r.delivery_id,
                    state=state if mine else RestockState.RELEASED,
                    at=at,
                )
            )
        if records:
            await self.output.restocks(records)

    async def _exception(self, kind: ExceptionType, cid: int, message: str) -> None:
        await self.output.exception(
            ExceptionRecord(
                type=kind,
                owner=EXCEPTION_OWNERS[kind],
                key=f"sitoo-credit-order-{cid}",
                message=message,
                at=self.clock(),
            )
        )


@dataclass(frozen=True, slots=True)
class _Link:
    """The Shopify order a blind return is linked to, and how (None: linked before)."""

    order_id: int
    how: BlindLink | None


class Turns:
    """One lock per key, kept only while a run holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[int, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def all_of(self, keys: Sequence[int]) -> AsyncIterator[None]:
        """Every key's lock, taken in order (two runs never wait on each other's)."""
        async with AsyncExitStack() as stack:
            for key in sorted(set(keys)):
                await stack.enter_async_context(self.of(key))
            yield

    @asynccontextmanager
    async def of(self, key: int) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


def _key(credit_order_id: int) -> str:
    return f"c{credit_order_id}"


def _online_key(return_id: int) -> str:
    return f"r{return_id}"  # -> the credit order that took a return asked for online


def _said(errors: Sequence[UserErrorInfo]) -> str:
    return "; ".join(e.message for e in errors) or "no answer"
