"""The consumer's hand-off of a message to the agents: at once when the delivery does not wait, and as
Faust's ``wait_first`` does (a suspension of the flow interrupts it) when it does."""

from __future__ import annotations

import asyncio
import inspect
import warnings

import pytest
from faust.transport.consumer import Consumer as FaustConsumer
from faust.transport.consumer import Event as FaustConsumerEvent
from mode import Service
from mode.utils.locks import Event

from stream.worker.app import _Consumer
from stream.worker.handoff import QuickHandOff


class Consumer(QuickHandOff, Service):
    def __init__(self) -> None:
        super().__init__()
        self.suspend_flow = FaustConsumerEvent()  # the class Faust's consumer uses (asyncio.Event today)


def _counting_tasks(loop: asyncio.AbstractEventLoop) -> list[int]:
    made = [0]

    def factory(loop, coro, **kwargs):
        made[0] += 1
        return asyncio.Task(coro, loop=loop, **kwargs)

    loop.set_task_factory(factory)
    return made


def test_a_delivery_that_completes_at_once_makes_no_task():
    async def main():
        consumer = Consumer()
        made = _counting_tasks(asyncio.get_running_loop())
        queue: asyncio.Queue[str] = asyncio.Queue(maxsize=2)

        async def deliver(message):
            await queue.put(message)
            return "delivered"

        flow = consumer.suspend_flow.wait()
        result = await consumer.wait_first(deliver("m1"), flow)
        assert result.results == ["delivered"] and not result.stopped
        assert queue.get_nowait() == "m1"
        assert made[0] == 0
        assert flow.cr_frame is None  # closed, never started: no "never awaited" warning

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        asyncio.run(main())


def test_a_delivery_that_waits_is_resumed_where_it_waited_and_completes_in_order():
    async def main():
        consumer = Consumer()
        queue: asyncio.Queue[str] = asyncio.Queue(maxsize=1)
        queue.put_nowait("m1")  # full: the next delivery must wait
        steps = []

        async def deliver(message):
            steps.append(f"start {message}")
            await queue.put(message)
            steps.append(f"put {message}")
            return message

        handing = asyncio.ensure_future(consumer.wait_first(deliver("m2"), consumer.suspend_flow.wait()))
        await asyncio.sleep(0.01)
        assert steps == ["start m2"] and not handing.done()
        assert queue.get_nowait() == "m1"  # room again
        result = await asyncio.wait_for(handing, 5)
        assert result.results == ["m2"] and not result.stopped
        assert steps == ["start m2", "put m2"]
        assert queue.get_nowait() == "m2"

    asyncio.run(main())


def test_a_suspended_flow_interrupts_a_waiting_delivery_and_its_cleanup_runs():
    async def main():
        consumer = Consumer()
        queue: asyncio.Queue[str] = asyncio.Queue(maxsize=1)
        queue.put_nowait("m1")
        seen = []

        async def deliver(message):
            try:
                await queue.put(message)
            except asyncio.CancelledError:
                seen.append("cancelled")
                raise
            finally:
                seen.append("cleanup")

        flow = consumer.suspend_flow.wait()
        handing = asyncio.ensure_future(consumer.wait_first(deliver("m2"), flow))
        await asyncio.sleep(0.01)
        consumer.suspend_flow.set()  # a rebalance
        result = await asyncio.wait_for(handing, 5)
        assert result.done == [flow] and result.results == [True]
        await asyncio.sleep(0.01)  # the losers are cancelled by wait_first's cleanup
        assert seen == ["cancelled", "cleanup"]
        assert queue.qsize() == 1 and queue.get_nowait() == "m1"  # m2 was not delivered
        queue.put_nowait("m3")  # and no putter is left waiting on the queue
        assert queue.get_nowait() == "m3"

    asyncio.run(main())


def test_an_error_in_the_delivery_is_raised_and_nothing_is_left_unawaited():
    async def main():
        consumer = Consumer()

        async def deliver(message):
            raise ValueError(message)

        with pytest.raises(ValueError, match="bad"):
            await consumer.wait_first(deliver("bad"), consumer.suspend_flow.wait())

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        asyncio.run(main())


@pytest.mark.parametrize("case", ["suspended", "stopped", "other_wait", "timeout"])
def test_other_calls_go_through_wait_first_as_before(case):
    async def main():
        consumer = Consumer()
        made = _counting_tasks(asyncio.get_running_loop())
        other = Event()

        async def deliver():
            return "delivered"

        if case == "suspended":
            consumer.suspend_flow.set()
            coros, kwargs = (deliver(), consumer.suspend_flow.wait()), {}
        elif case == "stopped":
            consumer._stopped.set()
            coros, kwargs = (deliver(), consumer.suspend_flow.wait()), {}
        elif case == "other_wait":
            coros, kwargs = (deliver(), other.wait()), {}
        else:
            coros, kwargs = (deliver(), consumer.suspend_flow.wait()), {"timeout": 5.0}
        await consumer.wait_first(*coros, **kwargs)
        assert made[0] >= 2  # one task per awaitable: Faust's own wait_first ran

    asyncio.run(main())


def test_the_worker_consumer_hands_off_quickly_and_faust_still_calls_it_so():
    assert issubclass(_Consumer, QuickHandOff)
    # the call QuickHandOff recognises; should Faust change it, the worker falls back to the slow path
    # (still right) and this test says the speed-up is gone
    source = inspect.getsource(FaustConsumer._drain_messages)
    assert "self.wait_first(" in source and "callback(message), self.suspend_flow.wait()" in source
    assert "self.suspend_flow = Event()" in inspect.getsource(FaustConsumer.__init__)
