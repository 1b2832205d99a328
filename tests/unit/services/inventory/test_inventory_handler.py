"""InventoryHandler against a fake inventory: all lines or none, held stock released or committed
exactly once, a redelivered command changing nothing."""

from __future__ import annotations

from orderflow.domain import messages as m
from orderflow.ports.inventory import COMMITTED, HELD, RELEASED, Reservation
from orderflow.services.inventory.handler import InventoryHandler
from orderflow.services.runtime.handler import PermanentError
from tests.unit.services.fakes import FakeStorage

handler = InventoryHandler()


async def apply(storage: FakeStorage, *messages: m.Message) -> list[object]:
    async with storage.write() as tx:
        return list(await handler.apply(tx, [(msg, None) for msg in messages]))


def stocked() -> FakeStorage:
    storage = FakeStorage()
    storage.add_stock("MUG", east=5, west=5)
    storage.add_stock("TEE", east=1, west=1)
    return storage


async def test_one_short_line_holds_nothing_of_the_others() -> None:
    storage = stocked()
    lines = (m.Line("MUG", 3), m.Line("TEE", 3))  # TEE: 2 in all
    [result] = await apply(storage, m.ReserveStock("o-1", lines))
    assert result == [m.StockRejected("o-1", "out of stock: TEE")]
    assert (storage.reserved("MUG"), storage.reserved("TEE")) == (0, 0)
    assert storage.state.reservations == {}


async def test_a_line_is_split_over_warehouses_in_order_of_preference() -> None:
    storage = stocked()
    [result] = await apply(storage, m.ReserveStock("o-1", (m.Line("MUG", 7),)))
    assert result == [m.StockReserved("o-1")]
    assert storage.state.reservations["o-1"] == [
        Reservation("MUG", "east", 5, HELD),
        Reservation("MUG", "west", 2, HELD),
    ]
    assert storage.state.stock["MUG", "east"] == [5, 5]
    assert storage.state.stock["MUG", "west"] == [5, 2]


async def test_orders_of_one_batch_see_each_others_holds() -> None:
    storage = stocked()
    results = await apply(
        storage,
        m.ReserveStock("first", (m.Line("TEE", 2),)),
        m.ReserveStock("second", (m.Line("TEE", 1), m.Line("MUG", 1))),
        m.ReserveStock("third", (m.Line("MUG", 9),)),
    )
    assert results == [
        [m.StockReserved("first")],
        [m.StockRejected("second", "out of stock: TEE")],
        [m.StockReserved("third")],
    ]
    assert (storage.reserved("TEE"), storage.reserved("MUG")) == (2, 9)
    assert set(storage.state.reservations) == {"first", "third"}


async def test_a_redelivered_reservation_holds_nothing_more() -> None:
    storage = stocked()
    reserve = m.ReserveStock("o-1", (m.Line("MUG", 2),))
    assert await apply(storage, reserve) == [[m.StockReserved("o-1")]]
    assert await apply(storage, reserve) == [[m.StockReserved("o-1")]]
    assert storage.reserved("MUG") == 2
    assert len(storage.state.reservations["o-1"]) == 1


async def test_release_puts_held_stock_back_once() -> None:
    storage = stocked()
    await apply(storage, m.ReserveStock("o-1", (m.Line("MUG", 7), m.Line("TEE", 1))))
    assert await apply(storage, m.ReleaseStock("o-1")) == [[m.StockReleased("o-1")]]
    assert (storage.free("MUG"), storage.free("TEE")) == (10, 2)
    assert {r.status for r in storage.state.reservations["o-1"]} == {RELEASED}
    # Released already: a second release confirms nothing and moves nothing.
    assert await apply(storage, m.ReleaseStock("o-1")) == [[]]
    assert (storage.free("MUG"), storage.reserved("MUG")) == (10, 0)


async def test_releasing_what_was_never_held_is_a_no_op() -> None:
    storage = stocked()
    assert await apply(storage, m.ReleaseStock("never-reserved")) == [[]]
    assert storage.free("MUG") == 10


async def test_commit_ships_the_goods_and_a_later_release_brings_them_back() -> None:
    storage = stocked()
    await apply(storage, m.ReserveStock("o-1", (m.Line("MUG", 3),)))
    assert await apply(storage, m.CommitStock("o-1")) == [[m.StockCommitted("o-1")]]
    assert (storage.on_hand("MUG"), storage.reserved("MUG")) == (7, 0)
    assert storage.state.reservations["o-1"] == [Reservation("MUG", "east", 3, COMMITTED)]
    await apply(storage, m.CommitStock("o-1"))  # redelivered: nothing leaves twice
    assert storage.on_hand("MUG") == 7
    await apply(storage, m.ReleaseStock("o-1"))
    assert (storage.on_hand("MUG"), storage.reserved("MUG")) == (10, 0)


async def test_a_message_inventory_does_not_handle_is_a_permanent_error() -> None:
    [result] = await apply(stocked(), m.StockReserved("o-1"))
    assert isinstance(result, PermanentError)


async def test_an_order_whose_stock_was_released_reserves_again() -> None:
    """A failed order an admin restarts: its old hold went back, the new command holds anew."""
    storage = stocked()
    reserve = m.ReserveStock("o-1", (m.Line("MUG", 2),))
    await apply(storage, reserve)
    await apply(storage, m.ReleaseStock("o-1"))
    assert storage.reserved("MUG") == 0

    [result] = await apply(storage, reserve)

    assert result == [m.StockReserved("o-1")]
    assert storage.reserved("MUG") == 2
    assert storage.state.reservations["o-1"] == [Reservation("MUG", "east", 2, HELD)]
