"""The consumer's hand-off of each fetched message to the agents, without a task per message.

Faust's consumer loop (``Consumer._drain_messages``) hands every message over as
``await self.wait_first(callback(message), self.suspend_flow.wait())``: the delivery races a
suspension of the flow (a rebalance), and the consumer stopping or crashing. ``Service.wait_first``
makes a task of each (four per message), waits with ``asyncio.wait`` and cancels the losers: with one
event per message, doing without them made the worker ~18 % faster (bench/README.md, session 4).

:class:`QuickHandOff` runs the delivery's first step at once instead. When it completes there (the
agents' buffers have room: nearly always) nothing else is needed, as none of the three could have won:
none was set, and with ``wait_first`` the delivery's first step runs before theirs anyway. When it has
to wait (a full buffer), it goes on under Faust's own ``wait_first`` from where it stopped
(:class:`Resumed`), so a suspension, a stop or a crash still interrupts it exactly as before. Any other
use of ``wait_first`` is left alone.
"""

from __future__ import annotations

from collections.abc import Coroutine, Generator
from inspect import CORO_CREATED, getcoroutinestate, iscoroutine
from typing import Any

from mode.services import WaitResults


class Resumed:
    """An awaitable that carries on a coroutine already started and now waiting on ``pending`` (what
    its last step yielded), as a task would: the awaiting task waits on ``pending``, then the coroutine
    resumes; an exception thrown in meanwhile (a cancellation) is delivered where the coroutine waits, so
    its cleanup runs."""

    __slots__ = ("coro", "pending")

    def __init__(self, coro: Coroutine[Any, Any, Any], pending: Any) -> None:
        self.coro = coro
        self.pending = pending

    def __await__(self) -> Generator[Any, None, Any]:
        coro, pending = self.coro, self.pending
        while True:
            try:
                yield pending
            except BaseException as exc:  # noqa: BLE001 - delivered to the coroutine, which decides
                try:
                    pending = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
                continue
            try:
                pending = coro.send(None)
            except StopIteration as stop:
                return stop.value


class QuickHandOff:
    """Mixin for Faust's consumer (a ``mode.Service`` with ``suspend_flow``): see the module."""

    suspend_flow: Any
    """An ``asyncio.Event`` in Faust's consumer (any event class with ``wait``, ``is_set``)."""
    _stopped: Any
    _crashed: Any

    async def wait_first(self, *coros: Any, timeout: Any = None) -> WaitResults:
        if timeout is None and len(coros) == 2 and self._is_hand_off(*coros):
            deliver, flow = coros
            try:
                pending = deliver.send(None)
            except StopIteration as done:
                flow.close()  # never started: nothing waits on it
                return WaitResults([deliver], [done.value], False)
            except BaseException:
                flow.close()
                raise
            coros = (Resumed(deliver, pending), flow)
        return await super().wait_first(*coros, timeout=timeout)  # type: ignore[misc]

    def _is_hand_off(self, deliver: Any, flow: Any) -> bool:
        """``deliver`` an unstarted coroutine and ``flow`` this consumer's ``suspend_flow.wait()``, not
        started either, with neither the flow suspended nor the consumer stopped or crashed."""
        suspend = self.suspend_flow
        if getattr(flow, "cr_code", None) is not type(suspend).wait.__code__ or not iscoroutine(deliver):
            return False
        if getcoroutinestate(deliver) != CORO_CREATED or getcoroutinestate(flow) != CORO_CREATED:
            return False
        if flow.cr_frame.f_locals.get("self") is not suspend:
            return False
        return not (suspend.is_set() or self._stopped.is_set() or self._crashed.is_set())
