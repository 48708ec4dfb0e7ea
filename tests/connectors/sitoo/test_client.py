"""SitooClient against the simulator over real HTTP: paging, 429, 5xx, idempotent creates."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tillsync.connectors.sitoo.client import SitooClient, SitooError, retry_after_seconds
from tillsync.schemas.sitoo import OrderIn, OrderItemIn, UserIn, WarehouseTransactionIn
from tillsync_sim.sitoo import SitooSimulator

from .conftest import StartSim, make_settings


@pytest.fixture
async def client(sim: SitooSimulator) -> AsyncIterator[SitooClient]:
    async with SitooClient(sim.client_settings(), backoff_base=0.01, page_size=2) as c:
        yield c


async def test_paging_iterator_reports_progress(client: SitooClient) -> None:
    progress: list[tuple[int, int]] = []
    rows = [
        r
        async for r in client.iter_warehouse_items(1, progress=lambda n, t: progress.append((n, t)))
    ]
    assert [r.sku for r in rows] == [f"SKU-{i:04d}" for i in range(1, 6)]
    assert progress == [(2, 5), (4, 5), (5, 5)]
    assert client.stats.calls["ok"] == 3
    assert all(r.decimalavailable == r.decimaltotal for r in rows)
    stores = await client.list_stores()
    assert [s.storeid for s in stores] == [1, 2]
    by_sku = await client.get_warehouse_items(1, ["SKU-0002", "NOPE"])
    assert set(by_sku) == {"SKU-0002"}


async def test_transactions_since_id_follow_the_cursor(
    sim: SitooSimulator, client: SitooClient
) -> None:
    first = len(sim.state.transactions) + 1
    for _ in range(5):
        sim.state.move_in(1, "SKU-0003", 1)
    txs = [t async for t in client.iter_warehouse_transactions(first)]
    assert [t.warehousetransactionid for t in txs] == list(range(first, first + 5))
    assert all(t.items[0].decimalquantity == 1 for t in txs)
    assert [t async for t in client.iter_warehouse_transactions(first + 5)] == []


async def test_429_is_honoured(sim: SitooSimulator) -> None:
    waits: list[tuple[str, float]] = []
    calls: list[str] = []
    sim.set_faults(throttle_for_s=0.3)

    def on_wait(*, platform: str, reason: str, seconds: float) -> None:
        waits.append((reason, seconds))

    def on_call(*, platform: str, outcome: str, seconds: float) -> None:
        assert platform == "sitoo"
        calls.append(outcome)

    async with SitooClient(sim.client_settings(), on_wait=on_wait, on_call=on_call) as c:
        stores = await c.list_stores()
    assert len(stores) == 2
    assert ("retry_after", 1.0) in waits  # Retry-After: 1 (whole seconds, rounded up)
    assert calls == ["throttled", "ok"]
    assert c.stats.throttled == 1 and c.stats.throttle_wait_seconds == 1.0


async def test_5xx_is_retried_with_backoff(sim: SitooSimulator, client: SitooClient) -> None:
    sim.set_faults(error_rate=0.5)
    rows = [r async for r in client.iter_warehouse_items(1)]
    assert len(rows) == 5
    assert client.stats.calls["server_error"] >= 1
    assert client.stats.retries == client.stats.calls["server_error"]
    sim.set_faults(error_rate=1.0)
    with pytest.raises(SitooError) as err:
        await client.list_stores()
    assert err.value.statuscode == 500 and err.value.retryable


async def test_errors_are_typed(client: SitooClient) -> None:
    with pytest.raises(SitooError) as err:
        await client.get_order(424242)
    assert err.value.statuscode == 404 and "not found" in err.value.errortext
    assert not err.value.retryable


async def test_wrong_password_is_401(start_sim: StartSim) -> None:
    sim = await start_sim()
    bad = make_settings(sitoo_base_url=sim.base_url, sitoo_api_password="nope")
    async with SitooClient(bad) as c:
        with pytest.raises(SitooError) as err:
            await c.list_stores()
    assert err.value.statuscode == 401


async def test_create_order_is_idempotent_by_externalid(
    sim: SitooSimulator, client: SitooClient
) -> None:
    order = OrderIn(
        externalid="SHOP-5001",
        paymentstateid=20,
        warehouseid=1,
        email="a@example.com",
        orderitems=[
            OrderItemIn(
                productname="P", sku="SKU-0001", quantity=1, moneyrowprice="125.00", vatvalue=25
            )
        ],
    )
    first = await client.create_order(order)
    again = await client.create_order(order)
    assert first == again
    fetched = await client.get_order(first)
    assert fetched.externalid == "SHOP-5001" and str(fetched.moneytotal_gross_all) == "125.00"
    assert sim.state.stock[1]["SKU-0001"].reserved == 1
    await client.add_order_log_item(first, 900)
    await client.close_order(first)
    assert (await client.get_order(first)).orderstateid == 10
    deliveries = await client.get_order_deliveries(first)
    assert deliveries[0].orderdeliveryitems[0].quantity == 1
    logs = await client.get_order_log_items(first)
    assert [item.orderlogtypeid for item in logs] == [0, 900]
    found = [o.orderid async for o in client.iter_orders(orderidfrom=first, orderstate=10)]
    assert found == [first]


async def test_create_order_after_lost_answer_does_not_duplicate(
    sim: SitooSimulator, client: SitooClient
) -> None:
    # the first POST is processed but its answer is lost (500 after the write)
    original = sim.state.add_order
    calls = {"n": 0}

    def add_then_fail(body: Any, *, event: bool = True) -> Any:
        rec = original(body, event=event)
        calls["n"] += 1
        if calls["n"] == 1:
            from tillsync_sim.sitoo import SimError

            raise SimError(500, "Internal Server Error.")
        return rec

    sim.state.add_order = add_then_fail  # type: ignore[method-assign]
    orderid = await client.create_order(
        OrderIn(
            externalid="SHOP-LOST",
            warehouseid=1,
            orderitems=[OrderItemIn(productname="P", sku="SKU-0001", quantity=1)],
        )
    )
    assert calls["n"] == 1
    assert [o.orderid async for o in client.iter_orders(externalid="SHOP-LOST")] == [orderid]


async def test_users_products_transactions_and_zreports(
    sim: SitooSimulator, client: SitooClient
) -> None:
    uid = await client.create_user(UserIn(email="Eva@Example.com", namefirst="Eva"))
    assert await client.create_user(UserIn(email="eva@example.com")) == uid
    assert [u.userid for u in await client.find_users_by_email("eva@example.com")] == [uid]

    ids = await client.create_products([{"sku": "NEW-1", "title": "New", "moneyprice": "10.00"}])
    assert await client.create_products([{"sku": "NEW-1", "title": "New"}]) == ids
    upserted = await client.upsert_products(
        [{"sku": "NEW-1", "moneyprice": "12.00"}, {"sku": "NEW-2", "title": "Two"}]
    )
    assert upserted["NEW-1"] == ids["NEW-1"] and "NEW-2" in upserted
    assert str((await client.get_product(ids["NEW-1"])).moneyprice) == "12.00"

    txs = [
        WarehouseTransactionIn.model_validate(
            {
                "warehouseid": 1,
                "transactiontype": 10,
                "externalid": f"IN-{i}",
                "items": [{"sku": "SKU-0004", "decimalquantity": "1.000"}],
            }
        )
        for i in range(1200)
    ]
    results = await client.add_warehouse_transactions(txs)
    assert len(results) == 1200 and all(r.ok for r in results)
    assert client.stats.calls["ok"] >= 2  # two POSTs of at most 1000

    sim.state.till_sale(1, [{"sku": "SKU-0005", "quantity": 2}])
    sim.state.close_day(1)
    reports = [z async for z in client.iter_pos_zreports()]
    assert len(reports) == 1 and reports[0].numsales == 1
    registers = await client.list_cash_registers()
    by_register = [z async for z in client.iter_register_zreports(registers[0].registerid)]
    assert [z.zreportid for z in by_register] == [reports[0].zreportid]


def test_retry_after_parsing() -> None:
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
