"""Time for the whole bot: the only module that reads the wall clock.

Every time in pegbot is an ``int`` of nanoseconds since the Unix epoch, UTC. Components get a
:class:`Clock` and ask it for the time and for timers; a backtest passes a :class:`SimClock` that the
replay loop drives, a live or paper run passes a :class:`LiveClock`. :class:`Stopwatch` measures
wall seconds of a run (reports, benchmarks) and :class:`Pacer` replays a recorded feed on the wall
clock at a speed factor.

What this module may not do: no other module calls ``time.time()``, ``time.time_ns()``,
``datetime.now()`` or ``perf_counter`` for trading decisions; they go through a clock here.
:func:`wall_time_ns` exists for the few places (log timestamps by default) that need wall time with
no clock at hand. Nothing here knows about markets or sessions (see :mod:`bot.sessions`).
"""

from __future__ import annotations

import asyncio
import heapq
import math
import sys
import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

NS_PER_SECOND = 1_000_000_000
NO_TIMER_NS = sys.maxsize
"""Value of :attr:`SimClock.next_timer_ns` when no timer is pending."""

_PENDING = 0
_FIRED = 1
_CANCELLED = 2

# Rebuild the heap when cancelled entries outnumber live ones by this many (lazy cancel keeps
# cancel O(1), compaction keeps memory flat when a timer is re-armed on every event).
_COMPACT_SLACK = 1024


def wall_time_ns() -> int:
    """Wall-clock nanoseconds since the epoch, UTC. Use a :class:`Clock` instead where one exists."""
    return time.time_ns()


class TimerHandle:
    """A scheduled callback. Returned by :meth:`Clock.schedule`, passed to :meth:`Clock.cancel`."""

    __slots__ = ("ts_ns", "callback", "_state", "_native")

    def __init__(self, ts_ns: int, callback: Callable[[], None]) -> None:
        self.ts_ns = ts_ns
        self.callback = callback
        self._state = _PENDING
        self._native: asyncio.TimerHandle | None = None

    @property
    def pending(self) -> bool:
        """True until the timer fires or is cancelled."""
        return self._state == _PENDING

    @property
    def cancelled(self) -> bool:
        return self._state == _CANCELLED

    def __repr__(self) -> str:
        state = ("pending", "fired", "cancelled")[self._state]
        return f"TimerHandle(ts_ns={self.ts_ns}, {state})"


@runtime_checkable
class Clock(Protocol):
    """What components may ask of time: the current instant and one-shot timers."""

    def now_ns(self) -> int:
        """Current time, ns since the epoch UTC."""
        ...

    def schedule(self, ts_ns: int, callback: Callable[[], None]) -> TimerHandle:
        """Call ``callback()`` once at ``ts_ns`` (as soon as possible if ``ts_ns`` is past)."""
        ...

    def cancel(self, handle: TimerHandle) -> None:
        """Stop a pending timer; a no-op for a timer that already fired or was cancelled."""
        ...


class SimClock:
    """Simulated time, moved forward only by :meth:`advance_to` (the backtest replay loop).

    Timers fire in ``(ts, insertion order)``; while a timer runs, ``now`` equals its ``ts``. The
    replay loop's hot path reads the plain attributes ``now`` and ``next_timer_ns``::

        if ts >= clock.next_timer_ns:
            clock.advance_to(ts)   # fires due timers
        else:
            clock.now = ts         # same effect when nothing is due and ts >= now

    Timer callbacks must not call :meth:`advance_to`; they may schedule and cancel timers.
    If a callback raises, the exception propagates, the timer counts as fired and ``now`` stays at
    its ``ts``; the clock stays consistent and a later :meth:`advance_to` carries on.
    """

    __slots__ = ("now", "next_timer_ns", "_heap", "_seq", "_live", "_cancelled_in_heap")

    def __init__(self, start_ns: int = 0) -> None:
        self.now: int = start_ns
        self.next_timer_ns: int = NO_TIMER_NS
        self._heap: list[tuple[int, int, TimerHandle]] = []
        self._seq = 0
        self._live = 0
        self._cancelled_in_heap = 0

    def now_ns(self) -> int:
        return self.now

    @property
    def pending_timers(self) -> int:
        """Number of timers that have neither fired nor been cancelled."""
        return self._live

    def schedule(self, ts_ns: int, callback: Callable[[], None]) -> TimerHandle:
        """Add a timer. A ``ts_ns`` in the past is moved to ``now`` (due at the next advance)."""
        if ts_ns < self.now:
            ts_ns = self.now
        handle = TimerHandle(ts_ns, callback)
        self._seq += 1
        heapq.heappush(self._heap, (ts_ns, self._seq, handle))
        self._live += 1
        if ts_ns < self.next_timer_ns:
            self.next_timer_ns = ts_ns
        return handle

    def cancel(self, handle: TimerHandle) -> None:
        if handle._state != _PENDING:
            return
        handle._state = _CANCELLED
        self._live -= 1
        self._cancelled_in_heap += 1
        if self._heap and self._heap[0][2] is handle:
            self._drop_cancelled_top()
        elif self._cancelled_in_heap > self._live + _COMPACT_SLACK:
            self._compact()

    def advance_to(self, ts_ns: int) -> None:
        """Move time to ``ts_ns``, firing every timer due at or before it, in order."""
        if ts_ns < self.now:
            raise ValueError(f"clock cannot go backwards: now={self.now}, asked {ts_ns}")
        if ts_ns >= self.next_timer_ns:
            self._fire_due(ts_ns)
        self.now = ts_ns

    def _fire_due(self, ts_ns: int) -> None:
        # Re-read self._heap each turn: a callback's cancel() may compact (replace) it.
        while self._heap and self._heap[0][0] <= ts_ns:
            timer_ts, _, handle = heapq.heappop(self._heap)
            if handle._state != _PENDING:
                self._cancelled_in_heap -= 1
                continue
            handle._state = _FIRED
            self._live -= 1
            self._drop_cancelled_top()
            self.now = timer_ts
            handle.callback()
            if self.now != timer_ts:
                raise RuntimeError("a timer callback must not advance the clock")
        self._drop_cancelled_top()

    def _drop_cancelled_top(self) -> None:
        """Restore the invariant: the heap is empty or its top is pending; set next_timer_ns."""
        heap = self._heap
        while heap and heap[0][2]._state != _PENDING:
            heapq.heappop(heap)
            self._cancelled_in_heap -= 1
        self.next_timer_ns = heap[0][0] if heap else NO_TIMER_NS

    def _compact(self) -> None:
        self._heap = [entry for entry in self._heap if entry[2]._state == _PENDING]
        heapq.heapify(self._heap)
        self._cancelled_in_heap = 0
        self.next_timer_ns = self._heap[0][0] if self._heap else NO_TIMER_NS


