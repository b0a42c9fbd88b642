"""The asyncio consumer's inbox: runs go to waiting slots in order, and a wake-up meant
for the slots holding an outcome reaches them and no other slot."""

from __future__ import annotations

import asyncio

from executors.inbox import Inbox, Signal


async def settle() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


def test_a_run_goes_straight_to_the_first_waiting_slot() -> None:
    async def scenario() -> None:
        inbox: Inbox[str] = Inbox()
        first = asyncio.ensure_future(inbox.get())
        second = asyncio.ensure_future(inbox.get())
        await settle()
        assert inbox.waiting == 2
        inbox.put("run-1")
        assert inbox.waiting == 1  # handed over at once, before the slot wakes
        assert len(inbox) == 0
        inbox.put("run-2")
        inbox.put("run-3")  # nobody waits for this one
        assert await first == "run-1"
        assert await second == "run-2"
        assert inbox.get_nowait() == "run-3"
        assert inbox.get_nowait() is None

    asyncio.run(asyncio.wait_for(scenario(), 5))


def test_releasing_holders_wakes_only_them_however_the_others_are_scheduled() -> None:
    async def scenario() -> None:
        inbox: Inbox[str] = Inbox()
        idle = [asyncio.ensure_future(inbox.get()) for _ in range(3)]
        holder = asyncio.ensure_future(inbox.get(holding=True))
        await settle()
        inbox.release_holders()
        await settle()
        assert holder.result() is Signal.SEND_HELD
        assert not any(task.done() for task in idle)
        assert inbox.waiting == 3
        inbox.put("run")
        await settle()
        assert [task.done() for task in idle] == [True, False, False]
        for task in idle[1:]:
            task.cancel()
        await settle()
        assert inbox.waiting == 0  # cancelled waiters are not counted

    asyncio.run(asyncio.wait_for(scenario(), 5))


def test_closing_wakes_every_slot_and_returns_the_runs_no_slot_took() -> None:
    async def scenario() -> None:
        inbox: Inbox[str] = Inbox()
        waiting = asyncio.ensure_future(inbox.get(holding=True))
        await settle()
        assert inbox.close() == []
        assert await waiting is Signal.CLOSED
        assert await inbox.get() is Signal.CLOSED  # a slot that comes back later

        full: Inbox[str] = Inbox()
        full.put("a")
        full.put("b")
        assert full.close() == ["a", "b"]
        assert await full.get() is Signal.CLOSED

    asyncio.run(asyncio.wait_for(scenario(), 5))


def test_a_run_handed_to_a_slot_cancelled_before_it_woke_goes_to_the_next() -> None:
    async def scenario() -> None:
        inbox: Inbox[str] = Inbox()
        doomed = asyncio.ensure_future(inbox.get())
        await settle()
        inbox.put("run")  # handed over: its slot has not run since
        doomed.cancel()
        await settle()
        assert doomed.cancelled()
        assert inbox.waiting == 0
        assert await inbox.get() == "run"  # kept, for whoever asks next

    asyncio.run(asyncio.wait_for(scenario(), 5))
