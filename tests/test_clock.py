"""SimClock timer order and bookkeeping, LiveClock timers on asyncio, Stopwatch and Pacer."""

from __future__ import annotations

import asyncio
import math
import sys
import time

import pytest

from bot.clock import (
    NO_TIMER_NS,
    Clock,
    LiveClock,
    Pacer,
    SimClock,
    Stopwatch,
    TimerHandle,
    wall_time_ns,
)


def test_both_clocks_satisfy_the_clock_protocol() -> None:
    assert isinstance(SimClock(0), Clock)
    assert isinstance(LiveClock(), Clock)


def test_sim_clock_fires_due_timers_in_time_then_insertion_order_at_their_own_time() -> None:
    clock = SimClock(1_000)
    fired: list[tuple[str, int]] = []
    clock.schedule(3_000, lambda: fired.append(("c", clock.now)))
    clock.schedule(2_000, lambda: fired.append(("a", clock.now)))
    clock.schedule(2_000, lambda: fired.append(("b", clock.now)))
    clock.schedule(9_000, lambda: fired.append(("late", clock.now)))

    clock.advance_to(5_000)

    assert fired == [("a", 2_000), ("b", 2_000), ("c", 3_000)]
    assert clock.now == 5_000
    assert clock.now_ns() == 5_000
    assert clock.next_timer_ns == 9_000
    assert clock.pending_timers == 1


def test_timer_exactly_at_the_target_fires() -> None:
    clock = SimClock(0)
    fired: list[int] = []
    clock.schedule(10, lambda: fired.append(clock.now))
    clock.advance_to(9)
    assert fired == []
    clock.advance_to(10)
    assert fired == [10]


def test_callback_may_schedule_timers_that_fire_in_the_same_advance_if_due() -> None:
    clock = SimClock(0)
    fired: list[tuple[str, int]] = []

    def first() -> None:
        fired.append(("first", clock.now))
        clock.schedule(150, lambda: fired.append(("chained", clock.now)))
        clock.schedule(400, lambda: fired.append(("too_late", clock.now)))

    clock.schedule(100, first)
    clock.schedule(200, lambda: fired.append(("second", clock.now)))
    clock.advance_to(300)

    assert fired == [("first", 100), ("chained", 150), ("second", 200)]
    assert clock.next_timer_ns == 400


def test_advance_backwards_raises_and_leaves_time_unchanged() -> None:
    clock = SimClock(500)
    with pytest.raises(ValueError, match="backwards"):
        clock.advance_to(499)
    assert clock.now == 500
    clock.advance_to(500)  # standing still is allowed
    assert clock.now == 500


def test_next_timer_ns_tracks_schedule_cancel_and_fire() -> None:
    clock = SimClock(0)
    assert clock.next_timer_ns == NO_TIMER_NS == sys.maxsize
    h30 = clock.schedule(30, lambda: None)
    assert clock.next_timer_ns == 30
    h10 = clock.schedule(10, lambda: None)
    h20 = clock.schedule(20, lambda: None)
    assert clock.next_timer_ns == 10

    clock.cancel(h20)  # not the earliest: next stays
    assert clock.next_timer_ns == 10
    clock.cancel(h10)  # the earliest: next skips the cancelled 20 too
    assert clock.next_timer_ns == 30
    assert clock.pending_timers == 1

    clock.advance_to(30)
    assert not h30.pending and not h30.cancelled
    assert clock.next_timer_ns == NO_TIMER_NS
    assert clock.pending_timers == 0


def test_cancelled_timer_never_fires_and_cancel_is_idempotent() -> None:
    clock = SimClock(0)
    fired: list[str] = []
    handle = clock.schedule(10, lambda: fired.append("x"))
    clock.cancel(handle)
    clock.cancel(handle)
    assert handle.cancelled
    assert clock.pending_timers == 0
    clock.advance_to(100)
    assert fired == []


def test_cancel_after_fire_is_a_no_op() -> None:
    clock = SimClock(0)
    handle = clock.schedule(10, lambda: None)
    other = clock.schedule(50, lambda: None)
    clock.advance_to(20)
    clock.cancel(handle)
    assert not handle.cancelled
    assert clock.pending_timers == 1
    assert clock.next_timer_ns == 50
    assert other.pending


def test_callback_may_cancel_a_later_due_timer() -> None:
    clock = SimClock(0)
    fired: list[str] = []
    holder: list[TimerHandle] = []
    clock.schedule(10, lambda: clock.cancel(holder[0]))
    holder.append(clock.schedule(20, lambda: fired.append("cancelled one")))
    clock.schedule(30, lambda: fired.append("kept"))
    clock.advance_to(40)
    assert fired == ["kept"]


def test_timer_scheduled_in_the_past_fires_at_now_on_next_advance() -> None:
    clock = SimClock(1_000)
    fired: list[int] = []
    handle = clock.schedule(10, lambda: fired.append(clock.now))
    assert handle.ts_ns == 1_000
    assert clock.next_timer_ns == 1_000
    clock.advance_to(1_000)
    assert fired == [1_000]


