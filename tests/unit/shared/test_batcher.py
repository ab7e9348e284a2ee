"""Group commit (shared.store._batch.Batcher): calls made while a command is in flight go
together into the next one, each caller gets its own result or error, and no call is left
waiting."""

from __future__ import annotations

import asyncio

import pytest

from shared.store._batch import Batcher


class Recorder:
    """A ``run`` that records the batches it got and holds each until released."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.release = asyncio.Event()
        self.release.set()

    async def run(self, items: list[int]) -> list[int | Exception]:
        self.batches.append(list(items))
        await self.release.wait()
        return [ValueError(f"odd {i}") if i % 2 else i * 10 for i in items]


async def test_a_lone_call_goes_at_once_and_calls_during_a_command_go_together() -> None:
    recorder = Recorder()
    batcher: Batcher[int, int] = Batcher(recorder.run)
    recorder.release.clear()
    first = asyncio.create_task(batcher.submit(0))
    await asyncio.sleep(0.01)
    assert recorder.batches == [[0]]  # nothing else was waiting: sent alone
    later = [asyncio.create_task(batcher.submit(i)) for i in (2, 4, 6)]
    await asyncio.sleep(0.01)
    assert recorder.batches == [[0]]  # they wait for the command in flight
    recorder.release.set()
    assert await first == 0
    assert [await t for t in later] == [20, 40, 60]
    assert recorder.batches == [[0], [2, 4, 6]]


async def test_each_caller_gets_its_own_error_only() -> None:
    recorder = Recorder()
    batcher: Batcher[int, int] = Batcher(recorder.run)
    results = await asyncio.gather(*(batcher.submit(i) for i in range(4)), return_exceptions=True)
    assert results[0] == 0 and results[2] == 20
    assert isinstance(results[1], ValueError) and str(results[1]) == "odd 1"
    assert isinstance(results[3], ValueError) and str(results[3]) == "odd 3"


async def test_a_failed_command_fails_every_call_in_it_and_the_next_call_is_sent() -> None:
    calls = 0

    async def run(items: list[int]) -> list[int | Exception]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("away")
        return list(items)

    batcher: Batcher[int, int] = Batcher(run)
    results = await asyncio.gather(*(batcher.submit(i) for i in range(3)), return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)
    assert await batcher.submit(7) == 7


async def test_a_call_right_after_a_command_finished_is_not_left_waiting() -> None:
    # The sender that just emptied the queue must not count as running for the next call.
    recorder = Recorder()
    batcher: Batcher[int, int] = Batcher(recorder.run)
    for i in range(50):
        assert await asyncio.wait_for(batcher.submit(2 * i), timeout=1) == 20 * i


async def test_a_caller_that_stops_waiting_does_not_stop_the_others() -> None:
    recorder = Recorder()
    batcher: Batcher[int, int] = Batcher(recorder.run)
    recorder.release.clear()
    blocker = asyncio.create_task(batcher.submit(0))
    await asyncio.sleep(0.01)
    gone = asyncio.create_task(batcher.submit(2))
    kept = asyncio.create_task(batcher.submit(4))
    await asyncio.sleep(0.01)
    gone.cancel()
    recorder.release.set()
    assert await kept == 40 and await blocker == 0
    with pytest.raises(asyncio.CancelledError):
        await gone


async def test_limit_and_parallel_runs() -> None:
    recorder = Recorder()
    batcher: Batcher[int, int] = Batcher(recorder.run, limit=2, runs=2)
    recorder.release.clear()
    tasks = [asyncio.create_task(batcher.submit(2 * i)) for i in range(5)]
    await asyncio.sleep(0.01)
    assert len(recorder.batches) == 2  # two commands in flight at once
    recorder.release.set()
    assert [await t for t in tasks] == [0, 20, 40, 60, 80]
    assert all(len(b) <= 2 for b in recorder.batches)
    assert sorted(i for b in recorder.batches for i in b) == [0, 2, 4, 6, 8]
