"""Time, injected: the real clock wraps the reactor, tests use a fake one.

Library code never imports the global reactor; it receives a :class:`Clock`.
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet import defer, task
from twisted.internet.interfaces import IDelayedCall, IReactorTime


class Clock:
    """Milliseconds, timers and sleeps on top of an ``IReactorTime``."""

    def __init__(self, reactor: IReactorTime) -> None:
        self._reactor = reactor

    @property
    def reactor(self) -> IReactorTime:
        return self._reactor

    def time(self) -> float:
        """Seconds since the epoch."""
        return self._reactor.seconds()

    def time_msec(self) -> int:
        return int(self._reactor.seconds() * 1000)

    def call_later(self, delay_s: float, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> IDelayedCall:
        return self._reactor.callLater(delay_s, fn, *args, **kwargs)

    def looping_call(self, fn: Callable[[], Any], interval_s: float, now: bool = False) -> task.LoopingCall:
        call = task.LoopingCall(fn)
        call.clock = self._reactor
        call.start(interval_s, now=now).addErrback(lambda f: None)
        return call

    async def sleep(self, seconds: float) -> None:
        d: defer.Deferred[None] = defer.Deferred()
        call = self._reactor.callLater(seconds, d.callback, None)

        def _cancel(_: Any) -> None:
            if call.active():
                call.cancel()

        d.addErrback(lambda f: (_cancel(None), f)[1])
        await d


class FakeClock(Clock):
    """A clock for tests: time only moves when :meth:`advance` is called."""

    def __init__(self, start_s: float = 1_700_000_000.0) -> None:
        fake = task.Clock()
        fake.advance(start_s)
        super().__init__(fake)
        self._fake = fake

    def advance(self, seconds: float) -> None:
        self._fake.advance(seconds)

    def pending_calls(self) -> int:
        return len(self._fake.getDelayedCalls())