def test_raising_callback_propagates_and_the_clock_stays_consistent() -> None:
    clock = SimClock(0)
    fired: list[int] = []

    def boom() -> None:
        raise RuntimeError("boom")

    clock.schedule(10, boom)
    clock.schedule(20, lambda: fired.append(clock.now))
    with pytest.raises(RuntimeError, match="boom"):
        clock.advance_to(30)
    assert clock.now == 10
    assert clock.next_timer_ns == 20
    clock.advance_to(30)
    assert fired == [20]
    assert clock.now == 30


def test_callback_advancing_the_clock_is_rejected() -> None:
    clock = SimClock(0)
    clock.schedule(10, lambda: clock.advance_to(15))
    with pytest.raises(RuntimeError, match="must not advance"):
        clock.advance_to(20)


def test_mass_cancellation_keeps_the_heap_small_and_the_next_timer_right() -> None:
    clock = SimClock(0)
    handles = [clock.schedule(1_000 + i, lambda: None) for i in range(5_000)]
    fired: list[int] = []
    keeper = clock.schedule(10_000_000, lambda: fired.append(clock.now))
    for handle in reversed(handles):  # cancel from the back: never the heap top until the end
        clock.cancel(handle)
    assert clock.pending_timers == 1
    assert clock.next_timer_ns == 10_000_000
    assert len(clock._heap) < 1_100  # compacted instead of holding 5,000 dead entries
    clock.advance_to(10_000_000)
    assert fired == [10_000_000]
    assert not keeper.pending


def test_live_clock_reads_the_injected_wall_time() -> None:
    assert LiveClock(time_ns=lambda: 123).now_ns() == 123
    before = time.time_ns()
    assert before <= LiveClock().now_ns() <= time.time_ns()
    assert before <= wall_time_ns()


def test_live_clock_fires_a_timer_once_the_wall_clock_reaches_it() -> None:
    clock = LiveClock()
    seen: list[int] = []

    async def main() -> int:
        target = clock.now_ns() + 20_000_000
        clock.schedule(target, lambda: seen.append(clock.now_ns()))
        await asyncio.sleep(0.2)
        return target

    target = asyncio.run(main())
    assert len(seen) == 1
    assert seen[0] >= target


def test_live_clock_cancel_stops_the_timer() -> None:
    clock = LiveClock()
    seen: list[str] = []

    async def main() -> TimerHandle:
        handle = clock.schedule(clock.now_ns() + 20_000_000, lambda: seen.append("x"))
        clock.cancel(handle)
        await asyncio.sleep(0.1)
        return handle

    handle = asyncio.run(main())
    assert seen == []
    assert handle.cancelled


def test_live_clock_rearms_a_timer_that_runs_before_its_wall_time() -> None:
    wall = [1_000_000_000_000]
    clock = LiveClock(time_ns=lambda: wall[0])
    seen: list[int] = []

    async def main() -> None:
        clock.schedule(wall[0] + 10_000_000, lambda: seen.append(wall[0]))
        await asyncio.sleep(0.06)  # loop time passes, the (fake) wall clock does not
        assert seen == []
        wall[0] += 10_000_000
        await asyncio.sleep(0.06)

    asyncio.run(main())
    assert seen == [1_000_010_000_000]


def test_stopwatch_measures_wall_seconds_and_restarts() -> None:
    watch = Stopwatch()
    time.sleep(0.02)
    assert watch.elapsed_s() >= 0.02
    assert watch.elapsed_ns() >= 20_000_000
    watch.restart()
    assert watch.elapsed_s() < 0.02


def test_pacer_sleeps_sim_gaps_divided_by_speed() -> None:
    wall = [5_000_000_000]
    pacer = Pacer(10.0, monotonic_ns=lambda: wall[0])
    t0 = 1_764_000_000_000_000_000
    assert pacer.sim_time_ns() is None
    assert pacer.delay_s(t0) == 0.0  # first event anchors
    assert pacer.delay_s(t0 + 10_000_000_000) == 1.0
    wall[0] += 400_000_000
    assert pacer.delay_s(t0 + 10_000_000_000) == pytest.approx(0.6, abs=1e-12)
    assert pacer.sim_time_ns() == t0 + 4_000_000_000
    wall[0] += 2_000_000_000  # replay fell behind: no sleep, no skipping
    assert pacer.delay_s(t0 + 10_000_000_000) == 0.0


def test_pacer_caps_one_sleep_and_keeps_later_spacing() -> None:
    wall = [0]
    pacer = Pacer(100.0, max_sleep_s=2.0, monotonic_ns=lambda: wall[0])
    t0 = 1_000_000_000_000
    pacer.delay_s(t0)
    weekend_later = t0 + 3_600 * 1_000_000_000  # 36 s of wall time at speed 100
    assert pacer.delay_s(weekend_later) == 2.0
    wall[0] += 2_000_000_000  # the caller slept
    assert pacer.delay_s(weekend_later + 100_000_000_000) == 1.0


def test_pacer_with_infinite_speed_never_sleeps() -> None:
    pacer = Pacer(math.inf, monotonic_ns=lambda: 0)
    assert pacer.delay_s(0) == 0.0
    assert pacer.delay_s(10**18) == 0.0


@pytest.mark.parametrize("speed", [0.0, -1.0, math.nan])
def test_pacer_rejects_non_positive_speed(speed: float) -> None:
    with pytest.raises(ValueError, match="speed"):
        Pacer(speed)