class LiveClock:
    """Wall time, with timers on the running asyncio loop.

    A timer for wall instant ``ts`` is placed on the loop's monotonic clock at
    ``loop.time() + (ts - now) / 1e9``. If it runs while the wall clock still reads before ``ts``
    (loop clock resolution, or the wall clock stepped back), it is re-armed for the remainder, so a
    callback always sees ``now_ns() >= ts``. A wall-clock step forward is not noticed until the
    timer's monotonic deadline. ``schedule`` must be called from the loop's thread.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop | None = None,
        *,
        time_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self._loop = loop
        self._time_ns = time_ns

    def now_ns(self) -> int:
        return self._time_ns()

    def schedule(self, ts_ns: int, callback: Callable[[], None]) -> TimerHandle:
        handle = TimerHandle(ts_ns, callback)
        self._arm(handle)
        return handle

    def cancel(self, handle: TimerHandle) -> None:
        if handle._state != _PENDING:
            return
        handle._state = _CANCELLED
        if handle._native is not None:
            handle._native.cancel()
            handle._native = None

    def _arm(self, handle: TimerHandle) -> None:
        loop = self._loop if self._loop is not None else asyncio.get_running_loop()
        delay_s = max(0, handle.ts_ns - self._time_ns()) / NS_PER_SECOND
        handle._native = loop.call_at(loop.time() + delay_s, self._fire, handle)

    def _fire(self, handle: TimerHandle) -> None:
        if handle._state != _PENDING:
            return
        if self._time_ns() < handle.ts_ns:
            self._arm(handle)
            return
        handle._state = _FIRED
        handle._native = None
        handle.callback()


class Stopwatch:
    """Wall seconds elapsed since construction or :meth:`restart` (``perf_counter``)."""

    __slots__ = ("_start",)

    def __init__(self) -> None:
        self._start = time.perf_counter_ns()

    def restart(self) -> None:
        self._start = time.perf_counter_ns()

    def elapsed_ns(self) -> int:
        return time.perf_counter_ns() - self._start

    def elapsed_s(self) -> float:
        return self.elapsed_ns() / NS_PER_SECOND


class Pacer:
    """Maps recorded (sim) time onto the wall clock so a feed replays ``speed`` times faster.

    The first event seen anchors sim time to the wall clock; afterwards event ``ts`` is due at wall
    instant ``anchor_wall + (ts - anchor_sim) / speed``. :meth:`delay_s` says how long to sleep
    before handling an event; if the replay has fallen behind it returns 0 (no catch-up skipping).
    ``max_sleep_s`` caps one sleep so quiet stretches (a weekend) do not stall the replay: when the
    cap applies, the anchor moves so that later events keep their spacing relative to this one.
    ``speed=math.inf`` never sleeps. Typical use::

        await asyncio.sleep(pacer.delay_s(event.ts_ns))
        clock.advance_to(event.ts_ns)
    """

    def __init__(
        self,
        speed: float,
        *,
        max_sleep_s: float | None = None,
        monotonic_ns: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be > 0, got {speed!r}")
        if max_sleep_s is not None and not max_sleep_s >= 0:
            raise ValueError(f"max_sleep_s must be >= 0, got {max_sleep_s!r}")
        self.speed = speed
        self.max_sleep_s = max_sleep_s
        self._monotonic_ns = monotonic_ns
        self._anchor_sim: int | None = None
        self._anchor_wall = 0

    def delay_s(self, ts_ns: int) -> float:
        """Wall seconds to wait before the event at sim time ``ts_ns`` (never negative)."""
        wall_now = self._monotonic_ns()
        if self._anchor_sim is None or math.isinf(self.speed):
            if self._anchor_sim is None:
                self._anchor_sim, self._anchor_wall = ts_ns, wall_now
            return 0.0
        # Differences first: absolute ns do not fit a float's mantissa exactly.
        delay = ((ts_ns - self._anchor_sim) / self.speed - (wall_now - self._anchor_wall)) / (
            NS_PER_SECOND
        )
        if self.max_sleep_s is not None and delay > self.max_sleep_s:
            delay = self.max_sleep_s
            self._anchor_sim = ts_ns
            self._anchor_wall = wall_now + round(delay * NS_PER_SECOND)
        return max(0.0, delay)

    def sim_time_ns(self) -> int | None:
        """Sim instant that corresponds to the wall clock now (None before the first event)."""
        if self._anchor_sim is None:
            return None
        if math.isinf(self.speed):
            return self._anchor_sim
        return self._anchor_sim + round((self._monotonic_ns() - self._anchor_wall) * self.speed)
